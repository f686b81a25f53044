"""Foreground `run` and `exec`: the runtime stays, as subreaper, forwards signals, proxies the terminal, and
returns the process's exit status (128+N when a signal N killed it), as runc does."""

import os

from hutch.linux import prctl, signals

# Signals the runtime passes on to the container, as runc does: all but those it cannot catch, those about
# itself (faults, job control on its own terminal) and SIGCHLD/SIGWINCH, which it handles.
_NOT_FORWARDED = ("KILL", "STOP", "CHLD", "URG", "WINCH", "SEGV", "BUS", "ILL", "FPE", "TTIN", "TTOU")
FORWARDED = sorted({n for name, n in signals.NUMBERS.items() if name not in _NOT_FORWARDED})


def become_subreaper() -> None:
    """Orphans of the container (its init first of all) are re-parented to us, so we can wait for them."""
    prctl.prctl(prctl.PR_SET_CHILD_SUBREAPER, 1)


class ConsoleReceiver:
    """Our own console socket for a terminal process when the caller gave none: we get the pty master."""

    def __init__(self) -> None:
        import socket

        self._ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.their_fd = theirs.detach()

    def receive(self) -> int:
        import socket

        msg, fds, _, _ = socket.recv_fds(self._ours, 4096, 1)
        self._ours.close()
        if not fds:
            from hutch.errors import HutchError

            raise HutchError("process.terminal: the container did not send its terminal")
        return fds[0]


def forward_signals(pid: int) -> None:
    """The signals we get go to `pid` (all but those in _NOT_FORWARDED)."""
    for sig in FORWARDED:
        signals.set_handler(sig, lambda s, _f: _forward(pid, s))


def wait(pid: int, master: int | None = None, proxy: bool = True) -> int:
    """Wait for `pid` (reaping any other orphan that comes our way), forwarding signals unless not `proxy`;
    its exit status."""
    if proxy:
        forward_signals(pid)
    if master is not None:
        from hutch.runtime import ttyproxy

        return ttyproxy.proxy(pid, master)
    while True:
        got, status = os.waitpid(-1, 0)
        if got == pid:
            return exit_code(status)


def reap(pid: int) -> int | None:
    """Reap every child that has exited (orphans come our way as subreaper); `pid`'s wait status once it
    is among them (0 if it was reaped elsewhere), None while it runs."""
    while True:
        try:
            got, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
        if got == 0:
            return None
        if got == pid:
            return status


def _forward(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
