"""Unpacking an image layer (a tar, plain, gzip or zstd) into a directory, safely.

Every entry is written through file descriptors relative to a directory fd of the destination, with parents
resolved by openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) and final components never followed: a hostile
archive (`..`, absolute names, symlinks or hardlinks that lead out, writes through a symlink, device nodes)
is refused without anything written outside the destination. OCI whiteouts become overlayfs whiteouts (a 0/0
character device) and opaque directories (trusted.overlay.opaque=y), so the directory is ready to be a lower
layer of an overlay mount. The diff_id (sha256 of the uncompressed tar) is computed while streaming.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from hutch.errors import HutchError
from hutch.image.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, SPARSE, SYM, Entry, Reader, TarError
from hutch.linux.fs import O_PATH, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, openat2

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    from hutch.record import dataclass  # dataclasses costs ~4 ms to import, on every pull

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")

_T = TypeVar("_T")
_CHUNK = 1 << 20
_DEPTH = 8  # chunks decompressed ahead of the tar reader
_RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS
_O_DIRPATH = O_PATH | os.O_DIRECTORY | os.O_CLOEXEC

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

MEDIA_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "tar",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
}


class LayerError(HutchError):
    """A layer could not be unpacked: a hostile or corrupt archive, or an unsupported compression."""


@dataclass
class LayerStats:
    """What unpacking a layer found: `size` bytes of uncompressed tar, its `diff_id`, `files` entries."""

    size: int
    diff_id: str
    files: int


def _load_gunzip() -> tuple[Callable[[], Any], tuple[type[Exception], ...]]:
    """python-isal's inflate when it is installed (ISA-L: about 2.5x zlib's speed on a Debian layer, see
    bench/pull), else zlib's; both read concatenated gzip members the same way."""
    try:
        from isal import isal_zlib
    except ImportError:
        return (lambda: zlib.decompressobj(wbits=31)), (zlib.error,)
    isal_error: type[Exception] = isal_zlib.error  # type: ignore[assignment]  # the stubs call it an instance
    return (lambda: isal_zlib.decompressobj(wbits=31)), (zlib.error, isal_error)


_gunzip, _GZIP_ERRORS = _load_gunzip()


