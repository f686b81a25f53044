"""prlimit(2) on the calling process: the `resource` module is a shared library to load, ~0.4 ms on the
path of init, which sets process.rlimits."""

from hutch.linux import cdata
from hutch.linux.libc import check, libc

NOFILE = 7  # RLIMIT_NOFILE (asm-generic/resource.h)


def set_limit(resource: int, soft: int, hard: int) -> None:
    """Set a limit; 2**64-1 is unlimited (RLIM_INFINITY, as the spec writes it)."""
    new = (cdata.c_ulong * 2)(soft, hard)
    check(libc.prlimit(0, resource, new, None), "prlimit", str(resource))


def get_limit(resource: int) -> tuple[int, int]:
    """(soft, hard) of a limit."""
    old = (cdata.c_ulong * 2)()
    check(libc.prlimit(0, resource, None, old), "prlimit", str(resource))
    return old[0], old[1]
