"""Capabilities: capget(2), capset(2), the bounding set and the ambient set."""

from hutch.linux import cdata
from hutch.linux.libc import check, libc
from hutch.linux.prctl import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
    prctl,
)

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _Header(cdata.Structure):
    _fields_ = [("version", cdata.c_uint32), ("pid", cdata.c_int)]


class _Data(cdata.Structure):
    _fields_ = [
        ("effective", cdata.c_uint32),
        ("permitted", cdata.c_uint32),
        ("inheritable", cdata.c_uint32),
    ]


_last_cap: list[int] = []


def last_cap() -> int:
    """The highest capability number this kernel knows (read once: it is the same in every namespace, so a
    process may read it before entering a container whose /proc it could not trust)."""
    if not _last_cap:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            _last_cap.append(int(f.read()))
    return _last_cap[0]


def capget() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of the calling thread, as 64-bit masks."""
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    check(libc.capget(cdata.byref(hdr), data), "capget")
    return tuple(
        getattr(data[0], f) | (getattr(data[1], f) << 32) for f in ("effective", "permitted", "inheritable")
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    check(libc.capset(cdata.byref(hdr), data), "capset")


def drop_bounding(keep: int, last: int) -> None:
    """Drop from the bounding set every capability up to `last` not in mask `keep`."""
    for cap in range(last + 1):
        if not keep & (1 << cap):
            prctl(PR_CAPBSET_DROP, cap)


def set_ambient(mask: int, last: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in range(last + 1):
        if mask & (1 << cap):
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)
