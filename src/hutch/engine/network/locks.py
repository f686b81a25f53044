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
def held(path: str, shared: bool = False) -> Iterator[None]:
    """`path` locked exclusively, or `shared`, (made if missing) for the block; released when its fd closes."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def networks(root: str, shared: bool = False) -> contextlib.AbstractContextManager[None]:
    """ROOT's networks (their names are per root): a create or connect holds the lock shared from finding
    its networks until its plan names them, network rm and prune exclusive from looking for users until
    the network is gone, so neither removes a network a container is joining. Nothing taken under the
    exclusive lock may take it shared (two fds of one process conflict)."""
    return held(os.path.join(root, "networks.lock"), shared)
