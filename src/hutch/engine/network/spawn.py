"""A short-lived helper program run to completion (a CNI plugin, iptables-save/-restore): its input on
stdin, its stdout and stderr read back. posix_spawn rather than subprocess, whose import (~6 ms: threading,
selectors, signal) would otherwise land on every `run --rm` on a bridge network, once in the engine and
once more in the helper that runs the plugins while the runtime creates the container.
"""

from __future__ import annotations

import os
import select

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


def run(
    argv: list[str], *, env: Mapping[str, str] | None = None, stdin: bytes = b""
) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, stderr) of argv[0], found on PATH; OSError when it cannot be started.
    A signal's death is reported as 128 + the signal, as a shell does."""
    return Started(argv, env=env, stdin=stdin).wait()


class Started:
    """A program started now and collected later (its output waits in the pipes meanwhile). Its input
    is written at once: a config, small enough for the pipe."""

    def __init__(self, argv: list[str], *, env: Mapping[str, str] | None = None, stdin: bytes = b"") -> None:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        actions = [
            (os.POSIX_SPAWN_DUP2, in_r, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ]
        try:
            self.pid = os.posix_spawnp(
                argv[0], argv, env if env is not None else os.environ, file_actions=actions
            )
        except OSError:
            for fd in (in_w, out_r, err_r):
                os.close(fd)
            raise
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
        self.out_r, self.err_r = out_r, err_r
        _feed(in_w, stdin)

    def wait(self) -> tuple[int, bytes, bytes]:
        """As run() returns."""
        try:
            out, err = _drain(self.out_r, self.err_r)
        finally:
            for fd in (self.out_r, self.err_r):
                os.close(fd)
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        return (128 - code if code < 0 else code), out, err


def _feed(fd: int, data: bytes) -> None:
    """The input, then EOF (a program that exits without reading it is no error)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        pass
    finally:
        os.close(fd)


def _drain(out_r: int, err_r: int) -> tuple[bytes, bytes]:
    """Both pipes read to EOF together, so a chatty stderr cannot stall stdout."""
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    open_fds = len(chunks)
    while open_fds:
        for fd, _ in poller.poll():
            data = os.read(fd, 65536)
            if data:
                chunks[fd].append(data)
            else:
                poller.unregister(fd)
                open_fds -= 1
    return b"".join(chunks[out_r]), b"".join(chunks[err_r])
