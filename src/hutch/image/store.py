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
is left alone, however old. Writing is in hutch.image.ingest: `run` only reads.
"""

from __future__ import annotations

import fcntl
import os

from hutch.errors import HutchError, NotFoundError
from hutch.oci.digest import HEX_LENGTH, Digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import BinaryIO

    from hutch.image.ingest import replace_file as replace_file  # re-exported by __getattr__
    from hutch.oci.digest import MismatchError as MismatchError

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
        """hutch.image.ingest.ingest: store the blob `chunks` stream, verified; return its path."""
        from hutch.image import ingest

        return ingest.ingest(self, expected, size, chunks, where, verified=verified)

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


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def __getattr__(name: str) -> object:
    """replace_file (from hutch.image.ingest) and MismatchError (hutch.oci.digest's), imported on first use."""
    if name == "replace_file":
        from hutch.image.ingest import replace_file

        return replace_file
    if name == "MismatchError":
        from hutch.oci.digest import MismatchError

        return MismatchError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_ROOT", "BlobStore", "MismatchError", "StoreError", "replace_file"]
