"""registries.conf v2 (hutch.image.registries): which [[registry]] a reference falls under, where a pull goes
(mirrors, then the location), insecure and blocked, drop-ins, and errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hutch.image import reference, registries
from hutch.image.registries import BlockedError, RegistriesConfError


def conf(tmp_path: Path, text: str, name: str = "registries.conf") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def where(config: registries.Config, name: str) -> list[tuple[str, bool, bool]]:
    return [(str(e.ref), e.insecure, e.mirror) for e in config.endpoints(reference.parse(name))]


def test_longest_prefix_mirrors_then_location(tmp_path: Path) -> None:
    config = registries.load(
        [
            conf(
                tmp_path,
                """
unqualified-search-registries = ["quay.io"]
[[registry]]
prefix = "example.com"
location = "backup.example.com"
[[registry]]
prefix = "example.com/team"
location = "internal:5000/team-mirror"
insecure = true
[[registry.mirror]]
location = "cache-a:5000/team"
[[registry.mirror]]
location = "cache-b:5000/team"
insecure = true
""",
            )
        ]
    )
    assert config.search == ["quay.io"]
    assert where(config, "example.com/team/app:1") == [
        ("cache-a:5000/team/app:1", False, True),
        ("cache-b:5000/team/app:1", True, True),
        ("internal:5000/team-mirror/app:1", True, False),
    ]
    assert where(config, "example.com/other/app@sha256:" + "a" * 64) == [
        ("backup.example.com/other/app@sha256:" + "a" * 64, False, False)
    ]
    # A prefix matches whole path components only, and an unlisted registry is itself.
    assert where(config, "example.com/teamster/app:1")[0][0] == "backup.example.com/teamster/app:1"
    assert where(config, "docker.io/library/busybox:1") == [("docker.io/library/busybox:1", False, False)]


def test_wildcard_blocked_and_insecure(tmp_path: Path) -> None:
    config = registries.load(
        [
            conf(
                tmp_path,
                '[[registry]]\nprefix = "*.bad.test"\nblocked = true\n'
                '[[registry]]\nlocation = "lab:5000"\ninsecure = true\n',
            )
        ]
    )
    with pytest.raises(BlockedError, match=r"x\.bad\.test/a:1: registry \*\.bad\.test is blocked"):
        config.endpoints(reference.parse("x.bad.test/a:1"))
    assert config.insecure(reference.parse("lab:5000/a:1"))
    assert not config.insecure(reference.parse("bad.test/a:1"))  # the bare domain is not a subdomain


def test_drop_ins_replace_tables_and_search_list(tmp_path: Path) -> None:
    main = conf(tmp_path, 'unqualified-search-registries = ["a.test"]\n[[registry]]\nlocation = "r.test"\n')
    drop = conf(tmp_path, '[[registry]]\nlocation = "r.test"\nblocked = true\n', "50-drop.conf")
    config = registries.load([main, drop])
    assert config.search == ["a.test"]
    assert len(config.registries) == 1 and config.registries[0].blocked


def test_env_and_explicit_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = conf(tmp_path, 'unqualified-search-registries = ["env.test"]\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", path)
    assert registries.conf_paths() == [path]
    assert registries.load().search == ["env.test"]
    other = conf(tmp_path, 'unqualified-search-registries = ["flag.test"]\n', "flag.conf")
    assert registries.load(explicit=other).search == ["flag.test"]
    with pytest.raises(RegistriesConfError, match="none.conf: registries configuration not found"):
        registries.load(explicit=str(tmp_path / "none.conf"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("[[registry]]\n", r"registry\[0\]: needs a location or a prefix"),
        ('[[registry]]\nlocation = "a"\nblocked = 1\n', r"registry\[0\]\.blocked: expected true or false"),
        ('[[registry]]\nlocation = "a"\nmirror = 3\n', r"registry\[0\]\.mirror: expected an array"),
        ("registry = 3\n", r"registry: expected an array of tables"),
        ('unqualified-search-registries = "a"\n', "unqualified-search-registries: expected an array"),
    ],
)
def test_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = conf(tmp_path, text)
    with pytest.raises(RegistriesConfError, match=message) as e:
        registries.load([path])
    assert path in str(e.value)
