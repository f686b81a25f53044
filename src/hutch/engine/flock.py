"""An advisory lock on a file (flock) for a with-block, as the engine's locks take them: a container's, and
the networks' host-wide ones. A class rather than contextlib.contextmanager: contextlib's imports (functools,
collections) cost `run --rm` about 3 ms."""

from __future__ import annotations

import fcntl
import os


class Held:
    """`path` (made if missing) locked exclusively, or `shared`, for the block; released when its fd closes."""

    def __init__(self, path: str, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self.fd = -1

    def __enter__(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __exit__(self, *_exc: object) -> None:
        os.close(self.fd)
        self.fd = -1
