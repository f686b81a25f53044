"""Paying the cgroup migration lock's RCU grace period early, in the background.

Moving a process into a cgroup takes cgroup_threadgroup_rwsem for writing; when that lock has been idle, the
kernel first waits for an RCU grace period (1-15 ms here), and only then does the move, in microseconds.
The runtime moves a process on every create and exec, so it starts, before it even reads config.json, a
thread that keeps the lock warm with no-op moves (our own pid into our own cgroup) until the real move is
done, and the wait overlaps with work the runtime does anyway. stdlib `_thread` only: this is the hot path.
"""

from __future__ import annotations

import _thread
import os
import time

_state = {"stop": False, "running": False}
_MAX_SECONDS = 2.0


def _own_procs_file() -> str | None:
    """cgroup.procs of our own cgroup in one hierarchy (the lock is shared by all of them)."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in ("pids", "memory", "cpu", "freezer"):
            if name in controllers.split(","):
                candidate = f"/sys/fs/cgroup/{controllers}{path}/cgroup.procs"
                if os.path.exists(candidate):
                    return candidate
        if controllers == "":
            for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                candidate = f"{root}{path}/cgroup.procs"
                if os.path.exists(candidate):
                    return candidate
    return None


def early(argv: list[str]) -> None:
    """Start, from hutch-runtime's launcher before it imports the CLI, for a command that moves a process.

    The grace period (~10-15 ms on an idle VM) is then under way ~2 ms sooner than from the command itself,
    and `run` waits for it otherwise. A flag value that reads like a command only costs a no-op thread.
    """
    if any(arg in ("create", "run", "exec") for arg in argv[1:]):
        start()


def start() -> None:
    """Begin keeping the lock warm, when we may move processes (as root); once until stop()."""
    if os.geteuid() != 0 or (_state["running"] and not _state["stop"]):
        return
    path = _own_procs_file()
    if path is not None:
        _state["stop"] = False
        _state["running"] = True
        _thread.start_new_thread(_keep_warm, (path, str(os.getpid()).encode()))


def stop() -> None:
    _state["stop"] = True


def _keep_warm(path: str, pid: bytes) -> None:
    deadline = time.monotonic() + _MAX_SECONDS
    try:
        while not _state["stop"] and time.monotonic() < deadline:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
            time.sleep(0.001)
    except OSError:
        pass
    finally:
        _state["running"] = False
