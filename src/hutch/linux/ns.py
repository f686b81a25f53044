"""unshare(2) and setns(2), and the clone flags that name namespaces."""

from hutch.linux.libc import check, libc

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
