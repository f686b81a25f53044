"""Content digests (OCI image spec, descriptor.md#digests): parsing, hashing and streaming verification.

`parse("sha256:<64 hex>", where)` validates the grammar `algorithm ":" encoded` and the registered
algorithms' encodings; hutch supports sha256 and sha512 (lower-case hex of 64 and 128 characters). Every
error names `where` the digest came from: a manifest path, an image reference, a file.

`Verifier(expected, size)` (hutch.oci.verifier, also reachable from here) checks content while it streams:
`update(chunk)` fails as soon as more bytes arrive than the descriptor's size, and `finish()` fails on a
short read or a digest mismatch.

stdlib only (hashlib), no dataclasses: the store and the registry client import this on every pull.
hashlib is imported when something is hashed: `hutch run` only parses digests, and hashlib's OpenSSL costs
milliseconds to load.
"""

from __future__ import annotations

from hutch.errors import ConfigError, HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import hashlib
    from typing import Literal

    from hutch.oci.verifier import Verifier as Verifier  # re-exported by __getattr__

    Algorithm = Literal["sha256", "sha512"]

# Registered algorithms hutch supports, and the length of their hex encoding.
HEX_LENGTH = {"sha256": 64, "sha512": 128}
_HEX = frozenset("0123456789abcdef")
_ALGORITHM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+._-")
_SEPARATORS = frozenset("+._-")
_ENCODED_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=_-")


class DigestError(ConfigError):
    """A digest string is malformed or uses an algorithm hutch does not support."""


class MismatchError(HutchError):
    """Content does not match its descriptor: wrong size or wrong digest."""


class Digest:
    """An algorithm and its lower-case hex encoding; immutable, hashable, `str()` gives `alg:hex`."""

    __slots__ = ("algorithm", "hex")

    algorithm: Algorithm
    hex: str

    def __init__(self, algorithm: Algorithm, hex: str) -> None:
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "hex", hex)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Digest is immutable: cannot set {name}")

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def __repr__(self) -> str:
        return f"Digest({self.algorithm!r}, {self.hex!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not Digest:
            return NotImplemented
        return self.algorithm == other.algorithm and self.hex == other.hex

    def __hash__(self) -> int:
        return hash((self.algorithm, self.hex))

    def __lt__(self, other: Digest) -> bool:
        return (self.algorithm, self.hex) < (other.algorithm, other.hex)

    def __reduce__(self) -> tuple[type[Digest], tuple[str, str]]:
        return (Digest, (self.algorithm, self.hex))

    @property
    def short(self) -> str:
        """The first 12 hex characters, as `podman images` shows an image id."""
        return self.hex[:12]

    def hasher(self) -> hashlib._Hash:
        import hashlib

        return hashlib.new(self.algorithm)


def parse(text: object, where: str) -> Digest:
    """Parse and validate `text` as an OCI digest; errors name `where` (a file, a JSON path, a reference)."""
    if not isinstance(text, str):
        raise DigestError(f"{where}: expected a digest string, got {type(text).__name__}")
    algorithm, sep, encoded = text.partition(":")
    if not sep:
        raise DigestError(f"{where}: invalid digest {text!r}: expected ALGORITHM:ENCODED")
    if (
        not algorithm
        or not set(algorithm) <= _ALGORITHM_CHARS
        or algorithm[0] in _SEPARATORS
        or algorithm[-1] in _SEPARATORS
        or any(a in _SEPARATORS and b in _SEPARATORS for a, b in zip(algorithm, algorithm[1:], strict=False))
    ):
        raise DigestError(f"{where}: invalid digest {text!r}: malformed algorithm {algorithm!r}")
    if not encoded or not set(encoded) <= _ENCODED_CHARS:
        raise DigestError(f"{where}: invalid digest {text!r}: malformed encoding")
    length = HEX_LENGTH.get(algorithm)
    if length is None:
        raise DigestError(
            f"{where}: unsupported digest algorithm {algorithm!r} in {text!r} (supported: sha256, sha512)"
        )
    if len(encoded) != length:
        raise DigestError(
            f"{where}: invalid digest {text!r}: {algorithm} needs {length} hex characters, got {len(encoded)}"
        )
    if not set(encoded) <= _HEX:
        raise DigestError(f"{where}: invalid digest {text!r}: {algorithm} needs lower-case hex")
    return Digest(algorithm, encoded)  # type: ignore[arg-type]  # checked against HEX_LENGTH


def of_bytes(data: bytes, algorithm: Algorithm = "sha256") -> Digest:
    """The digest of `data`."""
    if algorithm not in HEX_LENGTH:
        raise DigestError(f"unsupported digest algorithm {algorithm!r} (supported: sha256, sha512)")
    import hashlib

    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())


def __getattr__(name: str) -> type[Verifier]:
    """Verifier, from hutch.oci.verifier (imported on first use: `run` only parses digests)."""
    if name == "Verifier":
        from hutch.oci.verifier import Verifier

        return Verifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
