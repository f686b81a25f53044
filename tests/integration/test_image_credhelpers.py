"""Credential helpers: auth.json `credHelpers` and `credsStore` run `docker-credential-NAME get`, and `hutch
pull` authenticates to a docker-registry with htpasswd auth (over TLS) with what the helper says.

The helper is a small script the test writes on $PATH: it logs the server URL it was asked for and answers
the registry's credentials, or docker's "credentials not found" for any other server.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.registry_fixtures import (
    RegistryServer,
    build_busybox_layout,
    make_htpasswd,
    make_tls,
    skopeo,
    start_registry,
)
from tests.integration.test_image_cli import EXIT_ENGINE, HUTCH

USER, PASSWORD = "helped", "s3cret-from-helper"


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryServer, str]]:
    """A TLS registry with htpasswd auth holding busybox:1; (server, the image's config digest)."""
    base = tmp_path_factory.mktemp("locked")
    why = make_htpasswd(base / "htpasswd", USER, PASSWORD)
    if why is not None:
        pytest.fail(f"cannot make an htpasswd file: {why}")
    server = start_registry(base / "registry", tls=make_tls(base / "tls"), htpasswd=base / "htpasswd")
    img = build_busybox_layout(base / "layout", "1")
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"--dest-creds={USER}:{PASSWORD}",
        f"oci:{img.layout}:1",
        f"docker://{server.host}/busybox:1",
    )
    yield server, img.config_digest
    server.stop()


def helper(bin_dir: Path, name: str, host: str, log: Path) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        f"""#!/bin/sh
[ "$1" = get ] || exit 3
read -r server
echo "$server" >> {log}
if [ "$server" = "{host}" ]; then
    printf '{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}\\n' "$server"
else
    echo "credentials not found in native keychain"
    exit 1
fi
"""
    )
    script.chmod(0o755)


def run_pull(
    tmp_path: Path, auth: dict[str, object], host: str, bin_dir: Path
) -> subprocess.CompletedProcess[str]:
    tmp_path.mkdir()
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps(auth))
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "REGISTRY_AUTH_FILE": str(auth_file),
        "DOCKER_CONFIG": str(tmp_path / "no-docker"),
    }
    return subprocess.run(
        [
            *HUTCH,
            "--root",
            str(tmp_path / "storage"),
            "pull",
            "-q",
            "--tls-verify=false",
            f"{host}/busybox:1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cred_helpers_and_creds_store(locked: tuple[RegistryServer, str], tmp_path: Path) -> None:
    server, config_digest = locked
    bin_dir, log = tmp_path / "bin", tmp_path / "helper.log"
    helper(bin_dir, "hutchtest", server.host, log)

    # Without credentials the registry refuses.
    refused = run_pull(tmp_path / "none", {"auths": {}}, server.host, bin_dir)
    assert refused.returncode == EXIT_ENGINE and "401 Unauthorized" in refused.stderr

    got = run_pull(tmp_path / "helpers", {"credHelpers": {server.host: "hutchtest"}}, server.host, bin_dir)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == config_digest[7:]
    assert log.read_text().split() == [server.host]

    # credsStore: the helper for every registry; an entry in credHelpers for another registry is not used.
    store = {"credsStore": "hutchtest", "credHelpers": {"other.test": "nosuch"}}
    got = run_pull(tmp_path / "store", store, server.host, bin_dir)
    assert got.returncode == 0, got.stderr
    assert log.read_text().split() == [server.host, server.host]

    # A helper without credentials for the registry leaves the file's auths to answer (here: wrong ones).
    helper(bin_dir, "empty", "elsewhere.test", log)
    wrong = {"credsStore": "empty", "auths": {server.host: {"auth": "d3Jvbmc6d3Jvbmc="}}}
    failed = run_pull(tmp_path / "fallback", wrong, server.host, bin_dir)
    assert failed.returncode == EXIT_ENGINE and log.read_text().split()[-1] == server.host

    # A helper that is not installed: one line naming it and the file.
    missing = run_pull(tmp_path / "missing", {"credHelpers": {server.host: "nosuch"}}, server.host, bin_dir)
    assert missing.returncode == EXIT_ENGINE
    assert missing.stderr.startswith("Error: ") and len(missing.stderr.strip().splitlines()) == 1
    assert "docker-credential-nosuch" in missing.stderr and "auth.json" in missing.stderr
    assert not (tmp_path / "missing" / "storage" / "hutch.db").exists() or not list(
        (tmp_path / "missing" / "storage" / "layers").iterdir()
    )


def storing_helper(bin_dir: Path, name: str, vault: Path, log: Path) -> None:
    """A helper keeping each server's JSON in a file of `vault` (store, get, erase), as pass or
    secretservice keep them in their own stores."""
    bin_dir.mkdir(exist_ok=True)
    vault.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        f"""#!/bin/sh
echo "$1" >> {log}
case "$1" in
store) doc=$(cat); server=$(printf '%s' "$doc" | sed 's/.*"ServerURL": *"\\([^"]*\\)".*/\\1/')
       printf '%s' "$doc" > "{vault}/$server" ;;
get) read -r server; [ -f "{vault}/$server" ] && cat "{vault}/$server" && exit 0
     echo "credentials not found in native keychain"; exit 1 ;;
erase) read -r server; [ -f "{vault}/$server" ] && rm "{vault}/$server" && exit 0
       echo "credentials not found in native keychain"; exit 1 ;;
*) exit 3 ;;
esac
"""
    )
    script.chmod(0o755)


def test_login_and_logout_through_cred_helper(locked: tuple[RegistryServer, str], tmp_path: Path) -> None:
    server, config_digest = locked
    bin_dir, vault, log = tmp_path / "bin", tmp_path / "vault", tmp_path / "helper.log"
    storing_helper(bin_dir, "vault", vault, log)
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"credHelpers": {server.host: "vault"}}))
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "REGISTRY_AUTH_FILE": str(auth_file),
        "DOCKER_CONFIG": str(tmp_path / "no-docker"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HUTCH, "--root", str(tmp_path / "storage"), *args],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip

    got = run("login", "--tls-verify=false", "-u", USER, "-p", PASSWORD, server.host)
    assert got.returncode == 0 and got.stdout.strip() == "Login Succeeded!", got.stderr
    # The helper has the login; the file keeps no secret of it.
    stored = json.loads((vault / server.host).read_text())
    assert stored == {"ServerURL": server.host, "Username": USER, "Secret": PASSWORD}
    assert json.loads(auth_file.read_text()) == {"credHelpers": {server.host: "vault"}}
    pulled = run("pull", "-q", "--tls-verify=false", f"{server.host}/busybox:1")
    assert pulled.returncode == 0 and pulled.stdout.strip() == config_digest[7:], pulled.stderr

    out = run("logout", server.host)
    assert out.returncode == 0 and out.stdout.strip() == f"Removed login credentials for {server.host}"
    assert not (vault / server.host).exists() and log.read_text().split()[-1] == "erase"
    again = run("logout", server.host)
    assert again.returncode == EXIT_ENGINE and f"not logged into {server.host}" in again.stderr

    # logout --all erases what the file's helpers hold.
    assert run("login", "--tls-verify=false", "-u", USER, "-p", PASSWORD, server.host).returncode == 0
    assert (vault / server.host).exists()
    assert run("logout", "--all").returncode == 0
    assert not (vault / server.host).exists() and not auth_file.exists()
