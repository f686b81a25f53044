"""Host-wide advisory locks of the networks' code (flock on a file under /run/hutch): several `hutch`
commands check, then change the same host state (chains, bridges, names, aardvark's files)."""

from __future__ import annotations

import contextlib
import fcntl
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

LOCK_DIR = "/run/hutch/cni/locks"


@contextlib.contextmanager
def held(path: str) -> Iterator[None]:
    """`path` locked exclusively (made if missing) for the block; released when its fd closes."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
