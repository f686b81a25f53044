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

# "generation" tells a thread that stop() and start() came since it began: it then ends (one at a time).
_state = {"generation": 0, "stop": False}
# The open fd of each running thread (a host cgroup's cgroup.procs): a forked child closes them (forget).
_fds: list[int] = []
_MAX_SECONDS = 2.0
# Between two moves: each wakes the thread, which must take the GIL from the importing main thread (~0.1 ms
# a handover). The lock goes cold only after an idle grace period, several ms: one move in 4 ms keeps it warm.
_INTERVAL = 0.004


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


def early(command: str) -> None:
    """Start, from hutch-runtime's launcher before it imports the CLI, for a command that moves a process.

    The grace period (~10-15 ms on an idle VM) is then under way ~2 ms sooner than from the command itself,
    and `run` waits for it otherwise.
    """
    if command in ("create", "run", "exec"):
        start()


def start() -> None:
    """Begin keeping the lock warm, when we may move processes (as root); once until stop()."""
    if os.geteuid() != 0 or (_fds and not _state["stop"]):
        return
    path = _own_procs_file()
    if path is None:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    _fds.append(fd)
    _state["stop"] = False
    _state["generation"] = generation = int(_state["generation"]) + 1
    running = _thread.allocate_lock()
    running.acquire()
    _thread.start_new_thread(_keep_warm, (fd, str(os.getpid()).encode(), generation, running))
    # Wait (the GIL released) until the thread runs: left to take the GIL when the importing main thread
    # drops it, it began its first move, and so the grace period, 1-5 ms later (~0.2 ms this way).
    running.acquire()


def stop() -> None:
    _state["stop"] = True


def forget() -> None:
    """In a forked child, where no thread of ours runs: close the fds the threads had open, before the child
    enters a container (they are close-on-exec, but nothing of the host may be open inside until then)."""
    for fd in _fds:
        try:
            os.close(fd)
        except OSError:
            pass
    _fds.clear()


def _keep_warm(fd: int, pid: bytes, generation: int, running: _thread.LockType) -> None:
    deadline = time.monotonic() + _MAX_SECONDS
    running.release()
    try:
        while not _state["stop"] and _state["generation"] == generation and time.monotonic() < deadline:
            os.write(fd, pid)
            time.sleep(_INTERVAL)
    except OSError:
        pass  # the cgroup is gone
    finally:
        _fds.remove(fd)  # first: a child forked after the close must not close a reused number
        os.close(fd)
