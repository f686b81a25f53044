"""The init `hutch run` spawns ahead (hutch.runtime.prespawn): a foreground run's container is that process,
and every run that cannot use it (detached, a terminal, another runtime, the host's PID namespace, a failed
create) leaves no such process behind. Seen in the engine's children while the container runs, and in /proc.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.integration import test_engine_run as run_suite
from tests.integration.helpers import children_of
from tests.integration.test_engine_run import HUTCH, IMAGE, hutch, ok

remote = run_suite.remote
root = run_suite.root

# What the spawned interpreter's command line holds until it becomes the container's process.
BOOT_MARK = b"hutch.runtime.prespawn import serve"


def spawned_left() -> list[int]:
    """Processes still running the spawned init's boot code (none of them a container yet)."""
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if BOOT_MARK in Path(f"/proc/{entry}/cmdline").read_bytes():
                    left.append(int(entry))
            except OSError:
                pass
    return left


def running_children(root: Path, *run_args: str) -> list[tuple[int, bytes]]:
    """Start a foreground `hutch run ... sleep 5`; the engine's children once the container runs."""
    engine = subprocess.Popen(
        [*HUTCH, "--root", str(root), "run", "--rm", *run_args, IMAGE, "sleep", "5"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            kids = children_of(engine.pid)
            if any(cmd == b"sleep\x005\x00" for _, cmd in kids):
                return kids
            assert engine.poll() is None, engine.stderr.read() if engine.stderr else b""
            time.sleep(0.02)
        raise AssertionError("the container did not start")
    finally:
        engine.kill()
        engine.wait()
        subprocess.run(
            [*HUTCH, "--root", str(root), "rm", "-af", "-t", "0"], capture_output=True, check=False
        )


def test_the_container_is_the_init_spawned_ahead(root: Path) -> None:
    kids = running_children(root, "--network", "none")
    assert [cmd for _, cmd in kids] == [b"sleep\x005\x00"]  # no second, idle init beside it
    out = ok(
        root,
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo $$; grep Seccomp: /proc/self/status",
    )
    assert out.split() == ["1", "Seccomp:", "2"]


def test_the_hosts_pid_namespace_discards_it(root: Path) -> None:
    kids = running_children(root, "--network", "none", "--pid", "host")
    assert [cmd for _, cmd in kids] == [b"sleep\x005\x00"]
    assert spawned_left() == []
    out = ok(root, "run", "--rm", "--network", "none", "--pid", "host", IMAGE, "sh", "-c", "echo $$")
    assert int(out) > 1


def test_another_runtime_discards_it(root: Path) -> None:
    kids = running_children(root, "--network", "none", "--runtime", "runc")
    assert BOOT_MARK not in b"".join(cmd for _, cmd in kids)
    assert spawned_left() == []


def test_detached_and_failed_runs_leave_none(root: Path) -> None:
    cid = ok(root, "run", "-d", "--network", "none", IMAGE, "sleep", "5").strip()
    assert spawned_left() == []
    ok(root, "rm", "-f", "-t", "0", cid)
    failed = hutch(root, "run", "--rm", "--network", "none", "localhost/no-such:image", "true")
    assert failed.returncode == 125
    failed = hutch(root, "run", "--rm", "--network", "none", IMAGE, "/no/such/program")
    assert failed.returncode == 127
    deadline = time.monotonic() + 5  # an orphan one reads EOF and exits
    while spawned_left() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spawned_left() == []


def test_it_gets_the_stdio_the_engine_has_at_create(root: Path) -> None:
    """Spawned before the engine pointed its stdin at /dev/null (no -i): the container reads nothing."""
    argv = [*HUTCH, "--root", str(root), "run", "--rm", "--network", "none"]
    quiet = subprocess.run([*argv, IMAGE, "cat"], input="data\n", capture_output=True, text=True, timeout=60)
    assert (quiet.returncode, quiet.stdout) == (0, "")
    fed = subprocess.run(
        [*argv, "-i", IMAGE, "cat"], input="data\n", capture_output=True, text=True, timeout=60
    )
    assert (fed.returncode, fed.stdout) == (0, "data\n")


def test_the_container_has_no_signal_ignored_or_blocked(root: Path) -> None:
    # The spawned init starts with SIGINT blocked and then ignores it until it execs: the container gets neither.
    out = ok(
        root, "run", "--rm", "--network", "none", IMAGE, "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"
    )
    assert out.split() == ["SigBlk:", "0000000000000000", "SigIgn:", "0000000000000000"]
