"""Network interfaces: the few ioctls the runtime needs (no netlink).

The ioctls' socket comes from libc and the ifreq is packed by hand: `socket` imports enum and selectors, and
`_socket` and `struct` alone cost ~0.8 ms on init's path, before its first namespace.
"""

from __future__ import annotations

import fcntl
import os
import sys

from hutch.linux.libc import check, libc

_AF_INET = 2
_SOCK_DGRAM = 2
_SOCK_CLOEXEC = 0o2000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def _ifreq(name: bytes, flags: int) -> bytes:
    """struct ifreq for ifr_flags: the name in 16 bytes, then the 24-byte union: a short and padding."""
    return name.ljust(16, b"\0") + flags.to_bytes(2, sys.byteorder) + bytes(22)


def link_up(name: str) -> None:
    """Bring interface `name` up in this thread's network namespace; OSError names the call."""
    fd = check(libc.socket(_AF_INET, _SOCK_DGRAM | _SOCK_CLOEXEC, 0), "socket")
    try:
        try:
            req = fcntl.ioctl(fd, _SIOCGIFFLAGS, _ifreq(name.encode(), 0))
            flags = int.from_bytes(req[16:18], sys.byteorder)
            if not flags & _IFF_UP:
                fcntl.ioctl(fd, _SIOCSIFFLAGS, _ifreq(name.encode(), flags | _IFF_UP))
        except OSError as e:
            raise OSError(e.errno, f"ioctl(SIOCSIFFLAGS, {name}): {e.strerror}") from None
    finally:
        os.close(fd)
