"""What a pull reports while it runs: the steps as podman words them, and each blob's bytes as they arrive.

`Progress` is the plain form (podman's lines when its output is not a terminal): step lines, and one
`Copying blob ID done` line per blob when it is in place. The CLI's terminal form (cli/progress.py) draws a
bar per blob from the same calls. Calls may come from several download threads at once.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from hutch.oci.digest import Digest


def _quiet(_line: str) -> None:
    pass


class Progress:
    """Progress as lines to `say` (nothing without it)."""

    def __init__(self, say: Callable[[str], None] | None = None) -> None:
        self._say = say or _quiet

    def line(self, text: str) -> None:
        """A step: `Trying to pull ...`, `Writing manifest to image destination`."""
        self._say(text)

    def blob_start(self, kind: str, digest: Digest, size: int) -> None:
        """A blob (`kind` is blob or config) of `size` bytes starts downloading."""

    def blob_advance(self, digest: Digest, n: int) -> None:
        """`n` more bytes of the blob arrived."""

    def blob_done(self, kind: str, digest: Digest, note: str = "done") -> None:
        """The blob is in place (`note`: done, or skipped: already exists)."""
        self._say(f"Copying {kind} {digest.short} {note}")

    def close(self) -> None:
        """The pull ended (either way)."""


def of(progress: Progress | Callable[[str], None] | None) -> Progress:
    """A Progress for what a caller passed: one already, a line callback, or nothing."""
    if isinstance(progress, Progress):
        return progress
    return Progress(progress)


def counting(chunks: Iterator[bytes], progress: Progress, digest: Digest) -> Iterator[bytes]:
    """`chunks`, reporting each one's length to `progress` as it passes."""
    for chunk in chunks:
        progress.blob_advance(digest, len(chunk))
        yield chunk
