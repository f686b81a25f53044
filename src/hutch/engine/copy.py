"""podman cp: files between the host and a container's rootfs (running or stopped), both ways, or as a tar
stream on stdin/stdout (`-`).

Every path inside the container is resolved by openat2(RESOLVE_IN_ROOT) on the container's rootfs, and every
entry is read or created relative to an fd of its parent, never following a symlink in its last component:
a symlink the container planted (`/out -> /etc` or `../../..`) resolves inside the rootfs, so cp can never
read or write the host through it. Entries are written confined to the destination directory (RESOLVE_IN_ROOT
on it), on either side, so a tar stream's own symlinks cannot carry a later entry out of it.

Ownership, as the task has `-a/--archive`: without it, files copied in belong to the container's process
user and files copied out to the caller; with it they keep the source's uid/gid. A path under a volume or
directory bind mount goes to its source (see container_root); other mounts made inside the container (its
/etc/hosts bind, /proc, /dev, tmpfs) are not seen. Xattrs travel both ways, security.capability among them
(set after the chown and chmod that would drop it), but overlay's own trusted.overlay.*, which cp neither
reads nor writes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
import tarfile

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import BinaryIO

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record

    Entry = tuple[tarfile.TarInfo, BinaryIO | None]

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class CopyError(HutchError):
    """A cp argument or path that does not work (podman exits 125)."""


# --- reading: a tree below a root fd as tar entries ------------------------------------------------------


def clean(path: str) -> str:
    """`path` made absolute and normal (`//x/../y` is `/y`)."""
    return posixpath.normpath("/" + path.lstrip("/"))


def open_parent(rootfd: int, path: str) -> tuple[int, str]:
    """The parent directory of `path` inside the root `rootfd` (an fd) and the last component ("." for /)."""
    from hutch.runtime import inroot

    path = clean(path)
    parent, name = posixpath.split(path)
    if not name:
        return os.dup(rootfd), "."
    try:
        return inroot.open_path(rootfd, parent, os.O_RDONLY | os.O_DIRECTORY), name
    except (FileNotFoundError, NotADirectoryError):
        raise CopyError(f'"{parent}": no such directory') from None


def walk(
    dirfd: int, name: str, arcname: str, links: dict[tuple[int, int], str] | None = None
) -> Iterator[Entry]:
    """`name` in `dirfd` and (for a directory) everything below it, as tar entries named from `arcname`.
    No symlink is followed; files are read through fds opened O_NOFOLLOW below their parent's fd."""
    links = {} if links is None else links
    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    ti = tarinfo(arcname, st)
    if stat.S_ISLNK(st.st_mode):
        ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dirfd)
        yield ti, None
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, links[key], 0
            yield ti, None
            return
        links[key] = arcname
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dirfd)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise CopyError(f"{arcname}: changed while it was copied")
            ti.pax_headers = xattr_headers(fd)
            yield ti, f
    elif stat.S_ISDIR(st.st_mode):
        fd = os.open(name, _DIR, dir_fd=dirfd)
        try:
            ti.type = tarfile.DIRTYPE
            ti.pax_headers = xattr_headers(fd)
            yield ti, None
            for child in sorted(os.listdir(fd)):
                yield from walk(fd, child, posixpath.join(arcname, child) if arcname != "." else child, links)
        finally:
            os.close(fd)
    else:
        yield _special(ti, st), None


def xattr_headers(fd: int) -> dict[str, str]:
    """The xattrs of `fd` as PAX headers (security.capability and the like), but overlay's own."""
    out = {}
    try:
        for key in os.listxattr(fd):
            if not key.startswith("trusted.overlay."):
                out["SCHILY.xattr." + key] = os.getxattr(fd, key).decode("utf-8", "surrogateescape")
    except OSError:
        pass
    return out


def tarinfo(arcname: str, st: os.stat_result) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(arcname)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.mtime = int(st.st_mtime)
    ti.size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    return ti


def _special(ti: tarfile.TarInfo, st: os.stat_result) -> tarfile.TarInfo:
    if stat.S_ISFIFO(st.st_mode):
        ti.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:
        raise CopyError(f"{ti.name}: a socket cannot be copied")
    return ti


