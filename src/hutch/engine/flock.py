"""An advisory lock on a file (flock) for a with-block, as the engine's locks take them: a container's, and
the networks' host-wide ones. A class rather than contextlib.contextmanager: contextlib's imports (functools,
collections) cost `run --rm` about 3 ms."""

from __future__ import annotations

import _thread
import fcntl
import os


class Held:
    """`path` (made if missing) locked exclusively, or `shared`, for the block; released when its fd closes.

    A lock taken again by the thread that holds it (`reentrant`: a container's, where rm checks and removes
    under the lock that finish takes too) is held once more rather than waited for: a second flock on another
    fd of the same file would wait for ourselves.
    """

    def __init__(self, path: str, shared: bool = False, reentrant: bool = False) -> None:
        self.path = path
        self.shared = shared
        self.key = (path, _thread.get_ident()) if reentrant else None
        self.fd = -1

    def __enter__(self) -> None:
        if self.key in _HELD:
            _HELD[self.key][1] += 1
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
                if _still_at(fd, self.path):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # unlinked (a container's, at its removal) while we waited: lock the path's file
        self.fd = fd
        if self.key is not None:
            _HELD[self.key] = [fd, 1]

    def __exit__(self, *_exc: object) -> None:
        if self.key is not None:
            held = _HELD[self.key]
            held[1] -= 1
            if held[1]:
                return
            del _HELD[self.key]
            os.close(held[0])
            return
        os.close(self.fd)
        self.fd = -1


def _still_at(fd: int, path: str) -> bool:
    """Whether the file we locked is still the one at `path`. Whoever held it may have unlinked it before
    letting go; a lock on the unlinked file would exclude no one who opens `path` from now on."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    locked = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (locked.st_dev, locked.st_ino)


# (path, thread) -> [fd, depth] of the reentrant locks this process holds.
_HELD: dict[tuple[str, int], list[int]] = {}
