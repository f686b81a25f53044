"""hutch.image.auth: credentials from auth.json and docker's config.json, and WWW-Authenticate challenges."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from hutch.errors import ConfigError
from hutch.image import auth
from hutch.image.auth import Challenge, Credentials


def _entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    containers = tmp_path / "run" / "containers" / "auth.json"
    docker = tmp_path / "docker" / "config.json"
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return containers, docker


def test_lookup_order_and_most_specific_key(files: tuple[Path, Path]) -> None:
    containers, docker = files
    docker.parent.mkdir(parents=True)
    docker.write_text(
        json.dumps(
            {"auths": {"https://index.docker.io/v1/": _entry("hubuser", "p1"), "quay.io": _entry("dq", "p2")}}
        )
    )
    assert auth.lookup("docker.io", "library/busybox") == Credentials("hubuser", "p1")
    assert auth.lookup("quay.io") == Credentials("dq", "p2")
    assert auth.lookup("ghcr.io") is None
    auth.save("quay.io", Credentials("cq", "p3"))
    auth.save("quay.io/org", Credentials("org", "p4"))
    assert containers.exists() and oct(containers.stat().st_mode & 0o777) == "0o600"
    assert auth.lookup("quay.io", "other/app") == Credentials("cq", "p3")  # containers' file first
    assert auth.lookup("quay.io", "org/app") == Credentials("org", "p4")  # a namespace key beats the host
    assert auth.remove("quay.io/org") and not auth.remove("quay.io/org")
    assert auth.lookup("quay.io", "org/app") == Credentials("cq", "p3")


def test_registry_auth_file_replaces_the_default(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = tmp_path / "mine.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(explicit))
    assert auth.auth_file() == str(explicit)
    auth.save("localhost:5000", Credentials("u", "p"))
    assert json.loads(explicit.read_text())["auths"]["localhost:5000"] == _entry("u", "p")
    assert auth.lookup("localhost:5000") == Credentials("u", "p")
    assert not os.path.exists(files[0])


def test_username_password_and_identity_token_entries(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(
        json.dumps(
            {
                "auths": {
                    "a.example": {"username": "u", "password": "p"},
                    "b.example": {"identitytoken": "tok"},
                }
            }
        )
    )
    assert auth.lookup("a.example", files=[str(path)]) == Credentials("u", "p")
    assert auth.lookup("b.example", files=[str(path)]) == Credentials("", "", "tok")


def test_bad_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{")
    with pytest.raises(ConfigError, match="bad.json: invalid JSON"):
        auth.lookup("x", files=[str(path)])
    path.write_text(json.dumps({"auths": {"x": {"auth": "!!"}}}))
    with pytest.raises(ConfigError, match=r"bad.json: auths.x.auth: not base64"):
        auth.lookup("x", files=[str(path)])


def test_credentials_repr_hides_the_password() -> None:
    assert "s3cret" not in repr(Credentials("u", "s3cret"))
    assert Credentials("u", "p").basic() == "Basic dTpw"


def test_parse_challenges() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull,push", Basic realm="Registry \\"Realm\\""'
    )
    assert auth.parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/busybox:pull,push",
            },
        ),
        Challenge("basic", {"realm": 'Registry "Realm"'}),
    ]
    assert auth.parse_challenges("") == []
    assert auth.parse_challenges("Basic") == [Challenge("basic")]


def test_logout_all_removes_the_file_even_when_a_helper_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "auth.json"
    doc = {
        "auths": {"quay.io": _entry("u", "secret")},
        "credHelpers": {"a.test": "hutch-no-such-helper", "b.test": "hutch-no-such-helper-either"},
    }
    path.write_text(json.dumps(doc))
    monkeypatch.setenv("PATH", str(tmp_path))  # neither helper can be found
    with pytest.raises(ConfigError, match="hutch-no-such-helper"):
        auth.remove_all(str(path))
    assert not path.exists()  # the secrets of auths went with it