def read_tar(stream: BinaryIO) -> Iterator[Entry]:
    """The entries of a tar stream (stdin of `cp - CONTAINER:DIR`)."""
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tf:
            for m in tf:
                yield m, tf.extractfile(m) if m.isreg() else None  # type: ignore[misc]
    except tarfile.TarError as e:
        raise CopyError(f"stdin: not a tar archive: {e}") from None


def write_tar(entries: Iterable[Entry], stream: BinaryIO) -> None:
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for ti, f in entries:
            tf.addfile(ti, f)


# --- writing: tar entries below a directory inside a root ------------------------------------------------


class Extractor:
    """Creates entries below `base` inside the root `rootfd`; parents resolve inside the root, the last
    component is replaced, never followed. `owner` (uid, gid) overrides the entries' own."""

    def __init__(self, rootfd: int, base: str, owner: tuple[int, int] | None) -> None:
        self.rootfd, self.base, self.owner = rootfd, clean(base), owner

    def put(self, ti: tarfile.TarInfo, data: BinaryIO | None) -> None:
        path = clean(posixpath.join(self.base, _relative(ti.name)))
        try:
            pfd, name = open_parent(self.rootfd, path)
        except CopyError:  # a stream without its parents' entries: made as mkdir -p would, inside the root
            from hutch.runtime import inroot

            pfd, name = inroot.make(self.rootfd, posixpath.dirname(path), True), posixpath.basename(path)
        try:
            self._create(pfd, name, ti, data)
        finally:
            os.close(pfd)

    def _create(self, pfd: int, name: str, ti: tarfile.TarInfo, data: BinaryIO | None) -> None:
        existing = _lstat(pfd, name)
        if ti.isdir():
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                os.unlink(name, dir_fd=pfd)
                existing = None
            if existing is None and name != ".":
                os.mkdir(name, 0o700, dir_fd=pfd)
        else:
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                raise CopyError(f"{ti.name}: cannot overwrite a directory with a non-directory")
            if existing is not None:
                os.unlink(name, dir_fd=pfd)
            self._make(pfd, name, ti, data)
        if not ti.islnk():
            self._meta(pfd, name, ti)

    def _make(self, pfd: int, name: str, ti: tarfile.TarInfo, data: BinaryIO | None) -> None:
        if ti.issym():
            os.symlink(ti.linkname, name, dir_fd=pfd)
        elif ti.islnk():
            from hutch.runtime import inroot

            target = inroot.open_path(self.rootfd, posixpath.join(self.base, _relative(ti.linkname)))
            try:
                os.link(f"/proc/self/fd/{target}", name, dst_dir_fd=pfd, follow_symlinks=True)
            finally:
                os.close(target)
        elif ti.isreg():
            fd = os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd
            )
            with os.fdopen(fd, "wb") as out:
                left = ti.size
                while data is not None and left > 0:
                    chunk = data.read(min(left, 1 << 20))
                    if not chunk:
                        raise CopyError(f"{ti.name}: the file ended early")
                    out.write(chunk)
                    left -= len(chunk)
        elif ti.isfifo():
            os.mkfifo(name, 0o600, dir_fd=pfd)
        elif ti.ischr() or ti.isblk():
            kind = stat.S_IFCHR if ti.ischr() else stat.S_IFBLK
            os.mknod(name, kind | 0o600, os.makedev(ti.devmajor, ti.devminor), dir_fd=pfd)
        else:
            raise CopyError(f"{ti.name}: unsupported tar entry type {ti.type!r}")

    def _meta(self, pfd: int, name: str, ti: tarfile.TarInfo) -> None:
        uid, gid = self.owner if self.owner is not None else (ti.uid, ti.gid)
        os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
        if ti.issym():
            return
        # Through an fd of the very entry: a container swapping it for a symlink cannot redirect the chmod.
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                return
            os.chmod(f"/proc/self/fd/{fd}", ti.mode & 0o7777)
            os.utime(f"/proc/self/fd/{fd}", (ti.mtime, ti.mtime))
            _set_xattrs(fd, ti)  # last: chown and chmod drop security.capability
        finally:
            os.close(fd)