class _ReadAhead:
    """Reads (decompresses and hashes) `src` in a thread, up to _DEPTH chunks ahead of the tar reader,
    through a Pipe (hutch.image.pipe).

    zlib, zstd and sha256 let go of the GIL on big buffers, so on two cores the decompression and the
    diff_id hash overlap the tar parsing and file writes (bench/pull: the layer unpacks in about half the
    time). An error in the thread is raised to the reader, in order; `close` stops the thread early.
    """

    def __init__(self, src: _Uncompressed) -> None:
        import threading

        from hutch.image.pipe import Pipe

        self._src = src
        self._pipe = Pipe(_DEPTH)
        self._thread = threading.Thread(target=self._run, name="hutch-layer-read", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._pipe.abandoned:
                data = self._src.read(_CHUNK)
                if not data:
                    break
                self._pipe.write(data)
            self._pipe.close()
        except BaseException as e:  # handed to the reader, who raises it
            self._pipe.fail(e, wrap=False)

    def read(self, n: int = _CHUNK) -> bytes:
        return self._pipe.read(n)

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    def close(self) -> None:
        """Stop the thread (it may be blocked on a full pipe) and wait for it."""
        self._pipe.abandon()
        self._thread.join()


class _Uncompressed:
    """A read()-able view of the uncompressed tar that hashes and counts every byte it hands out."""

    def __init__(self, stream: BinaryIO, kind: str, media_type: str) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self.size = 0
        head = stream.read(4)
        if head.startswith(_GZIP_MAGIC):
            kind = "gzip"
        elif head.startswith(_ZSTD_MAGIC):
            kind = "zstd"
        elif kind != "tar" and head:
            # A docker "tar.gzip" layer is sometimes plain tar: trust the bytes, as containerd does.
            kind = "tar"
        self._pending = head
        self._gzip: Any = None  # a zlib or isal_zlib decompressor (the same interface)
        self._zstd: BinaryIO | None = None
        if kind == "gzip":
            self._gzip = _gunzip()
        elif kind == "zstd":
            import zstandard  # a dependency, imported only for zstd layers

            # _Prefixed has the read() that stream_reader uses; the stubs ask for a whole IO[bytes].
            self._zstd = zstandard.ZstdDecompressor().stream_reader(
                _Prefixed(head, stream),  # type: ignore[arg-type]
                read_across_frames=True,
            )
            self._pending = b""

    def _raw(self, n: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._stream.read(n)

    def _produce(self, n: int) -> bytes:
        if self._zstd is not None:
            return self._zstd.read(n)
        gz = self._gzip
        if gz is None:
            return self._raw(n)
        while True:
            if gz.unconsumed_tail:
                data = gz.unconsumed_tail
            elif gz.eof:
                rest = gz.unused_data
                if not rest:
                    rest = self._raw(_CHUNK)
                    if not rest:
                        return b""
                # Another gzip member follows (concatenated gzip is still one stream).
                gz = self._gzip = _gunzip()
                data = rest
            else:
                data = self._raw(_CHUNK)
                if not data:
                    out: bytes = gz.flush()
                    if not _ended(gz):
                        raise LayerError("gzip stream ends early (truncated layer)")
                    return out
            try:
                out = gz.decompress(data, n)
            except _GZIP_ERRORS as e:
                raise LayerError(f"gzip: {e}") from None
            if out:
                return out

    def read(self, n: int = _CHUNK) -> bytes:
        data = self._produce(n)
        if data:
            self._hash.update(data)
            self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    def diff_id(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def _ended(gz: Any) -> bool:
    return bool(gz.eof)


class _Prefixed:
    """A stream with bytes already read from it put back in front."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head, b""
            return data
        return self._stream.read(n)


class _Refused(Exception):
    """An entry that must not be unpacked; the message says why."""


def _split(name: str) -> list[str]:
    """The components of an entry name, relative to the layer root; refuses absolute and `..` names."""
    if name.startswith("/"):
        raise _Refused("absolute path")
    parts = name.split("/")
    if "" in parts or "." in parts:
        parts = [p for p in parts if p not in ("", ".")]
    if ".." in parts:
        raise _Refused("path contains '..'")
    return parts


# Files this big have their writeback started as soon as they are written, so the syncfs that ends a pull
# (hutch.image.pull) has less to wait for.
_WRITEBACK = 1 << 18
_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int) -> None:
    """sync_file_range(SYNC_FILE_RANGE_WRITE): start writing the file's dirty pages, without waiting."""
    from hutch.linux.cdata import c_uint64
    from hutch.linux.libc import libc

    libc.sync_file_range(fd, c_uint64(0), c_uint64(0), _SYNC_FILE_RANGE_WRITE)  # advisory: errors ignored


_O_NEWFILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Directory fds kept open for the entries that follow (a tar lists a directory's entries together).
_PARENTS = 64


class _Unpacker:
    """Makes the entries of one layer under the directory fd `root`.

    Parent directories are looked up with openat2(RESOLVE_BENEATH) and their fds kept for the entries that
    follow: a kept fd stays right until something in the layer is removed (a later entry replacing an
    earlier one, a whiteout), which forgets them all."""

    def __init__(self, root: int, allow_devices: bool) -> None:
        self.root = root
        self.allow_devices = allow_devices
        self.dirs: dict[tuple[str, ...], int] = {}  # directory -> its mtime (ns), set at the end
        self._parents: dict[str, int] = {}
        self._stale: list[int] = []  # fds forgotten while an entry may still use them

    def close(self) -> None:
        self.forget()
        self._close_stale()

    def forget(self) -> None:
        self._stale.extend(self._parents.values())
        self._parents = {}

    def _close_stale(self) -> None:
        for fd in self._stale:
            os.close(fd)
        self._stale = []

    def parent(self, parts: list[str]) -> int:
        """An fd of the directory holding parts[-1] (not to be closed), made if missing; never outside the
        root."""
        if len(parts) == 1:
            return self.root
        rel = "/".join(parts[:-1])
        fd = self._parents.get(rel)
        if fd is not None:
            return fd
        try:
            fd = self._lookup(rel)
        except FileNotFoundError:  # make the missing parents, as tar does
            try:
                os.mkdir(parts[-2], 0o755, dir_fd=self.parent(parts[:-1]))
            except FileExistsError:
                pass
            fd = self._lookup(rel)
        self._parents[rel] = fd
        return fd

    def _lookup(self, rel: str) -> int:
        try:
            try:
                return openat2(self.root, rel, _O_DIRPATH, resolve=_RESOLVE)
            except BlockingIOError:  # EAGAIN: a rename raced the lookup; once more is enough here
                return openat2(self.root, rel, _O_DIRPATH, resolve=_RESOLVE)
        except OSError as e:
            if e.errno == 18:  # EXDEV: resolution would leave the root
                raise _Refused(f"parent {rel!r} leads outside the layer") from None
            if e.errno == 40:  # ELOOP
                raise _Refused(f"parent {rel!r} is a symlink loop") from None
            if e.errno == 20:  # ENOTDIR
                raise _Refused(f"parent {rel!r} is not a directory") from None
            raise

    def clear(self, pfd: int, name: str, keep_dir: bool) -> None:
        """Remove what is at `name` so that a new entry can take its place (a later entry wins)."""
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            self.forget()
            shutil.rmtree(name, dir_fd=pfd)
        else:
            self.forget()
            os.unlink(name, dir_fd=pfd)

    def replacing(self, pfd: int, name: str, make: Callable[[], _T]) -> _T:
        """`make()` the entry `name`; if something is in the way, remove it and make it again."""
        try:
            return make()
        except FileExistsError:
            self.clear(pfd, name, keep_dir=False)
            return make()

    def entry(self, tar: Reader, m: Entry) -> None:
        if self._stale:
            self._close_stale()
        if len(self._parents) > _PARENTS:
            self.forget()
            self._close_stale()
        parts = _split(m.name)
        if not parts:  # "./": the layer's root itself
            if m.type != DIR:
                raise _Refused("the layer root as a non-directory")
            fd = os.open(".", _O_DIR, dir_fd=self.root)
            try:
                self.meta(fd, m)
            finally:
                os.close(fd)
            self.dirs[()] = m.mtime_ns
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(parts)
            return
        pfd = self.parent(parts)
        kind = m.type
        if kind == REG:
            # A later entry replaces an earlier one of the same name: make the new one, and clear the old only
            # when it is there (most entries are new; a stat before each would cost a syscall per entry).
            fd = self.replacing(pfd, base, lambda: os.open(base, _O_NEWFILE, 0o600, dir_fd=pfd))
            try:
                if m.size:
                    tar.write_data(fd, m.size)
                    if m.size >= _WRITEBACK:
                        _start_writeback(fd)
                self.meta(fd, m)
                os.utime(fd, ns=(m.mtime_ns, m.mtime_ns))
            finally:
                os.close(fd)
        elif kind == DIR:
            self.directory(pfd, parts, m)
        elif kind == SYM:
            self.replacing(pfd, base, lambda: os.symlink(m.linkname, base, dir_fd=pfd))
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(base, ns=(m.mtime_ns, m.mtime_ns), dir_fd=pfd, follow_symlinks=False)
        elif kind == LNK:
            self.replacing(pfd, base, lambda: self.hardlink(pfd, base, m.linkname))
        elif kind in (CHR, BLK, FIFO):
            if kind != FIFO and not self.allow_devices:
                raise _Refused("device node (devices are not allowed in this layer)")
            mode = stat.S_IFCHR if kind == CHR else stat.S_IFBLK if kind == BLK else stat.S_IFIFO
            dev = os.makedev(m.devmajor, m.devminor)
            self.replacing(pfd, base, lambda: os.mknod(base, mode | 0o600, dev, dir_fd=pfd))
            fd = os.open(base, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                self.meta(fd, m, via_proc=True)
            finally:
                os.close(fd)
            os.utime(base, ns=(m.mtime_ns, m.mtime_ns), dir_fd=pfd, follow_symlinks=False)
        elif kind == SPARSE:
            raise _Refused("sparse file (not supported in layers)")
        else:
            raise _Refused(f"unsupported entry type {chr(kind)!r}")

    def directory(self, pfd: int, parts: list[str], m: Entry) -> None:
        """Make (or keep) the directory, set its owner and mode, and keep its fd: its entries come next."""
        base = parts[-1]
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            self.clear(pfd, base, keep_dir=True)  # a directory stays; anything else goes
            try:
                os.mkdir(base, 0o700, dir_fd=pfd)
            except FileExistsError:
                pass
        fd = os.open(base, _O_DIR, dir_fd=pfd)
        try:
            self.meta(fd, m)
        except BaseException:
            os.close(fd)
            raise
        rel = "/".join(parts)
        old = self._parents.pop(rel, None)
        if old is not None:
            self._stale.append(old)
        self._parents[rel] = fd
        self.dirs[tuple(parts)] = m.mtime_ns

    def hardlink(self, pfd: int, base: str, linkname: str) -> None:
        try:
            tparts = _split(linkname)
        except _Refused as e:
            raise _Refused(f"hardlink target {linkname!r}: {e}") from None
        if not tparts:
            raise _Refused(f"hardlink target {linkname!r} is the layer root")
        try:
            tfd = self.parent(tparts)
        except _Refused as e:
            raise _Refused(f"hardlink target {linkname!r}: {e}") from None
        try:
            st = os.stat(tparts[-1], dir_fd=tfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise _Refused(f"hardlink target {linkname!r} is a directory")
            os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            raise _Refused(f"hardlink target {linkname!r} is not in the layer") from None

    def meta(self, fd: int, m: Entry, via_proc: bool = False) -> None:
        """Owner, then mode (chown clears setuid), then xattrs (chown clears file capabilities)."""
        target: int | str = f"/proc/self/fd/{fd}" if via_proc else fd
        os.chown(target, m.uid, m.gid)
        os.chmod(target, stat.S_IMODE(m.mode))
        if m.pax is not None:
            for key, value in _xattrs(m.pax):
                os.setxattr(target, key, value)

    def whiteout(self, parts: list[str]) -> None:
        base = parts[-1]
        pfd = self.parent(parts)
        if base == WHITEOUT_OPAQUE:
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # aufs metadata (.wh..wh.plnk and the like): nothing to unpack
        name = base[len(WHITEOUT_PREFIX) :]
        if name in ("", ".", ".."):
            raise _Refused("whiteout of an invalid name")
        self.clear(pfd, name, keep_dir=False)
        os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)
        os.chown(name, 0, 0, dir_fd=pfd, follow_symlinks=False)

    def finish_dirs(self) -> None:
        """Directory mtimes last: making their entries changed them. A directory a later entry removed or
        replaced (by a file, or a symlink, maybe leading out) is skipped."""
        for parts, mtime in self.dirs.items():
            try:
                fd = openat2(self.root, "/".join(parts) or ".", _O_DIR, resolve=_RESOLVE)
            except OSError as e:
                if e.errno in (2, 11, 18, 20, 40):  # ENOENT, EAGAIN, EXDEV, ENOTDIR, ELOOP
                    continue
                raise
            try:
                os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)


def _xattrs(pax: dict[str, bytes]) -> list[tuple[str, bytes]]:
    out = []
    cap: tuple[str, bytes] | None = None
    for key, value in pax.items():
        if key.startswith("SCHILY.xattr."):
            item = (key[len("SCHILY.xattr.") :], value)
        elif key.startswith("LIBARCHIVE.xattr."):
            item = (_unquote(key[len("LIBARCHIVE.xattr.") :]), _b64(value))
        else:
            continue
        if item[0].startswith(_OVERLAY_XATTRS):
            continue  # overlayfs' own (opaque, redirect, metacopy): only whiteout entries may say those
        if item[0] == "security.capability":
            cap = item
        else:
            out.append(item)
    if cap is not None:
        out.append(cap)  # last: nothing after it may clear it
    return out


def _b64(value: bytes) -> bytes:
    """libarchive writes xattr values in base64, without the padding."""
    import base64

    return base64.b64decode(value + b"=" * (-len(value) % 4))


def _unquote(name: str) -> str:
    """libarchive writes xattr names URL-encoded."""
    if "%" not in name:
        return name
    from urllib.parse import unquote

    return unquote(name, errors="surrogateescape")


def unpack(
    stream: BinaryIO, media_type: str, dest: str, *, allow_devices: bool = False, layer: str = ""
) -> LayerStats:
    """Unpack the layer read from `stream` into the new directory `dest` (made here; its parent must exist).

    `media_type` is the layer descriptor's; `layer` names the layer in errors (its digest), else `dest` does.
    Device nodes are refused unless `allow_devices`. On any error `dest` is removed and LayerError raised.
    Needs root (owners, trusted.* xattrs, whiteout devices). Xattrs on symlinks are not kept, and overlayfs'
    own xattrs (trusted.overlay.*) are never taken from the archive.
    """
    label = layer or dest
    kind = MEDIA_TYPES.get(media_type)
    if kind is None:
        raise LayerError(f"layer {label}: unsupported media type {media_type!r}")
    try:
        os.mkdir(dest, 0o755)
    except FileExistsError:
        if not os.path.isdir(dest) or os.listdir(dest):
            raise LayerError(
                f"layer {label}: destination {dest} exists and is not an empty directory"
            ) from None
    current = ""
    try:
        root = os.open(dest, _O_DIRPATH | os.O_NOFOLLOW)
        try:
            try:
                src = _Uncompressed(stream, kind, media_type)
            except LayerError as e:
                raise LayerError(f"layer {label}: {e}") from None
            unpacker = _Unpacker(root, allow_devices)
            files = 0
            ahead = _ReadAhead(src)
            try:
                tar = Reader(ahead.read)
                while (m := tar.next()) is not None:
                    current = m.name
                    unpacker.entry(tar, m)
                    files += 1
                current = ""
                unpacker.finish_dirs()
                ahead.drain()
            except _Refused as e:
                raise LayerError(f"layer {label}: entry {current!r}: refused: {e}") from None
            except TarError as e:
                where = f"after entry {current!r}" if current else "reading the archive"
                raise LayerError(f"layer {label}: {where}: corrupt tar: {e}") from None
            except OSError as e:
                # An fd-based call names its fd as the filename: not worth showing.
                what = (
                    f"{e.strerror} ({e.filename})" if isinstance(e.filename, str) else (e.strerror or str(e))
                )
                raise LayerError(f"layer {label}: entry {current!r}: {what}") from None
            except LayerError as e:
                raise LayerError(f"layer {label}: entry {current!r}: {e}") from None
            finally:
                unpacker.close()
                ahead.close()
        finally:
            os.close(root)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return LayerStats(size=src.size, diff_id=src.diff_id(), files=files)
