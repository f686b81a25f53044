"""registries.conf (v2) as `hutch pull` and `push` read it: mirrors tried in order before the location,
`insecure`, `blocked`, unqualified-search-registries; from `--registries-conf PATH` or
$CONTAINERS_REGISTRIES_CONF. Two docker-registry instances play mirror and location.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.registry_fixtures import RegistryServer, sha256, start_registry
from tests.integration.test_image_cli import EXIT_ENGINE, HUTCH, hutch
from tests.integration.test_image_list import push_image


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryServer, RegistryServer]]:
    """(mirror, location): two plain-HTTP registries."""
    a = start_registry(tmp_path_factory.mktemp("mirror"))
    b = start_registry(tmp_path_factory.mktemp("location"))
    yield a, b
    a.stop()
    b.stop()


def write_conf(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def image_id(config: bytes) -> str:
    return sha256(config)[7:]


def test_mirrors_are_tried_in_order_before_the_location(
    pair: tuple[RegistryServer, RegistryServer], tmp_path: Path
) -> None:
    mirror, location = pair
    only_mirror, _ = push_image(mirror.host, "app/img", "m", created="2021-01-01T00:00:00Z")
    only_location, _ = push_image(location.host, "app/img", "l", created="2022-01-01T00:00:00Z")
    in_mirror, _ = push_image(mirror.host, "app/img", "both", created="2023-01-01T00:00:00Z")
    push_image(location.host, "app/img", "both", created="2024-01-01T00:00:00Z")
    conf = write_conf(
        tmp_path / "registries.conf",
        f"""
[[registry]]
prefix = "hutch.test/app"
location = "{location.host}/app"
insecure = true

[[registry.mirror]]
location = "{mirror.host}/app"
insecure = true
""",
    )
    root = tmp_path / "storage"

    def pull(tag: str) -> subprocess.CompletedProcess[str]:
        return hutch(root, "pull", "-q", "--registries-conf", conf, f"hutch.test/app/img:{tag}", check=False)

    assert pull("m").stdout.strip() == image_id(only_mirror)  # the location does not have it
    assert pull("l").stdout.strip() == image_id(only_location)  # the mirror does not have it
    assert pull("both").stdout.strip() == image_id(in_mirror)  # the mirror comes first
    # Recorded under the name asked for, not the mirror's.
    names = hutch(root, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert sorted(names) == ["hutch.test/app/img:both", "hutch.test/app/img:l", "hutch.test/app/img:m"]
    # Neither has it: the location's error, one line, nothing stored.
    missing = pull("nowhere")
    assert missing.returncode == EXIT_ENGINE and location.host in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert len(hutch(root, "images", "-q").stdout.split()) == 3


def test_insecure_blocked_and_search_registries(
    pair: tuple[RegistryServer, RegistryServer], tmp_path: Path
) -> None:
    _, location = pair
    config, _ = push_image(location.host, "plain", "1")
    root = tmp_path / "storage"
    empty = write_conf(tmp_path / "empty.conf", "")
    name = f"{location.host}/plain:1"
    # A plain-HTTP registry is refused while TLS is verified ...
    refused = hutch(root, "pull", "-q", "--registries-conf", empty, name, check=False)
    assert refused.returncode == EXIT_ENGINE and "TLS" in refused.stderr
    # ... and reached when registries.conf calls it insecure, as --tls-verify=false would.
    insecure = write_conf(
        tmp_path / "insecure.conf",
        f'unqualified-search-registries = ["{location.host}"]\n'
        f'[[registry]]\nlocation = "{location.host}"\ninsecure = true\n',
    )
    env = {**os.environ, "CONTAINERS_REGISTRIES_CONF": insecure}
    got = subprocess.run(
        [*HUTCH, "--root", str(root), "pull", "-q", name],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == image_id(config)
    # A short name resolves through the search registries.
    short = subprocess.run(
        [*HUTCH, "--root", str(root), "pull", "plain:1"], capture_output=True, text=True, env=env, check=False
    )
    assert short.returncode == 0, short.stderr
    assert f"Trying to pull {location.host}/plain:1..." in short.stderr

    blocked = write_conf(
        tmp_path / "blocked.conf", f'[[registry]]\nlocation = "{location.host}"\nblocked = true\n'
    )
    root2 = tmp_path / "storage2"
    refused = hutch(root2, "pull", "--tls-verify=false", "--registries-conf", blocked, name, check=False)
    assert refused.returncode == EXIT_ENGINE and "blocked" in refused.stderr and blocked in refused.stderr
    assert hutch(root2, "images", "-q").stdout == ""
    assert [p for p in root2.rglob("*") if p.is_file() and "blobs" in p.parts] == []
    pushed = hutch(
        root,
        "push",
        "--tls-verify=false",
        "--registries-conf",
        blocked,
        name,
        f"{location.host}/other:1",
        check=False,
    )
    assert pushed.returncode == EXIT_ENGINE and "blocked" in pushed.stderr


@pytest.mark.parametrize(
    "text, words",
    [
        ("[[registry]\n", ["bad.conf", "cannot read"]),
        ('[[registry]]\nlocation = "x.test"\ninsecure = "yes"\n', ["bad.conf", "registry[0].insecure"]),
        (
            '[[registry]]\nlocation = "x.test"\n[[registry.mirror]]\ninsecure = true\n',
            ["registry[0].mirror[0]"],
        ),
    ],
)
def test_bad_registries_conf_is_a_one_line_error(tmp_path: Path, text: str, words: list[str]) -> None:
    conf = write_conf(tmp_path / "bad.conf", text)
    root = tmp_path / "storage"
    proc = hutch(root, "pull", "--registries-conf", conf, "x.test/a:1", check=False)
    assert proc.returncode == EXIT_ENGINE and proc.stderr.startswith("Error: ")
    assert len(proc.stderr.strip().splitlines()) == 1
    for w in words:
        assert w in proc.stderr
    missing = hutch(root, "pull", "--registries-conf", str(tmp_path / "none.conf"), "x.test/a:1", check=False)
    assert missing.returncode == EXIT_ENGINE and "none.conf" in missing.stderr
