"""The container's terminal: a pty from the container's own devpts, its master sent to the caller.

runc's protocol: the caller listens on a unix socket (--console-socket); the runtime connects and sends the pty
master as SCM_RIGHTS; the caller (conmon, containerd's shim, podman) then owns the terminal.
"""

import array
import fcntl
import os
import socket
import struct
import termios

from hutch.errors import HutchError

_TIOCSPTLCK = 0x40045431
_TIOCGPTPEER = 0x5441


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise HutchError(f"--console-socket {path}: cannot connect: {e.strerror}") from None
    return sock


def open_pty() -> tuple[int, int]:
    """Open a pty pair through /dev/ptmx of the current mount namespace; returns (master, slave).

    The slave comes from the master itself (TIOCGPTPEER), never from a /dev/pts/N path, which the image
    could make a symlink to any file for us to open read-write as root (CVE-2025-52565)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, _TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, slave


def set_size(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def send_fd(sock: socket.socket, fd: int, name: str = "/dev/ptmx") -> None:
    sock.sendmsg([name.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def take_terminal(slave: int) -> None:
    """Make `slave` the controlling terminal and stdio of this (session-leader) process."""
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)


def setup_fd(sock_fd: int, height: int | None, width: int | None) -> None:
    """Create the terminal, hand its master to the caller over `sock_fd`, and take the slave as stdio."""
    sock = socket.socket(fileno=sock_fd)
    try:
        master, slave = open_pty()
    except OSError as e:
        raise HutchError(f"process.terminal: cannot open a pty in the container: {e.strerror}") from None
    try:
        if height is not None and width is not None:
            set_size(slave, height, width)
        send_fd(sock, master)
    finally:
        os.close(master)
        sock.close()
    take_terminal(slave)
