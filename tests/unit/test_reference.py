"""hutch.image.reference: the distribution reference grammar, docker.io normalisation, short-name search."""

from __future__ import annotations

from pathlib import Path

import pytest

from hutch.image import reference
from hutch.image.reference import ImageReferenceError, Reference, parse, resolve
from hutch.oci.digest import of_bytes

DIGEST = str(of_bytes(b"x"))


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "", ""),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", ""),
        ("library/busybox", "docker.io", "library/busybox", "", ""),
        ("user/app:v1", "docker.io", "user/app", "v1", ""),
        ("docker.io/busybox", "docker.io", "library/busybox", "", ""),
        ("docker.io/a/b/c", "docker.io", "a/b/c", "", ""),
        ("quay.io/podman/stable", "quay.io", "podman/stable", "", ""),
        ("localhost/app", "localhost", "app", "", ""),
        ("localhost:5000/app:t", "localhost:5000", "app", "t", ""),
        ("127.0.0.1:5000/a/b:latest", "127.0.0.1:5000", "a/b", "latest", ""),
        ("[::1]:5000/app", "[::1]:5000", "app", "", ""),
        ("Registry.Example/app", "Registry.Example", "app", "", ""),
        ("reg.example/a-b/c__d/e.f:T_a.g-1", "reg.example", "a-b/c__d/e.f", "T_a.g-1", ""),
        (f"busybox@{DIGEST}", "docker.io", "library/busybox", "", DIGEST),
        (f"quay.io/a/b:t@{DIGEST}", "quay.io", "a/b", "t", DIGEST),
    ],
)
def test_parse(text: str, domain: str, path: str, tag: str, digest: str) -> None:
    ref = parse(text)
    assert (ref.domain, ref.path, ref.tag, str(ref.digest) if ref.digest else "") == (
        domain,
        path,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("a//b", "malformed repository name"),
        ("a/b:", "malformed tag"),
        ("a:-x", "malformed tag"),
        ("a:" + "t" * 129, "malformed tag"),
        ("a@sha256:abc", "malformed digest"),
        ("a@sha256:" + "A" * 64, "lower-case hex"),
        ("a@md5:" + "0" * 32, "unsupported digest algorithm"),
        ("-a.example/x", "malformed domain"),
        ("a_/b", "malformed repository name"),
        ("reg.example/" + "a" * 255, "longer than 255"),
    ],
)
def test_parse_errors_name_the_reference(text: str, message: str) -> None:
    with pytest.raises(ImageReferenceError, match=message) as info:
        parse(text)
    if text:
        assert repr(text)[:20] in str(info.value) or text[:20] in str(info.value)


def test_str_familiar_and_defaults() -> None:
    ref = parse("busybox")
    assert str(ref) == "docker.io/library/busybox"
    assert ref.familiar() == "busybox"
    assert str(ref.with_default_tag()) == "docker.io/library/busybox:latest"
    assert ref.object == "latest"
    assert parse("user/app:1").familiar() == "user/app:1"
    assert parse("quay.io/a/b:1").familiar() == "quay.io/a/b:1"
    pinned = parse(f"a:t@{DIGEST}")
    assert pinned.object == DIGEST and pinned.with_default_tag() is pinned
    assert parse("localhost:5000/x").repository == "x"


def test_unnormalised_short_name() -> None:
    ref = parse("busybox:1", normalize=False)
    assert ref == Reference("", "busybox", "1", None) and not ref.qualified


def test_resolve_short_name_through_search_registries() -> None:
    got = resolve("busybox:1", ["quay.io", "docker.io"])
    assert [str(r) for r in got] == ["quay.io/busybox:1", "docker.io/library/busybox:1"]
    got = resolve("org/app", ["registry.example:5000"])
    assert [str(r) for r in got] == ["registry.example:5000/org/app"]


def test_resolve_qualified_name_is_itself() -> None:
    assert [str(r) for r in resolve("quay.io/a/b", ["docker.io"])] == ["quay.io/a/b"]


def test_resolve_without_search_registries_fails_clearly() -> None:
    with pytest.raises(ImageReferenceError, match="no unqualified-search registries"):
        resolve("busybox", [])


