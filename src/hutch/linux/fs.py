"""openat2(2) with RESOLVE_IN_ROOT, close_range(2) and fstatfs(2)'s f_type: the file calls the stdlib lacks."""

from hutch.linux import cdata
from hutch.linux.libc import check, cpath, libc, syscall

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

CLOSE_RANGE_CLOEXEC = 1 << 2
O_PATH = 0o10000000

# statfs f_type of the kernel's own filesystems
PROC_SUPER_MAGIC = 0x9FA0
SYSFS_MAGIC = 0x62656572


class _OpenHow(cdata.Structure):
    _fields_ = [("flags", cdata.c_uint64), ("mode", cdata.c_uint64), ("resolve", cdata.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    how = _OpenHow(flags, mode, resolve)
    return syscall("openat2", dirfd, cpath(path), cdata.byref(how), cdata.sizeof(how), detail=path)


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    syscall("close_range", cdata.c_uint(first), cdata.c_uint(last), cdata.c_uint(flags))


def fstatfs_type(fd: int) -> int:
    """The filesystem type (statfs f_type, a *_MAGIC number) of what `fd` refers to."""
    buf = (cdata.c_long * 16)()  # struct statfs: 120 bytes on 64-bit Linux, f_type first
    check(libc.fstatfs(fd, buf), "fstatfs")
    return int(buf[0])
