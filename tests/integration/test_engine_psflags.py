"""ps --filter (label, ancestor, exited, before, since, network, volume, health), --sort, --size, --pod;
wait --condition; rm --depend and rm -f -t; stop -t; kill --all: what ps lists and the containers' states."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import IMAGE, hutch, leftovers, ok

remote = run_suite.remote
root = run_suite.root


def names(root: Path, *filters: str) -> list[str]:
    args = [x for f in filters for x in ("--filter", f)]
    return ok(root, "ps", "-a", "--format", "{{.Names}}", *args).split()


def test_ps_filters_sort_and_size(root: Path) -> None:
    assert hutch(root, "run", "--name", "pf-a", "--network", "none", "-l", "tier=web", "-v", "pfvol:/data",
                 IMAGE, "sh", "-c", "head -c 300000 /dev/zero > /big; exit 3").returncode == 3  # fmt: skip
    time.sleep(0.05)
    ok(root, "create", "--name", "pf-b", "--network", "none", "-l", "tier=db", IMAGE, "true")
    time.sleep(0.05)
    ok(root, "run", "-d", "--name", "pf-c", "--network", "none", "--health-cmd", "true",
       "--health-interval", "1h", IMAGE, "sleep", "100")  # fmt: skip
    try:
        assert names(root, "label=tier=web") == ["pf-a"]
        assert sorted(names(root, "label=tier")) == ["pf-a", "pf-b"]
        assert names(root, "exited=3") == ["pf-a"]
        assert names(root, "exited=0") == []
        assert names(root, "before=pf-b") == ["pf-a"] or "pf-a" in names(root, "before=pf-b")
        assert "pf-b" not in names(root, "before=pf-b") and "pf-c" not in names(root, "before=pf-b")
        assert sorted(names(root, "since=pf-a", "name=^pf-")) == ["pf-b", "pf-c"]
        assert names(root, "volume=pfvol") == ["pf-a"]
        assert names(root, "network=none", "name=^pf-") != []
        assert names(root, "network=hutch", "name=^pf-") == []
        assert "pf-a" in names(root, "ancestor=" + IMAGE) and "pf-a" in names(root, "ancestor=busybox-run")
        assert names(root, "ancestor=no-such-image") == []
        ok(root, "healthcheck", "run", "pf-c")
        assert names(root, "health=healthy") == ["pf-c"]
        assert names(root, "health=none", "name=pf-c") == []
        sorted_names = ok(root, "ps", "-a", "--sort", "names", "--format", "{{.Names}}",
                          "--filter", "name=^pf-").split()  # fmt: skip
        assert sorted_names == ["pf-a", "pf-b", "pf-c"]
        table = ok(root, "ps", "-a", "--size", "--filter", "name=pf-a").splitlines()
        assert table[0].split()[-1] == "SIZE"
        found = re.search(r"(\d+) kB \(virtual ([\d.]+) MB\)$", table[1])
        assert found and 300 <= int(found[1]) < 340 and float(found[2]) > 2, table[1]
        bad = hutch(root, "ps", "--filter", "color=red")
        assert bad.returncode == 125 and bad.stderr.startswith("Error: --filter 'color=red'")
        bad = hutch(root, "ps", "--sort", "colour")
        assert bad.returncode == 125 and "--sort 'colour'" in bad.stderr
    finally:
        hutch(root, "rm", "-f", "-t", "0", "pf-a", "pf-b", "pf-c")
        hutch(root, "volume", "rm", "-f", "pfvol")
    assert leftovers(root) == []


def test_ps_pod_columns(root: Path) -> None:
    pod = ok(root, "pod", "create", "--name", "pfpod").strip()
    try:
        ok(root, "create", "--pod", "pfpod", "--name", "pf-member", IMAGE, "true")
        lines = ok(root, "ps", "-a", "--pod", "--filter", "name=pf-member").splitlines()
        assert lines[0].split()[-3:] == ["POD", "ID", "PODNAME"]
        assert lines[1].split()[-2:] == [pod[:12], "pfpod"]
        assert names(root, "pod=pfpod", "name=pf-member") == ["pf-member"]
    finally:
        hutch(root, "pod", "rm", "-f", "pfpod")
        hutch(root, "rm", "-f", "pf-member")


def test_wait_condition(root: Path) -> None:
    ok(root, "create", "--name", "wc", "--network", "none", IMAGE, "sh", "-c", "sleep 1; exit 4")
    try:
        assert ok(root, "wait", "--condition", "created", "wc") == "-1\n"
        ok(root, "start", "wc")
        assert ok(root, "wait", "--condition", "running", "wc") == "-1\n"
        assert ok(root, "wait", "--condition", "exited", "wc") == "4\n"
        bad = hutch(root, "wait", "--condition", "gone", "wc")
        assert bad.returncode == 125 and "--condition 'gone'" in bad.stderr
    finally:
        hutch(root, "rm", "-f", "wc")


def test_rm_depend_and_time_stop_time_kill_all(root: Path) -> None:
    ok(root, "run", "-d", "--name", "dep-base", IMAGE, "sleep", "100")
    ok(root, "run", "-d", "--name", "dep-user", "--network", "container:dep-base", IMAGE, "sleep", "100")
    user_id = ok(root, "inspect", "-f", "{{.Id}}", "dep-user").strip()
    base_id = ok(root, "inspect", "-f", "{{.Id}}", "dep-base").strip()
    assert ok(root, "rm", "-f", "--depend", "-t", "0", "dep-base").split() == [user_id, base_id]
    assert not {"dep-base", "dep-user"} & set(names(root))
    # stop -t 1: a shell that ignores SIGTERM is killed after about a second.
    ok(root, "run", "-d", "--name", "st", "--network", "none", IMAGE, "sh", "-c", "trap '' TERM; sleep 100")
    started = time.monotonic()
    ok(root, "stop", "-t", "1", "st")
    assert 0.9 < time.monotonic() - started < 5
    assert ok(root, "inspect", "-f", "{{.State.ExitCode}}", "st").strip() == "137"
    ok(root, "rm", "st")
    ok(root, "run", "-d", "--name", "ka1", "--network", "none", IMAGE, "sleep", "100")
    ok(root, "run", "-d", "--name", "ka2", "--network", "none", IMAGE, "sleep", "100")
    ok(root, "kill", "--all")
    for n in ("ka1", "ka2"):
        ok(root, "wait", n)
        assert ok(root, "inspect", "-f", "{{.State.Status}}", n).strip() == "exited"
    ok(root, "rm", "ka1", "ka2")
    assert leftovers(root) == []
