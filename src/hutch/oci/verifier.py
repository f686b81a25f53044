"""Streaming verification of content against its descriptor (see hutch.oci.digest)."""

from __future__ import annotations

from hutch.oci.digest import Digest, MismatchError


class Verifier:
    """Hash content as it streams and check it against `expected` (and `size`, when known).

    `update` raises MismatchError as soon as the content is longer than `size`, so a download can stop early;
    `finish` raises it on a short read or a different digest, and returns the verified digest.
    """

    __slots__ = ("expected", "size", "where", "received", "_hash")

    def __init__(self, expected: Digest, size: int | None = None, where: str = "") -> None:
        if size is not None and size < 0:
            raise MismatchError(f"{where or expected}: negative size {size}")
        self.expected = expected
        self.size = size
        self.where = where or str(expected)
        self.received = 0
        import hashlib

        self._hash = hashlib.new(expected.algorithm)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.received += len(data)
        if self.size is not None and self.received > self.size:
            raise MismatchError(
                f"{self.where}: content is longer than its descriptor's size {self.size} "
                f"(at least {self.received} bytes)"
            )
        self._hash.update(data)

    def finish(self) -> Digest:
        if self.size is not None and self.received != self.size:
            raise MismatchError(
                f"{self.where}: content is {self.received} bytes, its descriptor says {self.size}"
            )
        actual = Digest(self.expected.algorithm, self._hash.hexdigest())
        if actual != self.expected:
            raise MismatchError(f"{self.where}: digest mismatch: expected {self.expected}, got {actual}")
        return actual