def _set_xattrs(fd: int, ti: tarfile.TarInfo) -> None:
    """The entry's xattrs (PAX SCHILY.xattr.*, as xattr_headers and podman write them) on `fd`, but overlay's
    own: they would change what the container's overlay shows (a redirect, an opaque directory)."""
    for key, value in ti.pax_headers.items():
        if not key.startswith("SCHILY.xattr.") or key.startswith("SCHILY.xattr.trusted.overlay."):
            continue
        name = key[len("SCHILY.xattr.") :]
        try:
            os.setxattr(f"/proc/self/fd/{fd}", name, value.encode("utf-8", "surrogateescape"))
        except OSError as e:
            if e.errno == errno.EOPNOTSUPP:  # a file system without xattrs (or without this namespace)
                continue
            raise CopyError(f"{ti.name}: cannot set the xattr {name}: {e.strerror}") from None


def _relative(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise CopyError(f"{name}: a path in the archive must not contain '..'")
    return "/".join(parts) or "."


def _lstat(dirfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _renamed(entries: Iterable[Entry], old: str, new: str) -> Iterator[Entry]:
    """Entries whose top component `old` is renamed `new` (copying SRC to a DST that does not exist)."""
    for ti, f in entries:
        if ti.name == old or ti.name.startswith(old + "/"):
            ti.name = new + ti.name[len(old) :]
        if ti.islnk() and (ti.linkname == old or ti.linkname.startswith(old + "/")):
            ti.linkname = new + ti.linkname[len(old) :]
        yield ti, f


# --- the two sides ---------------------------------------------------------------------------------------


class Side:
    """One end of a copy: a root fd (the container's rootfs, or / on the host) and a path in it."""

    def __init__(self, rootfd: int, path: str, owner: tuple[int, int] | None, where: str) -> None:
        self.rootfd, self.path, self.owner, self.where = rootfd, path, owner, where

    def stat(self, path: str | None = None) -> os.stat_result | None:
        """The object at `path` (this side's path by default), following symlinks inside the root."""
        from hutch.runtime import inroot

        try:
            fd = inroot.open_path(self.rootfd, path or self.path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)


def copy(src: Side, dst: Side) -> None:
    """docker/podman cp semantics from `src` to `dst` (neither is `-`)."""
    contents = src.path.endswith("/.")
    source = clean(src.path)
    pfd, name = _open_source(src, source)
    try:
        base = posixpath.basename(source) or "."
        target = dst.stat()
        is_dir = stat.S_ISDIR(os.stat(name, dir_fd=pfd, follow_symlinks=False).st_mode)
        if target is not None and stat.S_ISDIR(target.st_mode):
            into, entries = dst.path, walk(pfd, name, "." if contents and is_dir else base)
        elif target is not None and is_dir:
            raise CopyError(f'"{dst.where}": cannot copy a directory onto the file "{dst.path}"')
        else:
            if dst.path.endswith("/"):
                raise CopyError(f'"{dst.where}": the directory "{dst.path}" does not exist')
            parent = posixpath.dirname(clean(dst.path))
            found = dst.stat(parent)
            if found is None or not stat.S_ISDIR(found.st_mode):
                raise CopyError(f'"{dst.where}": the directory "{parent}" does not exist')
            new = posixpath.basename(clean(dst.path))
            into, entries = parent, _renamed(walk(pfd, name, base), base, new)
        _extract(dst, into, entries)
    finally:
        os.close(pfd)


def _open_source(src: Side, source: str) -> tuple[int, str]:
    """The parent fd and name of the source, which must exist."""
    try:
        pfd, name = open_parent(src.rootfd, source)
    except CopyError:
        pfd, name = -1, ""
    if pfd >= 0 and _lstat(pfd, name) is not None:
        return pfd, name
    if pfd >= 0:
        os.close(pfd)
    raise CopyError(f'"{src.where}": could not find "{src.path}": no such file or directory')


def copy_out_tar(src: Side, stream: BinaryIO) -> None:
    """`cp CONTAINER:SRC -`: SRC as a tar stream, named by its last component."""
    source = clean(src.path)
    pfd, name = _open_source(src, source)
    try:
        write_tar(walk(pfd, name, posixpath.basename(source) or "."), stream)
    finally:
        os.close(pfd)


def copy_in_tar(stream: BinaryIO, dst: Side) -> None:
    """`cp - CONTAINER:DIR`: a tar stream unpacked into the directory DIR."""
    found = dst.stat()
    if found is None or not stat.S_ISDIR(found.st_mode):
        raise CopyError(f'"{dst.where}": the destination "{dst.path}" must be a directory')
    _extract(dst, dst.path, read_tar(stream))


def _extract(dst: Side, into: str, entries: Iterable[Entry]) -> None:
    """The entries below the directory `into` of `dst`, confined to it: whatever symlinks the entries (or a
    process racing us) make there, nothing lands outside `into`."""
    from hutch.runtime import inroot

    try:
        fd = inroot.open_path(dst.rootfd, into, os.O_PATH | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        raise CopyError(f'"{dst.where}": the directory "{into}" does not exist') from None
    try:
        extract = Extractor(fd, "/", dst.owner)
        for ti, f in entries:
            extract.put(ti, f)
    finally:
        os.close(fd)


# --- the container's rootfs ------------------------------------------------------------------------------


@contextlib.contextmanager
def rootfs(engine: Engine, rec: Record) -> Iterator[int]:
    """An fd of the container's rootfs, mounted for the while if the container is stopped."""
    from hutch.engine import monitor

    merged = engine.path(rec, "merged")
    mounted_here = False
    with engine.lock(rec.id):
        if not os.path.ismount(merged):
            from hutch.engine import starting

            starting.mount(engine, rec)
            mounted_here = True
    fd = -1
    try:
        fd = os.open(merged, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        yield fd
    finally:
        if fd >= 0:
            os.close(fd)
        if mounted_here:
            with engine.lock(rec.id), contextlib.suppress(HutchError):
                if engine.db.get(rec.id).state not in ("running", "paused"):
                    monitor.unmount(engine, rec)


@contextlib.contextmanager
def container_root(engine: Engine, rec: Record, path: str) -> Iterator[tuple[int, str]]:
    """The root fd a container path lives below, and the path below it: the source of the bind mount or
    volume mounted over it in the container (longest destination first), else the rootfs. A mount found by
    the path's text: a symlink in the rootfs leading into a volume is followed inside the rootfs instead."""
    found = _bind_source(engine, rec, clean(path))
    if found is None:
        with rootfs(engine, rec) as fd:
            yield fd, path
        return
    source, inner = found
    fd = os.open(source, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        suffix = "/." if path.endswith("/.") else "/" if path.endswith("/") else ""
        yield fd, inner.rstrip("/") + suffix if suffix else inner
    finally:
        os.close(fd)


def _bind_source(engine: Engine, rec: Record, path: str) -> tuple[str, str] | None:
    from hutch import jsonfast

    try:
        with open(engine.path(rec, "userdata/config.json")) as f:
            mounts = jsonfast.loads(f.read()).get("mounts") or []
    except (OSError, ValueError):
        return None
    best: tuple[str, str] | None = None
    for m in mounts:
        options = m.get("options") or []
        if m.get("type") != "bind" and "bind" not in options and "rbind" not in options:
            continue
        dest, source = clean(str(m.get("destination", ""))), str(m.get("source", ""))
        inside = path == dest or path.startswith(dest.rstrip("/") + "/")
        if inside and os.path.isdir(source) and (best is None or len(dest) > len(best[0])):
            best = (dest, source)
    if best is None:
        return None
    dest, source = best
    return source, clean(path[len(dest) :])


def process_owner(engine: Engine, rec: Record) -> tuple[int, int]:
    """The uid and gid of the container's process (its config.json)."""
    from hutch import jsonfast

    try:
        with open(engine.path(rec, "userdata/config.json")) as f:
            user = (jsonfast.loads(f.read()).get("process") or {}).get("user") or {}
    except (OSError, ValueError):
        return 0, 0
    return int(user.get("uid", 0)), int(user.get("gid", 0))


def container_path(rec: Record, path: str) -> str:
    """A relative container path is relative to the container's working directory, as podman takes it."""
    if path.startswith("/"):
        return path
    from hutch import jsonfast

    workdir = str(jsonfast.loads(rec.config or "{}").get("WorkingDir") or "/")
    return posixpath.join(workdir, path)


def split_arg(arg: str) -> tuple[str, str] | None:
    """`CONTAINER:PATH` -> (container, path); None for a host path (`-`, `/x`, `./a:b`)."""
    if arg == "-" or arg.startswith(("/", ".")):
        return None
    name, sep, path = arg.partition(":")
    if not sep or not name:
        return None
    return name, path or "/"
