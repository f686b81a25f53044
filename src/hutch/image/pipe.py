"""A bounded in-process pipe of byte chunks between two threads: a download writes, an unpacker reads.

The writer blocks while DEPTH chunks wait; `close` is the end of the stream, `fail` hands the reader an
error instead, and `abandon` (the reader gone) turns further writes into no-ops, so a writer never waits on
a reader that stopped.
"""

from __future__ import annotations

import queue

from hutch.errors import HutchError

DEPTH = 16

_EOF = b""


class PipeError(HutchError):
    """The writing side failed; the reader gets this in place of the rest of the stream."""


class Pipe:
    def __init__(self, depth: int = DEPTH) -> None:
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._abandoned = False
        self._buf = b""
        self._pos = 0
        self._ended = False
        self.fed = 0  # bytes written

    # --- the writer -------------------------------------------------------------------------------------

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.fed += len(chunk)
        self._put(chunk)

    def close(self) -> None:
        self._put(_EOF)

    def fail(self, error: BaseException, wrap: bool = True) -> None:
        """The reader gets `error` (as a PipeError, or as it is without `wrap`) instead of the rest."""
        self._put(PipeError(f"the stream failed: {error}") if wrap else error)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._abandoned:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    # --- the reader -------------------------------------------------------------------------------------

    def read(self, n: int = -1) -> bytes:
        if self._pos >= len(self._buf):
            if self._ended:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._ended = True
                raise item
            if not item:
                self._ended = True
                return b""
            self._buf, self._pos = item, 0
        if n < 0:
            n = len(self._buf) - self._pos
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    def abandon(self) -> None:
        """The reader stops reading: writes from now on are dropped."""
        self._abandoned = True
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
