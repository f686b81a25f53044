"""unshare(2) and setns(2), and the clone flags that name namespaces."""

import os

from hutch.linux.libc import check, libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000


def unshare(flags: int) -> None:
    check(libc.unshare(flags), "unshare", f"{flags:#x}")


def setns(fd: int, nstype: int = 0) -> None:
    check(libc.setns(fd, nstype), "setns", f"{nstype:#x}")


def start_in_pid_namespace(start: "Callable[[], int]", join_fd: int = -1) -> int:
    """Call `start` (a fork or a spawn: it returns a pid) with the child it makes going into a new PID
    namespace, or into the one `join_fd` names (closed here). unshare and setns of CLONE_NEWPID move only the
    children to come, so we take our own back after; in a forked child (`start` returned 0) the namespace
    stays its children's."""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    pid = -1
    try:
        if join_fd >= 0:
            setns(join_fd, CLONE_NEWPID)
        else:
            unshare(CLONE_NEWPID)
        pid = start()
    finally:
        if pid != 0:
            setns(own, CLONE_NEWPID)
        os.close(own)
        if join_fd >= 0:
            os.close(join_fd)
    return pid
