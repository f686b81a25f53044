"""Credential helpers, as docker and podman run them: `docker-credential-NAME get` on $PATH, the registry's
server URL on stdin, `{"ServerURL": ..., "Username": ..., "Secret": ...}` on stdout; `store` takes that JSON on
stdin (for `hutch login`), `erase` the server URL (for `logout`).

An auth file names them with `credHelpers` (`{"registry.example": "NAME"}`, for one registry) or `credsStore`
(`"NAME"`, for every registry). A helper that does not know the registry says so on its output and exits
non-zero (docker's "credentials not found in native keychain"): that is no credentials, not an error. Username
`<token>` means the secret is an identity token (docker's convention).
"""

from __future__ import annotations

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.image.auth import Credentials

PREFIX = "docker-credential-"
TIMEOUT = 30.0
_NOT_FOUND = "credentials not found"
TOKEN_USER = "<token>"


class CredentialHelperError(ConfigError):
    """A credential helper is missing, failed, or answered something that is not its JSON."""


def server_url(registry: str) -> str:
    """What docker hands a helper for `registry` (Docker Hub has its old URL)."""
    if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return "https://index.docker.io/v1/"
    return registry


def _run(helper: str, verb: str, data: bytes, registry: str, source: str) -> str | None:
    """`docker-credential-HELPER VERB` with `data` on stdin: its output, or None when the helper says it has
    no credentials for `registry`. `source` (the auth file that names the helper) goes into errors."""
    import shutil
    import subprocess

    program = PREFIX + helper
    path = shutil.which(program)
    if path is None:
        raise CredentialHelperError(f"{source}: credential helper {program} is not in $PATH")
    try:
        proc = subprocess.run([path, verb], input=data, capture_output=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CredentialHelperError(f"{source}: credential helper {program}: {e}") from None
    out = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        if _NOT_FOUND in out.lower() or _NOT_FOUND in err.lower():
            return None
        why = out or err or f"exit status {proc.returncode}"
        raise CredentialHelperError(
            f"{source}: credential helper {program} {verb} {registry}: {why.splitlines()[0]}"
        )
    return out


def get(helper: str, registry: str, source: str) -> Credentials | None:
    """Credentials for `registry` from `docker-credential-HELPER get`, or None if it has none."""
    import json

    from hutch.image.auth import Credentials

    out = _run(helper, "get", server_url(registry).encode(), registry, source)
    if out is None:
        return None
    program = PREFIX + helper
    try:
        doc = json.loads(out)
    except ValueError:
        raise CredentialHelperError(
            f"{source}: credential helper {program} answered no JSON for {registry}"
        ) from None
    user, secret = (doc.get("Username"), doc.get("Secret")) if isinstance(doc, dict) else (None, None)
    if not isinstance(user, str) or not isinstance(secret, str):
        raise CredentialHelperError(
            f"{source}: credential helper {program}: no Username and Secret for {registry}"
        )
    if not user and not secret:
        return None
    if user == TOKEN_USER:
        return Credentials("", "", secret)
    return Credentials(user, secret)


def store(helper: str, registry: str, creds: Credentials, source: str) -> None:
    """Hand `creds` for `registry` to `docker-credential-HELPER store` (an identity token as `<token>`)."""
    import json

    user, secret = (
        (TOKEN_USER, creds.identity_token) if creds.identity_token else (creds.username, creds.password)
    )
    doc = {"ServerURL": server_url(registry), "Username": user, "Secret": secret}
    if _run(helper, "store", json.dumps(doc).encode(), registry, source) is None:
        raise CredentialHelperError(f"{source}: credential helper {PREFIX + helper} did not store {registry}")


def erase(helper: str, registry: str, source: str) -> bool:
    """`docker-credential-HELPER erase` for `registry`; False when the helper had no credentials for it."""
    return _run(helper, "erase", server_url(registry).encode(), registry, source) is not None
