"""The C library, loaded once, and the error convention of every wrapper in linux/."""

import os

from hutch.linux import cdata

libc = cdata.CDLL(None, use_errno=True)

# Syscalls that glibc 2.36 does not wrap, by machine. The new mount API and later calls share one
# numbering on every architecture; the older ones differ.
_MACHINE_SYSCALLS = {
    "x86_64": {
        "rt_sigaction": 13,
        "pivot_root": 155,
        "keyctl": 250,
        "ioprio_set": 251,
        "sched_setattr": 314,
        "seccomp": 317,
        "bpf": 321,
    },
    "aarch64": {
        "rt_sigaction": 134,
        "pivot_root": 41,
        "keyctl": 219,
        "ioprio_set": 30,
        "sched_setattr": 274,
        "seccomp": 277,
        "bpf": 280,
    },
}
_COMMON_SYSCALLS = {
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "pidfd_open": 434,
    "close_range": 436,
    "openat2": 437,
    "mount_setattr": 442,
}


# Read once, at import: after personality(PER_LINUX32) uname says i686, yet the process (and its syscall
# numbers) stay 64-bit.
_MACHINE = os.uname().machine


def syscall_number(name: str) -> int:
    """The number of syscall `name` on this machine."""
    if name in _COMMON_SYSCALLS:
        return _COMMON_SYSCALLS[name]
    try:
        return _MACHINE_SYSCALLS[_MACHINE][name]
    except KeyError:
        raise OSError(38, f"{name}: no syscall number known for {_MACHINE}") from None


def check(ret: int, name: str, detail: str = "") -> int:
    """Return `ret`, or raise OSError naming the call when it is -1."""
    if ret == -1:
        err = cdata.get_errno()
        where = f"{name}({detail})" if detail else name
        raise OSError(err, f"{where}: {os.strerror(err)}")
    return ret


def syscall(name: str, *args: object, detail: str = "") -> int:
    """Invoke a raw syscall by name; arguments must already be C-compatible (ints, bytes, cdata values)."""
    return check(libc.syscall(syscall_number(name), *args), name, detail)


def cpath(path: str | bytes) -> bytes:
    return os.fsencode(path)
