"""--creds and --authfile on pull, push, run and create, as podman has them, against a docker-registry with
htpasswd auth over TLS. The auth files of the environment are empty, so only the flags can authenticate."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.integration.registry_fixtures import RegistryServer, skopeo
from tests.integration.test_image_cli import EXIT_ENGINE, HUTCH
from tests.integration.test_image_credhelpers import PASSWORD, USER, locked

__all__ = ["locked"]  # the module-scoped registry fixture, shared with the credential helper tests


def hutch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REGISTRY_AUTH_FILE": str(tmp_path / "env-auth.json"),  # never written: no credentials there
        "DOCKER_CONFIG": str(tmp_path / "no-docker"),
    }
    return subprocess.run(
        [*HUTCH, "--root", str(tmp_path / "storage"), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def auth_file(path: Path, host: str, user: str, password: str) -> Path:
    import base64

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return path


def test_pull_with_creds(locked: tuple[RegistryServer, str], tmp_path: Path) -> None:
    server, config_digest = locked
    name = f"{server.host}/busybox:1"
    refused = hutch(tmp_path, "pull", "-q", "--tls-verify=false", name)
    assert refused.returncode == EXIT_ENGINE and "401 Unauthorized" in refused.stderr
    wrong = hutch(tmp_path, "pull", "-q", "--tls-verify=false", "--creds", f"{USER}:wrong", name)
    assert wrong.returncode == EXIT_ENGINE and "401 Unauthorized" in wrong.stderr
    got = hutch(tmp_path, "pull", "-q", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}", name)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == config_digest[7:]
    assert not (tmp_path / "env-auth.json").exists()  # --creds stores nothing


def test_pull_with_authfile(locked: tuple[RegistryServer, str], tmp_path: Path) -> None:
    server, config_digest = locked
    name = f"{server.host}/busybox:1"
    auth_file(tmp_path / "env-auth.json", server.host, USER, "wrong")  # what $REGISTRY_AUTH_FILE holds
    given = auth_file(tmp_path / "given.json", server.host, USER, PASSWORD)
    got = hutch(tmp_path, "pull", "-q", "--tls-verify=false", "--authfile", str(given), name)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == config_digest[7:]

    missing = hutch(
        tmp_path, "pull", "-q", "--tls-verify=false", "--authfile", str(tmp_path / "nope.json"), name
    )
    assert missing.returncode == EXIT_ENGINE
    assert missing.stderr.strip().splitlines() == [
        f"Error: --authfile {tmp_path / 'nope.json'}: credential file is not accessible: no such file"
    ]
    bad = hutch(tmp_path, "pull", "--creds", ":pw", name)
    assert bad.returncode == EXIT_ENGINE and "--creds" in bad.stderr and len(bad.stderr.splitlines()) == 1
    no_password = hutch(tmp_path, "pull", "--creds", USER, name)  # stdin is no terminal: no prompt
    assert no_password.returncode == EXIT_ENGINE and "a password is needed" in no_password.stderr


def test_run_and_push_with_creds(locked: tuple[RegistryServer, str], tmp_path: Path) -> None:
    server, _ = locked
    creds = f"{USER}:{PASSWORD}"
    name = f"{server.host}/busybox:1"
    ran = hutch(
        tmp_path, "run", "--rm", "-q", "--network", "none", "--tls-verify=false", "--creds", creds, name,
        "/bin/sh", "-c", "echo pulled and ran",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "pulled and ran\n"

    copy = f"{server.host}/copied:1"
    refused = hutch(tmp_path, "push", "-q", "--tls-verify=false", name, copy)
    assert refused.returncode == EXIT_ENGINE and "401 Unauthorized" in refused.stderr
    pushed = hutch(tmp_path, "push", "-q", "--tls-verify=false", "--creds", creds, name, copy)
    assert pushed.returncode == 0, pushed.stderr
    raw = skopeo("inspect", "--tls-verify=false", f"--creds={creds}", f"docker://{copy}")
    assert json.loads(raw)["Name"] == f"{server.host}/copied"
