"""What a container changed in its rootfs, read from its overlay upper dir: podman diff's A/C/D lines, and the
layer `commit` makes of it, with overlay's whiteouts (a 0:0 character device, a directory marked opaque by
the trusted.overlay.opaque xattr) turned into OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`).

A path in the upper dir is `C` when the image's layers have it, else `A`; a whiteout is `D`. Directories
overlay copied up to hold a change are `C`, as podman shows them.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile

from hutch.engine.copy import clean, tarinfo, walk, xattr_headers
from hutch.image.layers import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from hutch.engine.containers import Engine
    from hutch.engine.copy import Entry
    from hutch.engine.db import Record

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _upper_tree(dirfd: int, prefix: str) -> Iterator[tuple[str, os.stat_result, bool]]:
    """(path, stat, opaque) for everything below the directory `dirfd` of the upper dir, parents first."""
    for name in sorted(os.listdir(dirfd)):
        path = f"{prefix}/{name}"
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(name, _DIR, dir_fd=dirfd)
            try:
                yield path, st, _is_opaque(fd)
                yield from _upper_tree(fd, path)
            finally:
                os.close(fd)
        else:
            yield path, st, False


def _open_dir(path: str) -> int:
    return os.open(path, _DIR)


def image_layers(engine: Engine, rec: Record) -> list[str]:
    """The unpacked layer dirs of the container's image, top first."""
    from hutch.oci import digest

    layers = engine.storage().db.image_layers(digest.parse(f"sha256:{rec.image_id}", "container image"))
    return [layer.path for layer in reversed(layers)]


def in_lower(layers: list[str], path: str) -> bool:
    """Whether the image's layers (top first, overlay whiteouts) have `path`."""
    parts = path.strip("/").split("/")
    for layer in layers:
        d = layer
        for i, part in enumerate(parts):
            d = os.path.join(d, part)
            try:
                st = os.lstat(d)
            except (FileNotFoundError, NotADirectoryError):
                break  # not in this layer: look below
            if _is_whiteout(st):
                return False
            if i == len(parts) - 1:
                return True
            if not stat.S_ISDIR(st.st_mode):
                return False  # a non-directory here hides whatever is below under that name
            if _opaque_path(d):
                # The layers below are hidden from here: only this layer can still have the rest.
                return os.path.lexists(os.path.join(layer, *parts))
    return False


def _opaque_path(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def mountpoints(engine: Engine, rec: Record, layers: list[str]) -> set[str]:
    """The mount destinations the runtime had to create in the rootfs (/etc/hosts and the like, when the
    image lacks them): empty placeholders, not the container's changes."""
    from hutch import jsonfast

    try:
        with open(engine.path(rec, "userdata/config.json")) as f:
            mounts = jsonfast.loads(f.read()).get("mounts") or []
    except (OSError, ValueError):
        return set()
    upper = engine.path(rec, "upper")
    out = set()
    for m in mounts:
        path = clean(str(m.get("destination", "")))
        try:
            st = os.lstat(upper + path)
        except OSError:
            continue
        empty = (
            st.st_size == 0
            if stat.S_ISREG(st.st_mode)
            else stat.S_ISDIR(st.st_mode) and not os.listdir(upper + path)
        )
        if empty and not in_lower(layers, path):
            out.add(path)
    return out


def diff(engine: Engine, rec: Record) -> list[tuple[str, str]]:
    """podman diff: (kind, path) with kind A, C or D, in path order."""
    layers = image_layers(engine, rec)
    skip = mountpoints(engine, rec, layers)
    fd = _open_dir(engine.path(rec, "upper"))
    out: list[tuple[str, str]] = []
    try:
        for path, st, opaque in _upper_tree(fd, ""):
            if _is_whiteout(st):
                out.append(("D", path))
                continue
            if path in skip:
                continue
            out.append(("C" if in_lower(layers, path) else "A", path))
            if opaque:
                out += [("D", p) for p in _hidden(layers, path, fd)]
    finally:
        os.close(fd)
    # A directory overlay copied up only to hold a placeholder is no change either.
    for parent in {posixpath.dirname(p) for p in skip}:
        if not any(p.startswith(parent + "/") for _, p in out):
            out = [(k, p) for k, p in out if not (k == "C" and p == parent)]
    return sorted(set(out), key=lambda kv: kv[1])


def _hidden(layers: list[str], path: str, upper: int) -> list[str]:
    """The entries an opaque directory hides: those the image has in it that the upper dir does not."""
    names: set[str] = set()
    for layer in layers:
        try:
            names.update(os.listdir(os.path.join(layer, path.lstrip("/"))))
        except OSError:
            continue
    out = []
    for name in sorted(names):
        child = f"{path}/{name}"
        if not name.startswith(WHITEOUT_PREFIX) and in_lower(layers, child):
            try:
                os.stat(child.lstrip("/"), dir_fd=upper, follow_symlinks=False)
            except FileNotFoundError:
                out.append(child)
    return out


def layer_entries(upper: str, skip: set[str] | None = None) -> Iterator[Entry]:
    """The upper dir as OCI layer tar entries: whiteouts as `.wh.` files, opaque dirs with `.wh..wh..opq`;
    the paths in `skip` (the runtime's mountpoints) left out."""
    fd = _open_dir(upper)
    try:
        yield from _layer_dir(fd, "", skip or set())
    finally:
        os.close(fd)


def _layer_dir(dirfd: int, prefix: str, skip: set[str]) -> Iterator[Entry]:
    for name in sorted(os.listdir(dirfd)):
        arcname = posixpath.join(prefix, name) if prefix else name
        if "/" + arcname in skip:
            continue
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        if _is_whiteout(st):
            ti = tarfile.TarInfo(posixpath.join(prefix, WHITEOUT_PREFIX + name))
            ti.mtime = int(st.st_mtime)
            yield ti, None
        elif stat.S_ISDIR(st.st_mode):
            fd = os.open(name, _DIR, dir_fd=dirfd)
            try:
                top = tarinfo(arcname, st)
                top.type = tarfile.DIRTYPE
                top.pax_headers = xattr_headers(fd)
                yield top, None
                if _is_opaque(fd):
                    yield tarfile.TarInfo(posixpath.join(arcname, WHITEOUT_OPAQUE)), None
                yield from _layer_dir(fd, arcname, skip)
            finally:
                os.close(fd)
        else:
            yield from walk(dirfd, name, arcname)
