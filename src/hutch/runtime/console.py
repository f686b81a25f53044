"""The container's terminal: a pty from the container's own devpts, its master sent to the caller.

runc's protocol: the caller listens on a unix socket (--console-socket); the runtime connects and sends the pty
master as SCM_RIGHTS; the caller (conmon, containerd's shim, podman) then owns the terminal.
"""

import array
import fcntl
import os
import socket
import stat
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


def mount_console(slave: int) -> None:
    """Make /dev/console the container's terminal, as runc does: a bind mount of the pty slave, made from the
    slave's fd (open_tree), never through a path the image controls. An existing /dev/console (a device
    node the image ships) is mounted over, not opened; a symlink there is refused."""
    from hutch.linux import mount

    try:
        target = os.open("/dev/console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        try:
            os.close(
                os.open(
                    "/dev/console", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666
                )
            )
            target = os.open("/dev/console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            raise HutchError(f"/dev/console: cannot create it for the terminal: {e.strerror}") from None
    try:
        if stat.S_ISLNK(os.fstat(target).st_mode) or stat.S_ISDIR(os.fstat(target).st_mode):
            raise HutchError(
                "/dev/console: is a symlink or a directory in the container; refusing to mount the terminal there"
            )
        tree = mount.open_tree(
            slave, "", mount.OPEN_TREE_CLONE | mount.OPEN_TREE_CLOEXEC | mount.AT_EMPTY_PATH
        )
        try:
            mount.move_mount(
                tree, "", target, "", mount.MOVE_MOUNT_F_EMPTY_PATH | mount.MOVE_MOUNT_T_EMPTY_PATH
            )
        finally:
            os.close(tree)
    except OSError as e:
        raise HutchError(f"/dev/console: cannot bind the terminal there: {e.strerror}") from None
    finally:
        os.close(target)


def setup_fd(sock_fd: int, height: int | None, width: int | None, dev_console: bool = False) -> None:
    """Create the terminal, hand its master to the caller over `sock_fd`, and take the slave as stdio; for a
    container's init (`dev_console`), make it /dev/console too (an exec'd process leaves that as it is)."""
    sock = socket.socket(fileno=sock_fd)
    try:
        master, slave = open_pty()
    except OSError as e:
        raise HutchError(f"process.terminal: cannot open a pty in the container: {e.strerror}") from None
    try:
        if dev_console:
            mount_console(slave)
        if height is not None and width is not None:
            set_size(slave, height, width)
        send_fd(sock, master)
    finally:
        os.close(master)
        sock.close()
    take_terminal(slave)
