"""The init hutch-runtime's launcher forks ahead for create and run (hutch.runtime.prespawn): the container is
that process, and a create that cannot use it (no new PID namespace) or that fails leaves no process of it.
Seen in the runtime's children while the container runs, and in /proc once the runtime has returned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import children_of, remove_namespace, sh

SRC = Path(__file__).resolve().parents[2] / "src"


def naming(container_id: str) -> list[int]:
    """Processes whose command line names `container_id` (a runtime, or a copy of one forked ahead)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if container_id.encode() in Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0"):
                    found.append(int(entry))
            except OSError:
                pass
    return found


def children_while_running(runtime: Any, bundle: Path, container_id: str) -> list[bytes]:
    proc = subprocess.Popen(runtime.command("run", "--bundle", bundle, container_id), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            kids = [cmd for _, cmd in children_of(proc.pid)]
            if b"sleep\x005\x00" in kids:
                return kids
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            time.sleep(0.01)
        raise AssertionError("the container did not start")
    finally:
        runtime.run("kill", container_id, "KILL", check=False)
        proc.wait(timeout=20)


def test_the_container_is_the_init_forked_ahead(runtime: Any, bundle: Any) -> None:
    kids = children_while_running(runtime, bundle(["sleep", "5"]), "ahead-1")
    assert kids == [b"sleep\x005\x00"]  # no idle second init beside it
    assert runtime.run("run", "--bundle", sh(bundle, "echo $$"), "ahead-2").stdout == "1\n"


def test_no_pid_namespace_discards_it(runtime: Any, bundle: Any) -> None:
    kids = children_while_running(
        runtime, bundle(["sleep", "5"], edit=lambda s: remove_namespace(s, "pid")), "ahead-3"
    )
    assert kids == [b"sleep\x005\x00"]
    out = runtime.run(
        "run", "--bundle", sh(bundle, "echo $$", edit=lambda s: remove_namespace(s, "pid")), "ahead-4"
    )
    assert int(out.stdout) > 1
    assert naming("ahead-4") == []


# Runs a command as the child of a subreaper and prints how many processes it left to it: any process the
# command started and did not reap before it exited comes to us, alive or a zombie, and is counted here.
_ORPHANS = """
import ctypes, os, subprocess, sys
assert ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
left = 0
while True:
    try:
        pid, _ = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    left += 1
print(done.returncode, left, done.stderr.strip().replace(chr(10), " "))
"""


def test_a_failed_create_leaves_no_process(runtime: Any, bundle: Any) -> None:
    b = bundle(["true"])
    config = b / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "ociVersion": "9.0.0"}))
    failed = runtime.run("create", "--bundle", b, "ahead-5", check=False)
    assert failed.returncode != 0 and "ociVersion" in failed.stderr
    assert naming("ahead-5") == []
    # The runtime killed and reaped its init started ahead before it exited: none was left to a subreaper
    # above it (one left running would have exited of itself once the runtime's end of its socket closed).
    out = subprocess.run(
        [sys.executable, "-c", _ORPHANS, *runtime.command("create", "--bundle", b, "ahead-6")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    code, left, stderr = out.stdout.split(" ", 2)
    assert (int(code) != 0, int(left)) == (True, 0), stderr
    assert "ociVersion" in stderr


def test_the_container_has_no_signal_ignored_or_blocked(runtime: Any, bundle: Any) -> None:
    # The init started ahead ignores SIGINT until it execs, and Python ignores SIGPIPE and SIGXFSZ: none of it
    # may reach the container's process, here grep itself.
    b = bundle(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
    out = runtime.run("run", "--bundle", b, "ahead-7").stdout
    assert out.split() == ["SigBlk:", "0000000000000000", "SigIgn:", "0000000000000000"]


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "spawned"])
def test_the_init_ahead_outlives_a_terminal_interrupt(fork: bool) -> None:
    # A Ctrl-C reaches the terminal's whole foreground process group, the init waiting for its container too
    # (forked by hutch-runtime, spawned by `hutch run`): it ignores it, with no traceback, and the command that
    # started it decides what becomes of it.
    script = f"""
import os, sys, time
sys.path.insert(0, {str(SRC)!r})
from hutch.runtime import prespawn
prespawn.spawn({"fork=True" if fork else ""})
pid = prespawn._spawned[0][0]
time.sleep(0.5)  # it waits on its socket by now
os.kill(pid, 2)
time.sleep(0.2)
print(os.waitpid(pid, os.WNOHANG)[0] == 0)
prespawn.discard()
print(os.path.exists(f"/proc/{{pid}}"))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.stdout.split() == ["True", "False"], result.stderr
    assert "KeyboardInterrupt" not in result.stderr
