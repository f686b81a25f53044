"""Network interfaces: the few ioctls the runtime needs (no netlink). `_socket`, not `socket`: the latter
imports enum and selectors, milliseconds on the runtime's start path."""

from __future__ import annotations

import _socket
import fcntl
import struct

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH22x"


def link_up(name: str) -> None:
    """Bring interface `name` up in this thread's network namespace; OSError names the call."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            req = fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, struct.pack(_IFREQ, name.encode(), 0))
            flags = struct.unpack(_IFREQ, req)[1]
            if not flags & _IFF_UP:
                fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack(_IFREQ, name.encode(), flags | _IFF_UP))
        except OSError as e:
            raise OSError(e.errno, f"ioctl(SIOCSIFFLAGS, {name}): {e.strerror}") from None
    finally:
        s.close()
