"""Paths inside a container's rootfs, resolved by the kernel as if the rootfs were `/`.

Every path the runtime creates or mounts on inside a rootfs goes through here: symlinks (including ones the
container plants, or swaps in while we work) can never lead outside, because openat2(RESOLVE_IN_ROOT) clamps
`..` and absolute links to the rootfs, and mounts target the opened fd, not the path.
"""

import errno
import os
import posixpath

from hutch.linux.fs import (
    O_PATH,
    PROC_SUPER_MAGIC,
    RESOLVE_IN_ROOT,
    RESOLVE_NO_MAGICLINKS,
    RESOLVE_NO_SYMLINKS,
    SYSFS_MAGIC,
    fstatfs_type,
    openat2,
)

_RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
_KERNEL_FS = (PROC_SUPER_MAGIC, SYSFS_MAGIC)
_MAX_LINKS = 40


def open_path(rootfd: int, path: str, flags: int = O_PATH) -> int:
    """Open `path` inside the rootfs `rootfd`; raises FileNotFoundError when it does not exist."""
    return openat2(rootfd, path, flags | os.O_CLOEXEC, 0, _RESOLVE)


def fd_path(fd: int) -> str:
    """A path that mount(2) and friends follow to exactly the object `fd` refers to."""
    return f"/proc/self/fd/{fd}"


def make(rootfd: int, path: str, is_dir: bool, mode: int = 0o755, literal: bool = False) -> int:
    """Open `path` inside the rootfs, creating it and any missing parents; returns an O_PATH fd.

    The last component is created as a directory or an empty file; parents are always directories. A
    dangling symlink on the way is followed, inside the rootfs, and its target created.

    A path that ends in a proc or sysfs (the container's, mounted earlier) must be reached without a symlink,
    and so must any path when `literal`: else OSError(ELOOP). An image's symlink could otherwise put a mount
    inside /proc, and with it redirect what the runtime writes there later (sysctls: CVE-2025-52881). The fd
    returned is then the one opened without symlinks, so a path swapped meanwhile cannot move it.
    """
    path = posixpath.normpath("/" + path)
    fd = _make(rootfd, path, is_dir, mode, 0)
    if not literal and fstatfs_type(fd) not in _KERNEL_FS:
        return fd
    os.close(fd)
    try:
        return openat2(rootfd, path, O_PATH | os.O_CLOEXEC, 0, _RESOLVE | RESOLVE_NO_SYMLINKS)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        where = "" if literal else " into /proc or /sys"
        raise OSError(errno.ELOOP, f"{path} leads through a symlink in the rootfs{where}") from None


def _make(rootfd: int, path: str, is_dir: bool, mode: int, depth: int) -> int:
    if depth > _MAX_LINKS:
        raise OSError(errno.ELOOP, f"{path}: too many levels of symbolic links inside the rootfs")
    try:
        return open_path(rootfd, path)
    except FileNotFoundError:
        pass
    parent, name = posixpath.split(path)
    if not name:
        return os.dup(rootfd)
    pfd = _make(rootfd, parent, True, 0o755, depth)
    try:
        try:
            if is_dir:
                os.mkdir(name, mode, dir_fd=pfd)
            else:
                os.close(
                    os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=pfd)
                )
        except FileExistsError:
            # A dangling symlink: create its target, resolved inside the rootfs.
            target = os.readlink(name, dir_fd=pfd)
            base = parent if not target.startswith("/") else "/"
            return _make(rootfd, posixpath.normpath(posixpath.join(base, target)), is_dir, mode, depth + 1)
        return open_path(rootfd, path)
    finally:
        os.close(pfd)
