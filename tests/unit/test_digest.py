"""Digest parsing, hashing and streaming verification (hutch.oci.digest)."""

from __future__ import annotations

import hashlib
import pickle

import pytest

from hutch.errors import ConfigError, HutchError
from hutch.oci import digest
from hutch.oci.digest import Digest, DigestError, MismatchError, Verifier

HELLO = hashlib.sha256(b"hello").hexdigest()
HELLO512 = hashlib.sha512(b"hello").hexdigest()


def test_parse_sha256() -> None:
    d = digest.parse(f"sha256:{HELLO}", "manifest.json: layers[0].digest")
    assert d == Digest("sha256", HELLO)
    assert d.algorithm == "sha256" and d.hex == HELLO
    assert str(d) == f"sha256:{HELLO}"
    assert d.short == HELLO[:12]


def test_parse_sha512() -> None:
    d = digest.parse(f"sha512:{HELLO512}", "x")
    assert str(d) == f"sha512:{HELLO512}"


def test_digest_is_hashable_immutable_and_picklable() -> None:
    a = digest.parse(f"sha256:{HELLO}", "x")
    b = Digest("sha256", HELLO)
    assert {a: 1}[b] == 1
    with pytest.raises(AttributeError):
        a.hex = "0" * 64
    assert pickle.loads(pickle.dumps(a)) == a
    assert a != Digest("sha512", HELLO512)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (f"md5:{HELLO}", "unsupported digest algorithm 'md5'"),
        (f"sha384:{HELLO}", "unsupported digest algorithm 'sha384'"),
        (f"SHA256:{HELLO}", "malformed algorithm"),
        (f"sha256+:{HELLO}", "malformed algorithm"),
        (f"sha..256:{HELLO}", "malformed algorithm"),
        (f":{HELLO}", "malformed algorithm"),
        ("sha256:", "malformed encoding"),
        (f"sha256:{HELLO[:-1]}!", "malformed encoding"),
        (f"sha256:{HELLO.upper()}", "lower-case hex"),
        (f"sha256:{'g' * 64}", "lower-case hex"),
        (f"sha256:{HELLO[:-1]}", "needs 64 hex characters, got 63"),
        (f"sha256:{HELLO}0", "needs 64 hex characters, got 65"),
        (f"sha512:{HELLO}", "needs 128 hex characters, got 64"),
        (HELLO, "expected ALGORITHM:ENCODED"),
        ("", "expected ALGORITHM:ENCODED"),
    ],
)
def test_parse_rejects(text: str, fragment: str) -> None:
    with pytest.raises(DigestError) as info:
        digest.parse(text, "docker.io/library/busybox:latest")
    message = str(info.value)
    assert message.startswith("docker.io/library/busybox:latest: "), message
    assert fragment in message
    assert isinstance(info.value, ConfigError) and isinstance(info.value, HutchError)


def test_parse_rejects_non_string() -> None:
    with pytest.raises(
        DigestError, match=r"^index.json: manifests\[0\].digest: expected a digest string, got int"
    ):
        digest.parse(5, "index.json: manifests[0].digest")


def test_of_bytes() -> None:
    assert digest.of_bytes(b"hello") == Digest("sha256", HELLO)
    assert digest.of_bytes(b"hello", "sha512") == Digest("sha512", HELLO512)
    with pytest.raises(DigestError):
        digest.of_bytes(b"hello", "md5")  # type: ignore[arg-type]


def test_verifier_accepts_matching_stream() -> None:
    v = Verifier(Digest("sha256", HELLO), 5)
    for chunk in (b"he", b"", b"llo"):
        v.update(chunk)
    assert v.finish() == Digest("sha256", HELLO)
    assert v.received == 5


def test_verifier_without_size() -> None:
    v = Verifier(Digest("sha512", HELLO512), None)
    v.update(b"hello")
    assert v.finish() == Digest("sha512", HELLO512)


def test_verifier_digest_mismatch_names_where() -> None:
    v = Verifier(Digest("sha256", HELLO), 5, where="busybox: layer 0")
    v.update(b"jello")
    with pytest.raises(
        MismatchError, match=rf"^busybox: layer 0: digest mismatch: expected sha256:{HELLO}, got sha256:"
    ):
        v.finish()


def test_verifier_too_long_fails_on_update() -> None:
    v = Verifier(Digest("sha256", HELLO), 5)
    v.update(b"hell")
    with pytest.raises(MismatchError, match="longer than its descriptor's size 5"):
        v.update(b"oo")


def test_verifier_too_short_fails_on_finish() -> None:
    v = Verifier(Digest("sha256", HELLO), 6)
    v.update(b"hello")
    with pytest.raises(MismatchError, match="content is 5 bytes, its descriptor says 6"):
        v.finish()
