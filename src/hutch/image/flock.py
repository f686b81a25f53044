"""flock-based locks on files under the storage's locks/ dir (see hutch.image.storage for which)."""

from __future__ import annotations

import fcntl
import os

# The modes a Flock takes, so its users need not import fcntl.
EXCLUSIVE = fcntl.LOCK_EX
SHARED = fcntl.LOCK_SH


class Flock:
    """An flock on a file under locks/, released on exit (and by the kernel when the process dies)."""

    def __init__(self, path: str, mode: int) -> None:
        self.path = path
        self.mode = mode
        self.fd = -1

    def acquire(self, blocking: bool = True) -> bool:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, self.mode | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(self.fd)
            self.fd = -1
            return False
        return True

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Flock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
