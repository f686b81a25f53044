"""Regressions found in review of the engine's container commands: error lines that went missing or were
not one clear line, what a failed run left behind, and fields inspect showed wrong."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import subprocess
from pathlib import Path

from tests.integration import test_engine_run as run_suite
from tests.integration.helpers import wait_for
from tests.integration.test_engine_run import HUTCH, IMAGE, hutch, leftovers, ok

remote = run_suite.remote
root = run_suite.root


def test_exec_detach_of_a_missing_command_says_so(root: Path) -> None:
    ok(root, "run", "-d", "--name", "rv-exec", IMAGE, "sleep", "1000")
    try:
        proc = hutch(root, "exec", "-d", "rv-exec", "/no/such/command")
        assert proc.returncode == 127
        assert proc.stderr.startswith("Error: ") and "/no/such/command" in proc.stderr
        assert proc.stdout == ""
        proc = hutch(root, "exec", "-d", "rv-nosuch", "true")  # an engine error: on stderr, not stdout
        assert proc.returncode == 125 and proc.stderr.startswith("Error: ") and proc.stdout == ""
    finally:
        ok(root, "rm", "-f", "-t", "0", "rv-exec")
    assert leftovers(root) == []


def test_rm_reports_every_missing_container(root: Path) -> None:
    proc = hutch(root, "rm", "rv-nosuch-1", "rv-nosuch-2")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("Error: ") for line in lines)
    assert "rv-nosuch-1" in lines[0] and "rv-nosuch-2" in lines[1]


def test_rename_to_an_empty_name_is_one_clear_error(root: Path) -> None:
    ok(root, "create", "--name", "rv-rename", IMAGE, "true")
    try:
        proc = hutch(root, "rename", "rv-rename", "")
        assert proc.returncode == 125
        assert proc.stderr.startswith("Error: names must match") and "internal error" not in proc.stderr
        assert ok(root, "inspect", "-f", "{{.Name}}", "rv-rename") == "rv-rename\n"
        for name in ("café", "ｆｕｌｌ"):  # podman's [a-zA-Z0-9]: ASCII only
            assert hutch(root, "rename", "rv-rename", name).stderr.startswith("Error: names must match")
            assert hutch(root, "create", "--name", name, IMAGE, "true").returncode == 125
    finally:
        ok(root, "rm", "rv-rename")


def test_a_runtime_given_by_a_relative_path_works_from_anywhere(root: Path, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "runc").symlink_to("/usr/sbin/runc")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = [*HUTCH, "--root", str(root)]
    created = subprocess.run(
        [*run, "create", "--name", "rv-relrt", "--runtime", "./bin/runc", IMAGE, "true"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    try:
        runtime = ok(root, "inspect", "-f", "{{.OCIRuntime}}", "rv-relrt").strip()
        assert runtime == str(tmp_path / "bin" / "runc")
        # start from another directory (and conmon's exit command runs in /): the runtime is still found
        started = subprocess.run(
            [*run, "start", "-a", "rv-relrt"], cwd=elsewhere, capture_output=True, text=True, check=False
        )
        assert started.returncode == 0, started.stderr
    finally:
        subprocess.run([*run, "rm", "-f", "rv-relrt"], cwd=elsewhere, capture_output=True, check=False)
    assert leftovers(root) == []


def test_inspect_log_config_names_the_log_driver(root: Path) -> None:
    ok(root, "create", "--name", "rv-nolog", "--log-driver", "none", IMAGE, "true")
    try:
        doc = json.loads(ok(root, "inspect", "rv-nolog"))[0]
        assert doc["HostConfig"]["LogConfig"]["Type"] == "none"
    finally:
        ok(root, "rm", "rv-nolog")


def test_a_failed_run_removes_its_anonymous_volumes(root: Path) -> None:
    before = set(ok(root, "volume", "ls", "-q").split())
    proc = hutch(root, "run", "-v", "/data", IMAGE, "/no/such/command")
    assert proc.returncode == 127, proc.stderr
    assert set(ok(root, "volume", "ls", "-q").split()) == before
    assert leftovers(root) == []


def test_ps_filter_name_with_a_bad_regex_is_one_clear_error(root: Path) -> None:
    proc = hutch(root, "ps", "-a", "--filter", "name=[")
    assert proc.returncode == 125
    assert proc.stderr.startswith("Error: --filter 'name=[': invalid regular expression")


def test_kill_signals_the_others_when_one_is_missing(root: Path) -> None:
    ok(root, "run", "-d", "--name", "rv-kill", IMAGE, "sleep", "1000")
    try:
        proc = hutch(root, "kill", "rv-nosuch", "rv-kill")
        assert proc.returncode == 125
        assert proc.stderr.startswith("Error: ") and "rv-nosuch" in proc.stderr
        assert proc.stdout == "rv-kill\n"
        assert ok(root, "wait", "rv-kill") == "137\n"
    finally:
        ok(root, "rm", "-f", "rv-kill")
    assert leftovers(root) == []


def test_restart_all_starts_stopped_containers_too(root: Path) -> None:
    created = ok(root, "create", "--name", "rv-r1", IMAGE, "sleep", "1000").strip()
    exited = ok(root, "run", "-d", "--name", "rv-r2", IMAGE, "sleep", "1000").strip()
    ok(root, "stop", "-t", "0", "rv-r2")
    try:
        assert set(ok(root, "restart", "-a").split()) == {created, exited}
        for name in ("rv-r1", "rv-r2"):
            assert ok(root, "inspect", "-f", "{{.State.Status}}", name) == "running\n"
    finally:
        ok(root, "rm", "-f", "-t", "0", "rv-r1", "rv-r2")
    assert leftovers(root) == []


def test_start_starts_the_others_when_one_is_missing(root: Path) -> None:
    ok(root, "create", "--name", "rv-start", IMAGE, "sleep", "1000")
    try:
        proc = hutch(root, "start", "rv-nosuch", "rv-start")
        assert proc.returncode == 125
        assert proc.stderr.startswith("Error: ") and "rv-nosuch" in proc.stderr
        assert proc.stdout == "rv-start\n"
        assert ok(root, "inspect", "-f", "{{.State.Status}}", "rv-start") == "running\n"
    finally:
        ok(root, "rm", "-f", "-t", "0", "rv-start")
    assert leftovers(root) == []


def test_ps_table_format_prints_podmans_titles(root: Path) -> None:
    empty = ok(root, "ps", "--filter", "name=^rv-none$", "--format", "table {{.ID}}\t{{.Names}}")
    assert empty.split() == ["CONTAINER", "ID", "NAMES"]
    cid = ok(root, "create", "--name", "rv-table", IMAGE, "true").strip()
    try:
        out = ok(root, "ps", "-a", "--format", "table {{.ID}}\t{{.Names}}\t{{.CreatedAt}}").splitlines()
        assert out[0].split() == ["CONTAINER", "ID", "NAMES", "CREATED", "AT"]
        assert out[0].index("NAMES") == 14  # the columns are padded as podman's tabwriter pads them
        row = next(line for line in out if line.startswith(cid[:12]))
        assert row.index("rv-table") == 14
        heading = ok(root, "ps", "-a", "--noheading", "--format", "table {{.ID}} {{.Names}}").splitlines()
        assert f"{cid[:12]} rv-table" in heading and not any("NAMES" in line for line in heading)
        plain = ok(root, "ps", "-a", "--format", "{{.ID}} {{.Names}}").splitlines()
        assert f"{cid[:12]} rv-table" in plain and not any("NAMES" in line for line in plain)
    finally:
        ok(root, "rm", "rv-table")


def test_wait_interval_takes_a_duration(root: Path) -> None:
    assert hutch(root, "run", "--name", "rv-wait", IMAGE, "sh", "-c", "exit 3").returncode == 3
    try:
        assert ok(root, "wait", "--interval", "100ms", "rv-wait") == "3\n"
        assert ok(root, "wait", "-i", "100", "rv-wait") == "3\n"  # milliseconds, as podman still takes
        proc = hutch(root, "wait", "--interval", "soon", "rv-wait")
        assert proc.returncode == 125 and proc.stderr.startswith("Error: --interval 'soon'")
    finally:
        ok(root, "rm", "rv-wait")


def test_all_with_names_is_refused(root: Path) -> None:
    ok(root, "run", "-d", "--name", "rv-all", IMAGE, "sleep", "1000")
    try:
        for command in ("stop", "kill", "restart", "rm"):
            proc = hutch(root, command, "-a", "rv-all")
            assert proc.returncode == 125, command
            assert proc.stderr.startswith("Error: when using the --all switch"), command
        assert ok(root, "inspect", "-f", "{{.State.Status}}", "rv-all") == "running\n"
    finally:
        ok(root, "rm", "-f", "-t", "0", "rv-all")


def test_run_t_rm_interrupted_still_removes_the_container(root: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [*HUTCH, "--root", str(root), "run", "-t", "--rm", "--sig-proxy=false", "--name", "rv-int", IMAGE]
        + ["sleep", "1000"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while hutch(root, "inspect", "-f", "{{.State.Status}}", "rv-int").stdout != "running\n":
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(0.2)  # attached, relaying
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        ok(root, "stop", "-t", "0", "rv-int")  # its exit: cleanup removes it, as --rm asked
        deadline = time.monotonic() + 10
        while hutch(root, "inspect", "rv-int").returncode == 0:
            assert time.monotonic() < deadline, "the --rm container was left"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
        hutch(root, "rm", "-f", "-t", "0", "rv-int")
    assert leftovers(root) == []


def test_run_t_proxies_signals_to_the_container(root: Path) -> None:
    import signal
    import time

    script = 'trap "exit 7" TERM; echo ready; while :; do sleep 0.1; done'
    proc = subprocess.Popen(
        [*HUTCH, "--root", str(root), "run", "-t", "--rm", "--name", "rv-proxy", IMAGE, "sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert b"ready" in proc.stdout.readline()
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)  # to hutch: podman's --sig-proxy passes it to the container
        assert proc.wait(timeout=10) == 7
        assert hutch(root, "inspect", "rv-proxy").returncode == 125  # removed (--rm)
    finally:
        proc.kill()
        proc.wait()
        hutch(root, "rm", "-f", "-t", "0", "rv-proxy")
    assert leftovers(root) == []


def test_attach_proxies_signals_to_the_container(root: Path) -> None:
    import signal
    import time

    script = 'trap "exit 7" TERM; echo ready; while :; do sleep 0.1; done'
    ok(root, "run", "-d", "--name", "rv-attach", IMAGE, "sh", "-c", script)
    proc = subprocess.Popen(
        [*HUTCH, "--root", str(root), "attach", "rv-attach"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(0.5)  # attached
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 7
        assert ok(root, "inspect", "-f", "{{.State.ExitCode}}", "rv-attach") == "7\n"
    finally:
        proc.kill()
        proc.wait()
        ok(root, "rm", "-f", "-t", "0", "rv-attach")
    assert leftovers(root) == []


def test_rm_checks_and_removes_under_the_lock_a_start_claims_under(root: Path) -> None:
    # A start that claims the container between rm's check and its removal must not lose it to rm: rm
    # decides under the container's lock. The test holds that lock as a start's claim does, waits until rm
    # waits for it, plays the claim (the record says running, under a live claimer) and lets rm go on.
    cid = ok(root, "create", "--name", "rv-claimed", IMAGE, "sleep", "1000").strip()
    lock = root / "containers" / f"{cid}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    rm = None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        rm = subprocess.Popen(
            [*HUTCH, "--root", str(root), "rm", "rv-claimed"], stderr=subprocess.PIPE, text=True
        )
        inode = os.fstat(fd).st_ino
        wait_for(lambda: _flock_waiters(inode) > 0, 10, "rm to wait for the container's lock")
        db = sqlite3.connect(root / "containers.db")
        with db:
            db.execute(
                "UPDATE containers SET state = 'running', monitor_pid = ? WHERE id = ?", (os.getpid(), cid)
            )
        db.close()
    finally:
        os.close(fd)
    assert rm is not None
    _, err = rm.communicate(timeout=30)
    assert rm.returncode != 0 and "is running" in err, err
    assert "rv-claimed" in ok(root, "ps", "-a", "--format", "{{.Names}}")
    db = sqlite3.connect(root / "containers.db")
    with db:
        db.execute("UPDATE containers SET state = 'created', monitor_pid = NULL WHERE id = ?", (cid,))
    db.close()
    ok(root, "rm", "rv-claimed")
    assert leftovers(root) == []


def _flock_waiters(inode: int) -> int:
    """How many flocks wait for the file with this inode (/proc/locks marks waiters with "->")."""
    count = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()  # "1: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF"
        waiter = "->" in fields and fields[fields.index("->") + 1] == "FLOCK"
        count += waiter and fields[-3].split(":")[-1] == str(inode)
    return count


def test_finish_of_a_removed_container_leaves_no_lock_file(root: Path) -> None:
    # conmon's cleanup and a failed run's own cleanup may both finish a --rm container: the later one finds
    # it removed, and must not leave the lock file its lock made again (crun's refused runs left one).
    from hutch.engine.containers import Engine

    cid = ok(root, "create", "--name", "rv-finished", IMAGE, "true").strip()
    ok(root, "rm", "rv-finished")
    engine = Engine(str(root))
    engine.finish(cid, 0, remove=True)
    assert not (root / "containers" / f"{cid}.lock").exists()
    assert leftovers(root) == []
