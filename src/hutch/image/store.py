"""The content-addressed blob store: manifests, configs and compressed layers, by digest.

Layout under the storage root (default /var/lib/hutch/storage):

    blobs/<algorithm>/<hex>     one file per blob, named by its digest, complete and verified
    ingest/<hex>.<random>       a blob being written; locked (flock) by the process writing it

`BlobStore.ingest(expected, size, chunks)` streams into a temp file under ingest/, verifying size and digest as
the bytes arrive, fsyncs it and renames it into blobs/ (then fsyncs the directory). A blob under blobs/ is
therefore always whole and correct. A mismatch, or any other error, removes the temp file. Two ingests of the
same digest at once both succeed: each writes its own temp file and the second rename replaces identical
content. A process killed mid-ingest leaves only its temp file, no longer locked; `sweep()` (run by every
ingest and by `BlobStore(...)` itself) removes such files. A temp file whose writer is alive stays locked and
is left alone, however old.
"""

from __future__ import annotations

import errno
import fcntl
import os

from hutch.errors import HutchError, NotFoundError
from hutch.oci.digest import HEX_LENGTH, Digest, MismatchError, Verifier

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import BinaryIO

DEFAULT_ROOT = "/var/lib/hutch/storage"


class StoreError(HutchError):
    """The blob store cannot read or write (permissions, disk full, a broken layout)."""


class BlobStore:
    """Blobs by digest under `root`; safe to use from several processes at once."""

    def __init__(self, root: str = DEFAULT_ROOT, *, sweep: bool = True) -> None:
        self.root = root
        self.blobs_dir = os.path.join(root, "blobs")
        self.ingest_dir = os.path.join(root, "ingest")
        try:
            for algorithm in HEX_LENGTH:
                os.makedirs(os.path.join(self.blobs_dir, algorithm), mode=0o700, exist_ok=True)
            os.makedirs(self.ingest_dir, mode=0o700, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{root}: cannot create the blob store: {e.strerror}") from e
        if sweep:
            self.sweep()

    def path(self, digest: Digest) -> str:
        """Where the blob `digest` lives (whether or not it is there)."""
        return os.path.join(self.blobs_dir, digest.algorithm, digest.hex)

    def has(self, digest: Digest) -> bool:
        return os.path.isfile(self.path(digest))

    def size(self, digest: Digest) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest}: not in the store {self.root}") from None

    def open(self, digest: Digest) -> BinaryIO:
        """Open the blob for reading; NotFoundError if it is not stored."""
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest}: not in the store {self.root}") from None

    def read(self, digest: Digest) -> bytes:
        """The whole blob (for manifests and configs; stream layers with `open`)."""
        with self.open(digest) as f:
            return f.read()

    def delete(self, digest: Digest) -> bool:
        """Remove the blob; False if it was not there."""
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            return False
        return True

    def list(self) -> Iterator[Digest]:
        """Every stored blob, in no particular order; stray files under blobs/ are skipped."""
        for algorithm, length in HEX_LENGTH.items():
            try:
                names = os.listdir(os.path.join(self.blobs_dir, algorithm))
            except FileNotFoundError:
                continue
            for name in names:
                if len(name) == length and all(c in "0123456789abcdef" for c in name):
                    yield Digest(algorithm, name)  # type: ignore[arg-type]  # a key of HEX_LENGTH

    def ingest(
        self,
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
        final = self.path(expected)
        if os.path.isfile(final):
            return final
        self.sweep()
        fd, tmp = self._create_temp(expected)
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

    def ingest_bytes(self, data: bytes, expected: Digest, where: str = "") -> str:
        """Store `data`, which must have the digest `expected`."""
        return self.ingest(expected, len(data), (data,), where)

    def sweep(self) -> int:
        """Remove temp files left by killed ingests (those no process holds locked); return how many."""
        removed = 0
        try:
            names = os.listdir(self.ingest_dir)
        except FileNotFoundError:
            return 0
        for name in names:
            path = os.path.join(self.ingest_dir, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # a live ingest holds it
                continue
            try:
                if _same_file(fd, path):
                    os.unlink(path)
                    removed += 1
            except OSError:
                pass
            finally:
                os.close(fd)
        return removed

    def _create_temp(self, expected: Digest) -> tuple[int, str]:
        """Create and lock a fresh temp file under ingest/.

        A sweeper may take the lock between our create and our flock and remove the file; after locking we
        check the name still leads to our file, and start over if it does not.
        """
        for _ in range(100):
            tmp = os.path.join(self.ingest_dir, f"{expected.hex}.{os.urandom(8).hex()}")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except OSError as e:
                if e.errno == errno.EEXIST:
                    continue
                raise StoreError(f"{self.ingest_dir}: cannot create a temp file: {e.strerror}") from e
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, tmp):
                return fd, tmp
            os.close(fd)
        raise StoreError(f"{self.ingest_dir}: cannot create a temp file for {expected}")


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


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


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


__all__ = ["DEFAULT_ROOT", "BlobStore", "MismatchError", "StoreError", "replace_file"]