def test_search_registries_from_registries_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main = tmp_path / "registries.conf"
    main.write_text('unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]\n')
    assert reference.load_search_registries([str(main)]) == ["registry.fedoraproject.org", "docker.io"]
    dropin = tmp_path / "50-mine.conf"
    dropin.write_text('unqualified-search-registries = ["localhost:5000"]\n')
    other = tmp_path / "60-other.conf"
    other.write_text("[aliases]\n")
    assert reference.load_search_registries([str(main), str(dropin), str(other)]) == ["localhost:5000"]
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(main))
    assert reference.registries_conf_paths()[0] == str(main)
    assert [str(r) for r in resolve("x", None)] == ["registry.fedoraproject.org/x", "docker.io/library/x"]
    bad = tmp_path / "bad.conf"
    bad.write_text("unqualified-search-registries = 3\n")
    with pytest.raises(ImageReferenceError, match="bad.conf: unqualified-search-registries"):
        reference.load_search_registries([str(bad)])


# --- the plain forms, checked without the regexes ------------------------------------------------------

_PIECES = [
    "a", "b", "z", "0", "9", "busybox", "app", "x1", ".", "_", "__", "___", "-", "--", "/", "//", ":", "::",
    "@", "A", "Ab", "é", "ß", " ", "+", "localhost", "example.com", "reg-1.io", "-x.io", "x-.io", "1.2.3.4",
    ":5000", ":50a", "[::1]", "latest", "v1.36", "T_a.g-1", ".tag", "-tag", "t" * 128, "t" * 129,
    f"sha256:{'ab' * 32}", f"sha256:{'AB' * 32}", f"sha512:{'0' * 128}", f"sha256:{'a' * 63}",
    f"sha256+b64:{'a' * 32}", f"md5:{'0' * 32}", "sha256:", "a" * 250,
]  # fmt: skip


def _names() -> list[str]:
    import random

    rng = random.Random(1234)
    names = [rng.choice(_PIECES) for _ in range(200)]
    for _ in range(20000):
        names.append("".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 7))))
    for name in list(names[:3000]):  # the common forms, so that the plain checks decide many of them
        names.append(f"{name}:{rng.choice(_PIECES)}")
        names.append(f"{rng.choice(['', 'quay.io/', 'localhost:5000/'])}library/{name}@{_PIECES[41]}")
    return names


def _outcome(text: str, normalize: bool) -> object:
    try:
        ref = parse(text, normalize)
    except ImageReferenceError as e:
        return ("error", str(e))
    return (ref.domain, ref.path, ref.tag, ref.digest)


def test_plain_forms_parse_as_the_regexes_do(monkeypatch: pytest.MonkeyPatch) -> None:
    names = _names()
    fast = [(_outcome(n, True), _outcome(n, False)) for n in names]
    plain = sum(
        reference._plain_digest(n.partition("@")[2]) or all(map(reference._plain_component, n.split("/")))
        for n in names
    )
    assert plain > 2000  # the plain checks decided a good share of the names
    for name in ("_plain_component", "_plain_domain", "_plain_tag", "_plain_digest"):
        monkeypatch.setattr(reference, name, lambda text: False)
    slow = [(_outcome(n, True), _outcome(n, False)) for n in names]
    assert [(n, f) for n, f, s in zip(names, fast, slow, strict=True) if f != s] == []


@pytest.mark.parametrize(
    ("check", "pattern"),
    [
        ("_plain_component", reference._PATH_COMPONENT),
        ("_plain_domain", reference._DOMAIN),
        ("_plain_tag", reference._TAG),
        ("_plain_digest", reference._DIGEST),
    ],
)
def test_what_a_plain_check_accepts_the_regex_accepts(check: str, pattern: str) -> None:
    import re

    accepted = [p for n in _names() for p in {n, *n.split("/"), *n.split(":"), *n.split("@")} if p]
    accepted = [p for p in accepted if getattr(reference, check)(p)]
    assert len(accepted) > 100
    assert [p for p in accepted if not re.fullmatch(pattern, p)] == []


def test_a_plain_name_is_parsed_without_re() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom hutch.image import reference\n"
        f"r = reference.parse('quay.io:443/a-b/c__d.e:V1_x@{_PIECES[41]}')\n"
        "assert (r.domain, r.path, r.tag) == ('quay.io:443', 'a-b/c__d.e', 'V1_x'), r\n"
        "reference.parse('busybox-run:1'); reference.parse('localhost/app', normalize=False)\n"
        "print('re' in sys.modules, 'enum' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
