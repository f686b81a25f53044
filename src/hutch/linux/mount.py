"""mount(2), umount2(2), pivot_root(2) and the new mount API (open_tree, move_mount, mount_setattr)."""

from hutch.linux import cdata
from hutch.linux.libc import check, cpath, libc, syscall

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2

# mount_setattr(2)
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# open_tree(2) and move_mount(2)
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
AT_EMPTY_PATH = 0x1000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40


class _MountAttr(cdata.Structure):
    _fields_ = [
        ("attr_set", cdata.c_uint64),
        ("attr_clr", cdata.c_uint64),
        ("propagation", cdata.c_uint64),
        ("userns_fd", cdata.c_uint64),
    ]


def mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    src = cpath(source) if source is not None else None
    typ = fstype.encode() if fstype is not None else None
    dat = data.encode() if data else None
    ret = libc.mount(src, cpath(target), typ, cdata.c_ulong(flags), dat)
    check(ret, "mount", f"{source or ''} -> {target}, type {fstype or ''}, flags {flags:#x}")


def umount2(target: str, flags: int = 0) -> None:
    check(libc.umount2(cpath(target), flags), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    syscall("pivot_root", cpath(new_root), cpath(put_old), detail=new_root)


def open_tree(dirfd: int, path: str, flags: int) -> int:
    return syscall("open_tree", dirfd, cpath(path), cdata.c_uint(flags), detail=path)


def move_mount(from_fd: int, from_path: str, to_fd: int, to_path: str, flags: int) -> None:
    syscall(
        "move_mount", from_fd, cpath(from_path), to_fd, cpath(to_path), cdata.c_uint(flags), detail=to_path
    )


def mount_setattr(
    dirfd: int,
    path: str,
    flags: int,
    attr_set: int = 0,
    attr_clr: int = 0,
    propagation: int = 0,
    userns_fd: int = 0,
) -> None:
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    syscall(
        "mount_setattr",
        dirfd,
        cpath(path),
        cdata.c_uint(flags),
        cdata.byref(attr),
        cdata.c_size_t(cdata.sizeof(attr)),
        detail=path,
    )


# fsopen(2), fsconfig(2), fsmount(2): a filesystem context configured one key at a time, so that no
# option string (limited to a page by mount(2)) has to hold every overlay layer.
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    return syscall("fsopen", fstype.encode(), cdata.c_uint(flags), detail=fstype)


def fsconfig(fd: int, cmd: int, key: str | None = None, value: str | None = None, aux: int = 0) -> None:
    k = key.encode() if key is not None else None
    v = cpath(value) if value is not None else None
    detail = f"{key}={value}" if value is not None else (key or f"cmd {cmd}")
    syscall("fsconfig", fd, cdata.c_uint(cmd), k, v, cdata.c_int(aux), detail=detail)


def fsmount(fd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    return syscall("fsmount", fd, cdata.c_uint(flags), cdata.c_uint(attr_flags))
