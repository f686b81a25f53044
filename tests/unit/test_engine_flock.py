"""The engine's file locks (engine/flock.py): a lock whose file its holder unlinks before it lets go (a
container's, when the container is removed) must not be taken by a waiter on the unlinked file, or the waiter
and whoever opens the path afresh would both hold "the" lock."""

import os
import threading
import time
from pathlib import Path

from hutch.engine.flock import Held


def _waiting_on(path: Path) -> bool:
    """Whether some process waits for a flock on `path`'s file (a "->" line of /proc/locks names its inode)."""
    ino = os.stat(path).st_ino
    return any(
        line.split()[1] == "->" and line.split()[6].endswith(f":{ino}")
        for line in Path("/proc/locks").read_text().splitlines()
    )


def test_a_waiter_on_an_unlinked_lock_file_does_not_hold_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "c1.lock"
    events: list[str] = []

    def waiter() -> None:
        with Held(str(path)):
            events.append("B in")
            time.sleep(0.3)
            events.append("B out")

    with Held(str(path)):  # A
        b = threading.Thread(target=waiter)
        b.start()
        deadline = time.monotonic() + 10
        while not _waiting_on(path):
            assert time.monotonic() < deadline, "the waiter never blocked on the lock"
            time.sleep(0.01)
        path.unlink()  # A removes the lock file before it lets go, as a container's removal does
    time.sleep(0.05)  # B, woken, takes the lock (on the path's new file, not on the unlinked one)
    with Held(str(path)):  # C opens the path afresh
        events.append("C in")
        events.append("C out")
    b.join(timeout=10)
    # B and C each held the lock alone: neither entered while the other was in
    assert events in (["B in", "B out", "C in", "C out"], ["C in", "C out", "B in", "B out"]), events
