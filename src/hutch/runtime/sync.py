"""The line protocol between the runtime (stage 0) and its children: one message per line, over pipes.

Pipes, not sockets: the module is on the hot path and `os.pipe` costs no import. (An init spawned ahead,
hutch.runtime.prespawn, speaks it over its socket: one fd both ways.) A payload is marshal's, in hex: both
sides are this program, and marshal, unlike JSON, is built in: init then loads no shared object for it.
"""

from __future__ import annotations

import marshal
import os

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Channel:
    """One end of a two-pipe channel: lines go out on `wfd` and come in on `rfd`."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self._buf = b""

    def send(self, kind: str, payload: str | int | list[str] | None = None) -> None:
        line = kind if payload is None else f"{kind} {marshal.dumps(payload).hex()}"
        os.write(self.wfd, line.encode() + b"\n")

    def recv(self) -> tuple[str, Any]:
        """The next message as (kind, payload); ("eof", None) when the other side is gone."""
        while b"\n" not in self._buf:
            chunk = os.read(self.rfd, 4096)
            if not chunk:
                return "eof", None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        kind, _, rest = line.decode().partition(" ")
        return kind, (marshal.loads(bytes.fromhex(rest)) if rest else None)

    def expect(self, kind: str, what: str) -> object:
        got, payload = self.recv()
        if got == kind:
            return payload
        if got == "error":
            raise HutchError(str(payload))
        raise HutchError(f"{what}: the container's init exited unexpectedly")

    def pending(self, data: bytes) -> None:
        """Bytes already read from `rfd`: the lines they hold come first."""
        self._buf = data + self._buf

    def close(self) -> None:
        for fd in {self.rfd, self.wfd}:  # once, when both are one socket
            try:
                os.close(fd)
            except OSError:
                pass


def pair() -> tuple[Channel, Channel]:
    """(parent end, child end) of a new channel."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    return Channel(r2, w1), Channel(r1, w2)
