"""prctl(2) and the process attributes that go with it: personality, I/O priority, scheduler, keyrings."""

from hutch.linux import cdata
from hutch.linux.libc import check, libc, syscall

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_SETPERM = 5

IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_SHIFT = 13


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    args = [cdata.c_ulong(a) for a in (arg2, arg3, arg4, arg5)]
    return check(libc.prctl(option, *args), "prctl", str(option))


def personality(persona: int) -> None:
    check(libc.personality(cdata.c_ulong(persona)), "personality", f"{persona:#x}")


def ioprio_set(io_class: int, level: int) -> None:
    syscall("ioprio_set", IOPRIO_WHO_PROCESS, 0, (io_class << IOPRIO_CLASS_SHIFT) | level)


class _SchedAttr(cdata.Structure):
    _fields_ = [
        ("size", cdata.c_uint32),
        ("sched_policy", cdata.c_uint32),
        ("sched_flags", cdata.c_uint64),
        ("sched_nice", cdata.c_int32),
        ("sched_priority", cdata.c_uint32),
        ("sched_runtime", cdata.c_uint64),
        ("sched_deadline", cdata.c_uint64),
        ("sched_period", cdata.c_uint64),
    ]


def sched_setattr(
    policy: int, flags: int, nice: int, priority: int, runtime: int, deadline: int, period: int
) -> None:
    attr = _SchedAttr(cdata.sizeof(_SchedAttr), policy, flags, nice, priority, runtime, deadline, period)
    syscall("sched_setattr", 0, cdata.byref(attr), 0)


def join_session_keyring(name: str) -> int:
    """Join a new anonymous session keyring called `name`; returns its serial."""
    return syscall("keyctl", KEYCTL_JOIN_SESSION_KEYRING, name.encode(), detail="join session keyring")


def set_keyring_perm(serial: int, perm: int) -> None:
    syscall("keyctl", KEYCTL_SETPERM, serial, perm, detail="setperm")


def sethostname(name: str) -> None:
    raw = name.encode()
    check(libc.sethostname(raw, len(raw)), "sethostname", name)


def setdomainname(name: str) -> None:
    raw = name.encode()
    check(libc.setdomainname(raw, len(raw)), "setdomainname", name)
