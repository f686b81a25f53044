"""Signal numbers by name, and setting dispositions, without the `signal` module.

`import signal` costs ~3 ms (it builds IntEnums, which imports `enum`); the runtime's hot path only needs
the numbers and `_signal`, the C module that `signal` wraps.
"""

import _signal

SIG_DFL = _signal.SIG_DFL
SIG_IGN = _signal.SIG_IGN
default_int_handler = _signal.default_int_handler  # Python's own: KeyboardInterrupt
SIG_BLOCK = _signal.SIG_BLOCK
SIG_UNBLOCK = _signal.SIG_UNBLOCK
SIG_SETMASK = _signal.SIG_SETMASK
set_handler = _signal.signal
pthread_sigmask = _signal.pthread_sigmask

# Linux's numbers on x86 and arm (asm-generic/signal.h); the real-time ones are SIGRTMIN+n / SIGRTMAX-n.
NUMBERS = {
    "HUP": 1,
    "INT": 2,
    "QUIT": 3,
    "ILL": 4,
    "TRAP": 5,
    "ABRT": 6,
    "IOT": 6,
    "BUS": 7,
    "FPE": 8,
    "KILL": 9,
    "USR1": 10,
    "SEGV": 11,
    "USR2": 12,
    "PIPE": 13,
    "ALRM": 14,
    "TERM": 15,
    "STKFLT": 16,
    "CHLD": 17,
    "CONT": 18,
    "STOP": 19,
    "TSTP": 20,
    "TTIN": 21,
    "TTOU": 22,
    "URG": 23,
    "XCPU": 24,
    "XFSZ": 25,
    "VTALRM": 26,
    "PROF": 27,
    "WINCH": 28,
    "IO": 29,
    "POLL": 29,
    "PWR": 30,
    "SYS": 31,
}
SIGRTMIN = 34
SIGRTMAX = 64


def number(name: str) -> int | None:
    """The number of a signal name such as `TERM`, `SIGTERM` or `RTMIN+3`; None if unknown."""
    name = name.upper().removeprefix("SIG")
    if name in NUMBERS:
        return NUMBERS[name]
    for base, value in (("RTMIN", SIGRTMIN), ("RTMAX", SIGRTMAX)):
        if name == base:
            return value
        for op in "+-":
            if name.startswith(base + op) and name[len(base) + 1 :].isdigit():
                offset = int(name[len(base) + 1 :]) * (1 if op == "+" else -1)
                if SIGRTMIN <= value + offset <= SIGRTMAX:
                    return value + offset
    return None


def reset_internal() -> None:
    """SIG_DFL for glibc's own signals, 32 and 33 (below SIGRTMIN), through the raw rt_sigaction: glibc's
    sigaction refuses them, and its posix_spawn leaves them ignored in the child it starts."""
    from hutch.linux import cdata
    from hutch.linux.libc import syscall

    default = (cdata.c_ulong * 4)()  # handler SIG_DFL, no flags, no restorer, an empty mask
    for number in range(SIGRTMIN - 2, SIGRTMIN):
        syscall("rt_sigaction", number, cdata.byref(default), None, 8, detail=str(number))
