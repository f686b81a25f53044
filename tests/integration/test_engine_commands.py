"""The management commands: pause/unpause (the freezer, the processes' state in /proc), top, stats, rename,
container prune, version/info; each effect seen in the kernel's files, from inside the container, or in the
commands' output and exit codes. cp, diff, commit, export and the system commands are in
test_engine_files.py. Uses the registry and pulled busybox image of test_engine_run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.integration import test_engine_lifecycle
from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_lifecycle import until
from tests.integration.test_engine_run import HUTCH, IMAGE, ok
from tests.integration.test_engine_run import hutch as hutch_cli

import hutch

remote = run_suite.remote
root = run_suite.root


def gone(root: Path, cid: str) -> list[str]:
    """What is left of `cid`: its mounts, dirs, runtime state, cgroups (other containers' are not reported)."""
    return [x for x in test_engine_lifecycle.gone(root, cid) if cid in x]


def host_pids(root: Path, name: str) -> list[int]:
    out = ok(root, "top", name, "hpid").split()
    assert out[0] == "HPID"
    return [int(x) for x in out[1:]]


def proc_state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    raise AssertionError(f"no State in /proc/{pid}/status")


def freezer_state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            return (Path("/sys/fs/cgroup/freezer") / path.lstrip("/") / "freezer.state").read_text().strip()
        if controllers == "":
            frozen = Path("/sys/fs/cgroup") / path.lstrip("/") / "cgroup.freeze"
            if frozen.exists():
                return "FROZEN" if frozen.read_text().strip() == "1" else "THAWED"
    raise AssertionError(f"no freezer cgroup for {pid}")


def test_pause_unpause_freezes_the_processes(root: Path) -> None:
    cid = ok(root, "run", "-d", "--name", "frozen", IMAGE, "sh", "-c", "sleep 1000 & exec sleep 1001").strip()
    until(lambda: len(host_pids(root, "frozen")) == 2)
    pids = host_pids(root, "frozen")
    assert ok(root, "pause", "frozen") == "frozen\n"
    assert all(proc_state(p) in ("D", "T") for p in pids)
    assert freezer_state(pids[0]) == "FROZEN"
    assert ok(root, "inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}", "frozen") == (
        "paused false true\n"  # podman's Running is false while paused
    )
    line = next(x for x in ok(root, "ps").splitlines() if x.endswith(" frozen"))
    assert " Paused " in line
    assert ok(root, "ps", "-q", "--filter", "status=paused") == cid[:12] + "\n"
    # Twice is podman's error; exec into a paused container too.
    proc = hutch_cli(root, "pause", "frozen")
    assert proc.returncode == 125 and "already paused" in proc.stderr
    assert hutch_cli(root, "exec", "frozen", "true").returncode == 125

    assert ok(root, "container", "unpause", "frozen") == "frozen\n"
    assert freezer_state(pids[0]) == "THAWED"
    assert all(proc_state(p) == "S" for p in pids)
    assert ok(root, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "frozen") == "running false\n"
    proc = hutch_cli(root, "unpause", "frozen")
    assert proc.returncode == 125 and "not paused" in proc.stderr

    # stop of a paused container: the signal lands once thawed, the exit is recorded.
    ok(root, "pause", "frozen")
    ok(root, "stop", "-t", "1", "frozen")
    assert ok(root, "inspect", "-f", "{{.State.Status}}", "frozen") == "exited\n"
    assert not any(Path(f"/proc/{p}").exists() for p in pids)
    proc = hutch_cli(root, "pause", "frozen")
    assert proc.returncode == 125 and "not running" in proc.stderr
    ok(root, "rm", "frozen")
    assert gone(root, cid) == []


def test_kill_and_rm_force_of_paused_containers(root: Path) -> None:
    a = ok(root, "run", "-d", "--name", "pk", IMAGE, "sleep", "1000").strip()
    b = ok(root, "run", "-d", "--name", "prm", IMAGE, "sleep", "1000").strip()
    assert {a, b} <= set(ok(root, "pause", "--all").split())  # podman prints the ids
    assert ok(root, "ps", "-q", "--filter", "status=running") == ""
    pid_b = host_pids(root, "prm")[0]
    ok(root, "kill", "pk")
    assert ok(root, "wait", "pk") == "137\n"
    start = time.monotonic()
    assert ok(root, "rm", "-f", "prm") == "prm\n"
    assert time.monotonic() - start < 5
    assert not Path(f"/proc/{pid_b}").exists()
    ok(root, "rm", "pk")
    assert gone(root, a) == [] and gone(root, b) == []


def test_top_lists_the_processes(root: Path) -> None:
    cid = ok(root, "run", "-d", "--name", "topc", IMAGE, "sh", "-c", "sleep 1001 & exec sleep 1002").strip()
    until(lambda: len(host_pids(root, "topc")) == 2)
    lines = ok(root, "top", "topc").splitlines()
    assert lines[0].split() == ["USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"]
    rows = [line.split(None, 7) for line in lines[1:]]
    assert [r[0] for r in rows] == ["root", "root"]
    # PIDs as the container sees them: init is 1, its child's parent is 1.
    by_cmd = {r[7]: r for r in rows}
    assert by_cmd["sleep 1002"][1:3] == ["1", "0"]
    assert by_cmd["sleep 1001"][2] == "1"
    assert all(r[5] == "?" and r[4].endswith("s") for r in rows)

    ok(root, "exec", "-d", "-u", "app", "topc", "sleep", "1003")
    until(lambda: "sleep 1003" in ok(root, "top", "topc"))
    out = ok(root, "container", "top", "topc", "pid,hpid", "user", "args").splitlines()
    assert out[0].split() == ["PID", "HPID", "USER", "COMMAND"]
    row = next(line.split(None, 3) for line in out if line.endswith("sleep 1003"))
    assert row[2] == "app"
    assert Path(f"/proc/{row[1]}/cmdline").read_bytes() == b"sleep\x001003\x00"
    init = int(ok(root, "inspect", "-f", "{{.State.Pid}}", "topc"))
    assert next(line.split() for line in out if line.endswith("sleep 1002"))[:2] == ["1", str(init)]

    # ps(1) options are no descriptors: ps runs in the container, as podman falls back to it.
    out = ok(root, "top", "topc", "-o", "pid,comm").splitlines()
    assert out[0].split() == ["PID", "COMMAND"] and ["1", "sleep"] in [line.split() for line in out]
    proc = hutch_cli(root, "top", "topc", "bogus")
    assert proc.returncode == 125 and proc.stderr.startswith("Error: unknown descriptor: bogus")
    ok(root, "rm", "-f", "topc")
    proc = hutch_cli(root, "top", "topc")
    assert proc.returncode == 125 and "no such container" in proc.stderr
    assert gone(root, cid) == []


def stats(root: Path, name: str) -> dict[str, str]:
    docs = json.loads(ok(root, "stats", "--no-stream", "--format", "json", name))
    assert len(docs) == 1
    doc: dict[str, str] = docs[0]
    return doc


def to_bytes(text: str) -> float:
    for unit, factor in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    raise AssertionError(text)


def test_stats_memory_and_pids(root: Path) -> None:
    # 32 MB in the container's /dev/shm: tmpfs pages are charged to its memory cgroup.
    script = "head -c 32000000 /dev/zero > /dev/shm/fill; echo filled; exec sleep 1000"
    cid = ok(root, "run", "-d", "--name", "st", IMAGE, "sh", "-c", script).strip()
    until(lambda: ok(root, "logs", "st") == "filled\n")
    doc = stats(root, "st")
    assert doc["id"] == cid[:12] and doc["name"] == "st"
    used, limit = (to_bytes(x) for x in doc["mem_usage"].split(" / "))
    assert 32e6 <= used < 80e6
    meminfo = Path("/proc/meminfo").read_text().split()
    assert limit == float(f"{int(meminfo[meminfo.index('MemTotal:') + 1]) * 1024:.4g}")
    assert doc["pids"] == "1" and doc["cpu_percent"].endswith("%")

    ok(root, "exec", "-d", "st", "sleep", "999")
    until(lambda: stats(root, "st")["pids"] == "2")
    assert ok(root, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "st") == "st 2\n"
    assert (
        ok(root, "stats", "--no-stream", "--format", "table {{.Name}}\t{{.PIDs}}", "st")
        == "NAME\tPIDS\nst\t2\n"
    )
    table = ok(root, "stats", "--no-stream", "st").splitlines()
    assert table[0].split("  ")[0] == "ID" and "MEM USAGE / LIMIT" in table[0] and "BLOCK IO" in table[0]
    assert table[1].startswith(cid[:12]) and table[1].split()[-1] == "2"

    # Without --no-stream: a table every second until interrupted.
    proc = subprocess.Popen([*HUTCH, "--root", str(root), "stats", "st"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        headers = 0
        deadline = time.monotonic() + 10
        while headers < 2 and time.monotonic() < deadline:
            headers += proc.stdout.readline().startswith("ID ")
        assert headers == 2
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    ok(root, "stop", "-t", "0", "st")
    assert stats(root, "st")["mem_usage"] == "-- / --"
    ok(root, "rm", "st")
    assert gone(root, cid) == []


def test_rename(root: Path) -> None:
    cid = ok(root, "create", "--name", "before", IMAGE, "true").strip()
    ok(root, "create", "--name", "taken", IMAGE, "true")
    assert ok(root, "rename", "before", "after") == ""
    assert ok(root, "inspect", "-f", "{{.Name}}", cid) == "after\n"
    proc = hutch_cli(root, "rename", "before", "x")
    assert proc.returncode == 125 and "no such container" in proc.stderr
    proc = hutch_cli(root, "container", "rename", "after", "taken")
    assert proc.returncode == 125 and "already in use" in proc.stderr
    proc = hutch_cli(root, "rename", "after", "bad/name")
    assert proc.returncode == 125 and proc.stderr.startswith("Error: names must match")
    assert ok(root, "inspect", "-f", "{{.Name}}", cid) == "after\n"
    ok(root, "rm", "after", "taken")


def test_container_prune(root: Path) -> None:
    done = ok(root, "run", "-d", "--name", "pr-done", IMAGE, "true").strip()
    ok(root, "wait", "pr-done")
    made = ok(root, "create", "--name", "pr-made", IMAGE, "true").strip()
    live = ok(root, "run", "-d", "--name", "pr-live", IMAGE, "sleep", "1000").strip()
    # Not confirmed: nothing removed.
    proc = subprocess.run(
        [*HUTCH, "--root", str(root), "container", "prune"], input="n\n", capture_output=True, text=True
    )
    assert proc.returncode == 0 and "Are you sure you want to continue? [y/N]" in proc.stdout
    assert ok(root, "inspect", "-f", "{{.State.Status}}", "pr-done") == "exited\n"
    removed = ok(root, "container", "prune", "-f").split()
    assert done in removed and made in removed and live not in removed
    assert hutch_cli(root, "inspect", "pr-made").returncode == 125
    assert ok(root, "inspect", "-f", "{{.State.Status}}", "pr-live") == "running\n"
    ok(root, "rm", "-f", "pr-live")
    assert gone(root, done) == [] and gone(root, made) == [] and gone(root, live) == []


def test_version_and_info(root: Path) -> None:
    doc = json.loads(ok(root, "version", "--format", "json"))
    assert doc["Client"]["Version"] == hutch.__version__
    assert ok(root, "version", "--format", "{{.Client.Version}}") == hutch.__version__ + "\n"
    assert ok(root, "version").startswith(
        f"Client:          hutch Engine\nVersion:         {hutch.__version__}\n"
    )

    cid = ok(root, "run", "-d", "--name", "inf", IMAGE, "sleep", "1000").strip()
    ok(root, "pause", "inf")
    info = json.loads(ok(root, "info", "--format", "json"))
    store = info["store"]
    assert store["graphRoot"] == str(root) and store["imageStore"]["number"] >= 1
    assert store["containerStore"]["paused"] >= 1
    assert store["containerStore"]["number"] == len(ok(root, "ps", "-aq").split())
    host = info["host"]
    mounts = Path("/proc/self/mountinfo").read_text()
    v1 = " - cgroup " in mounts
    v2 = " - cgroup2 " in mounts
    assert host["cgroupVersion"] == ("v1" if v1 else "v2")
    assert host["cgroupHybrid"] is (v1 and v2)
    assert host["kernel"] == os.uname().release and host["cpus"] == os.cpu_count()
    yaml = ok(root, "system", "info")
    assert (
        f"  kernel: {os.uname().release}\n" in yaml and f"  cgroupVersion: {host['cgroupVersion']}\n" in yaml
    )
    assert ok(root, "info", "-f", "{{.Host.Kernel}}") == os.uname().release + "\n"
    conf = root.parent / "registries-info.conf"
    conf.write_text(
        'unqualified-search-registries = ["one.example", "two.example"]\n'
        '[[registry]]\nlocation = "one.example"\ninsecure = true\n'
    )
    proc = subprocess.run(
        [*HUTCH, "--root", str(root), "info", "--format", "json"],
        env={**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=True,
    )
    registries = json.loads(proc.stdout)["registries"]
    assert (
        registries["search"] == ["one.example", "two.example"]
        and registries["one.example"]["Insecure"] is True
    )
    ok(root, "rm", "-f", "inf")
    assert gone(root, cid) == []


def test_pause_top_stats_under_runc(root: Path) -> None:
    """A container of another OCI runtime: its own pause/resume, ps and events --stats (as podman calls them)."""
    cid = ok(
        root,
        "run",
        "-d",
        "--runtime",
        "runc",
        "--name",
        "onrunc",
        IMAGE,
        "sh",
        "-c",
        "sleep 1000 & exec sleep 1001",
    )
    cid = cid.strip()
    until(lambda: len(host_pids(root, "onrunc")) == 2)
    pids = host_pids(root, "onrunc")
    assert ok(root, "pause", "onrunc") == "onrunc\n"
    assert all(proc_state(p) in ("D", "T") for p in pids) and freezer_state(pids[0]) == "FROZEN"
    state = subprocess.run(
        ["runc", "--root", "/run/hutch/runc", "state", cid], capture_output=True, text=True
    )
    assert json.loads(state.stdout)["status"] == "paused"
    assert ok(root, "inspect", "-f", "{{.State.Status}}", "onrunc") == "paused\n"
    ok(root, "unpause", "onrunc")
    assert freezer_state(pids[0]) == "THAWED"
    rows = [line.split(None, 7) for line in ok(root, "top", "onrunc").splitlines()[1:]]
    assert sorted(r[7] for r in rows) == ["sleep 1000", "sleep 1001"]
    assert next(r for r in rows if r[7] == "sleep 1001")[1:3] == ["1", "0"]
    assert stats(root, "onrunc")["pids"] == "2"
    ok(root, "pause", "onrunc")
    ok(root, "rm", "-f", "onrunc")
    assert not any(Path(f"/proc/{p}").exists() for p in pids)
    assert gone(root, cid) == []
