"""Pull progress on a terminal, as podman draws it (containers/image's bars): one line per blob, redrawn in
place, `Copying blob 4abcf2066143 [=====>--------------] 1.2MiB / 3.4MiB`, then `... done`.

Redraws move the cursor up over the bars and clear each line (ANSI CSI A and 2K); at most one redraw per
REDRAW seconds while bytes arrive, and always when a blob starts or ends. Steps (`Writing manifest ...`) go
below the bars. `for_stderr` picks the form for pull, push, and run or create pulling a missing image.
"""

from __future__ import annotations

import sys
import threading
import time

from hutch.cli.main import _err
from hutch.image.progress import Progress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from hutch.oci.digest import Digest

BAR_WIDTH = 30
REDRAW = 0.1
_UNITS = ("b", "KiB", "MiB", "GiB", "TiB")


def for_stderr() -> Progress:
    """Bars per blob when stderr is a terminal (as podman draws them), podman's plain lines otherwise."""
    return TerminalProgress(sys.stderr) if sys.stderr.isatty() else Progress(_err)


def size_1024(n: float) -> str:
    """A byte count as the bars' counters print it: `0.0b`, `512.0KiB`, `3.4MiB`."""
    i = 0
    while n >= 1024 and i < len(_UNITS) - 1:
        n /= 1024
        i += 1
    return f"{n:.1f}{_UNITS[i]}"


class _Bar:
    __slots__ = ("kind", "digest", "size", "done", "note")

    def __init__(self, kind: str, digest: Digest, size: int) -> None:
        self.kind = kind
        self.digest = digest
        self.size = size
        self.done = 0
        self.note = ""

    def text(self) -> str:
        head = f"Copying {self.kind} {self.digest.short}"
        if self.note:
            return f"{head} {self.note}"
        filled = BAR_WIDTH * self.done // self.size if self.size > 0 else 0
        bar = "=" * filled + (">" if filled < BAR_WIDTH else "") + "-" * max(0, BAR_WIDTH - filled - 1)
        return f"{head} [{bar}] {size_1024(self.done)} / {size_1024(self.size)}"


class TerminalProgress(Progress):
    """Bars on `out` (a terminal)."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out
        self._lock = threading.Lock()
        self._bars: list[_Bar] = []
        self._by_digest: dict[str, _Bar] = {}
        self._drawn = 0  # lines of bars on screen above the cursor
        self._last = 0.0

    def line(self, text: str) -> None:
        with self._lock:
            self._draw()
            self._out.write(text + "\n")
            # Bars that ended stay on screen as they are; only unfinished ones are drawn again, below.
            self._bars = [b for b in self._bars if not b.note]
            self._drawn = 0
            self._out.flush()

    def blob_start(self, kind: str, digest: Digest, size: int) -> None:
        with self._lock:
            bar = self._by_digest.get(str(digest))
            if bar is None:
                bar = _Bar(kind, digest, size)
                self._by_digest[str(digest)] = bar
                self._bars.append(bar)
            self._draw()

    def blob_advance(self, digest: Digest, n: int) -> None:
        with self._lock:
            bar = self._by_digest.get(str(digest))
            if bar is None:
                return
            bar.done += n
            if time.monotonic() - self._last >= REDRAW:
                self._draw()

    def blob_done(self, kind: str, digest: Digest, note: str = "done") -> None:
        with self._lock:
            bar = self._by_digest.get(str(digest))
            if bar is None:
                bar = _Bar(kind, digest, 0)
                self._by_digest[str(digest)] = bar
                self._bars.append(bar)
            bar.done = max(bar.done, bar.size)
            bar.note = note
            self._draw()

    def close(self) -> None:
        with self._lock:
            self._draw()

    def _draw(self) -> None:
        out = [f"\x1b[{self._drawn}A"] if self._drawn else []
        out += [f"\r\x1b[2K{bar.text()}\n" for bar in self._bars]
        self._out.write("".join(out))
        self._out.flush()
        self._drawn = len(self._bars)
        self._last = time.monotonic()
