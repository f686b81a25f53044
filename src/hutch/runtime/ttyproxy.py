"""Copying between our terminal and a container's pty master, for foreground `run` and `exec` with a tty."""

import errno
import os
import select
import signal
import sys
import termios
import tty

from hutch.runtime import console


def proxy(pid: int, master: int) -> int:
    """Relay stdin to the pty and the pty to stdout until `pid` exits; returns its exit status."""
    from hutch.runtime import foreground

    stdin = sys.stdin.fileno()
    saved = None
    if os.isatty(stdin):
        saved = termios.tcgetattr(stdin)
        tty.setraw(stdin)
        _copy_size(stdin, master)
        signal.signal(signal.SIGWINCH, lambda _s, _f: _copy_size(stdin, master))
    status = None
    inputs = [master, stdin]
    try:
        while status is None:
            try:
                ready, _, _ = select.select(inputs, [], [], 0.1)
            except InterruptedError:
                ready = []
            if master in ready and not _pump(master, 1):
                inputs.remove(master)
            if stdin in ready and not _pump(stdin, master):
                inputs.remove(stdin)
            status = foreground.reap(pid)
        _drain(master)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        os.close(master)
    return foreground.exit_code(status)


def _pump(src: int, dst: int) -> bool:
    try:
        data = os.read(src, 65536)
    except OSError as e:
        if e.errno == errno.EIO:  # every slave fd is closed
            return False
        raise
    if not data:
        return False
    while data:
        data = data[os.write(dst, data) :]
    return True


def _drain(master: int) -> None:
    while select.select([master], [], [], 0)[0]:
        if not _pump(master, 1):
            return


def _copy_size(src: int, master: int) -> None:
    try:
        rows, cols = os.get_terminal_size(src)
        console.set_size(master, rows, cols)
    except OSError:
        pass
