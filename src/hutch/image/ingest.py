"""Writing files whole or not at all: a blob into the store (streamed, verified, fsynced and renamed into
blobs/; see hutch.image.store for the layout and the sweep of what killed ingests leave), and any other file
in place of an old one (`replace_file`)."""

from __future__ import annotations

import errno
import fcntl
import os

from hutch.image.store import BlobStore, StoreError, _same_file
from hutch.oci.digest import MismatchError
from hutch.oci.verifier import Verifier

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import BinaryIO

    from hutch.oci.digest import Digest


def ingest(
    store: BlobStore,
    expected: Digest,
    size: int | None,
    chunks: Iterable[bytes],
    where: str = "",
    *,
    verified: bool = False,
) -> str:
    """Store the blob streamed by `chunks`, verified against `expected` and `size`; return its path.

    If the blob is already stored, `chunks` is not read. On a mismatch (MismatchError, naming `where`) or
    any other error, nothing is left behind. `verified` says the stream checks its own digest and raises
    before its last chunk on a mismatch (Registry.iter_blob does): then only the size is checked here,
    and a big layer is not hashed twice.
    """
    final = store.path(expected)
    if os.path.isfile(final):
        return final
    store.sweep()
    fd, tmp = _create_temp(store, expected)
    try:
        verifier = Verifier(expected, size, where or str(expected))
        received = 0
        with os.fdopen(os.dup(fd), "wb") as out:
            for chunk in chunks:
                if verified:
                    received += len(chunk)
                else:
                    verifier.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if not verified:
            verifier.finish()
        elif size is not None and received != size:
            raise MismatchError(
                f"{where or expected}: content is {received} bytes, its descriptor says {size}"
            )
        os.fchmod(fd, 0o644)
        os.rename(tmp, final)
    except BaseException:
        _unlink(tmp)
        os.close(fd)
        raise
    os.close(fd)
    _fsync_dir(os.path.dirname(final))
    return final


def _create_temp(store: BlobStore, expected: Digest) -> tuple[int, str]:
    """Create and lock a fresh temp file under ingest/.

    A sweeper may take the lock between our create and our flock and remove the file; after locking we
    check the name still leads to our file, and start over if it does not.
    """
    for _ in range(100):
        tmp = os.path.join(store.ingest_dir, f"{expected.hex}.{os.urandom(8).hex()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as e:
            if e.errno == errno.EEXIST:
                continue
            raise StoreError(f"{store.ingest_dir}: cannot create a temp file: {e.strerror}") from e
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_file(fd, tmp):
            return fd, tmp
        os.close(fd)
    raise StoreError(f"{store.ingest_dir}: cannot create a temp file for {expected}")


def replace_file(path: str, write: Callable[[BinaryIO], object], mode: int = 0o644) -> None:
    """Write a file in place of `path` atomically: `write` fills a temp file beside it, which is fsynced and
    renamed over `path`. On any error the temp file is removed and `path` is left as it was."""
    directory, base = os.path.split(os.path.abspath(path))
    while True:
        tmp = os.path.join(directory, f".{base}.{os.urandom(8).hex()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
