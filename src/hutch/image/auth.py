"""Registry credentials and auth challenges, without any HTTP: the registry client does the requests.

Credentials are read as podman and docker keep them: the containers auth.json (`$REGISTRY_AUTH_FILE`, else
`$XDG_RUNTIME_DIR/containers/auth.json`, else `~/.config/containers/auth.json`) first, then docker's
`~/.docker/config.json` (`$DOCKER_CONFIG/config.json`). Each has `{"auths": {KEY: {"auth": base64(user:pass)}}}`
where KEY is a registry (`quay.io`), a registry with a namespace or repository (`quay.io/org`), or docker's old URL
form (`https://index.docker.io/v1/`); the most specific key wins. `save` and `remove` write the containers
auth.json atomically, for `hutch login` and `logout`; a registry the file gives a `credHelpers` helper has its
login stored and erased by that helper instead, as containers/image does. When reading, a file's credential
helpers come first, as docker runs them: `credHelpers` for the registry, else `credsStore`
(hutch.image.credhelpers); a helper without credentials for the registry leaves the file's `auths` to answer.

`parse_challenges` reads a WWW-Authenticate header (RFC 7235) into schemes and parameters (realm, service,
scope for a Bearer challenge).
"""

from __future__ import annotations

import base64
import os

from hutch import jsonfast
from hutch.errors import ConfigError
from hutch.image.ingest import replace_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field
if TYPE_CHECKING:
    from typing import Any

_DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io")


class Credentials:
    """A username and password, or an identity token (an OAuth2 refresh token) for Bearer auth.

    A plain class, not a record: its repr must never show the secret.
    """

    __slots__ = ("username", "password", "identity_token")

    def __init__(self, username: str = "", password: str = "", identity_token: str = "") -> None:
        self.username = username
        self.password = password
        self.identity_token = identity_token

    def basic(self) -> str:
        """The value of an `Authorization: Basic` header."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def __eq__(self, other: object) -> bool:
        if type(other) is not Credentials:
            return NotImplemented
        return (self.username, self.password, self.identity_token) == (
            other.username,
            other.password,
            other.identity_token,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***, identity_token=***)"


@dataclass(slots=True)
class Challenge:
    """One challenge of a WWW-Authenticate header: `scheme` in lower case, parameter names in lower case."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def auth_file() -> str:
    """The containers auth.json that `hutch login` writes."""
    explicit = os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return explicit
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return os.path.join(runtime_dir, "containers", "auth.json")
    if os.geteuid() == 0:
        return "/run/containers/0/auth.json"
    return os.path.expanduser("~/.config/containers/auth.json")


def auth_files(explicit: str | None = None) -> list[str]:
    """Every file credentials are looked up in, first match wins; `explicit` (--authfile) stands where
    $REGISTRY_AUTH_FILE would."""
    paths = [explicit or auth_file()]
    if not (explicit or os.environ.get("REGISTRY_AUTH_FILE")):
        config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        paths.append(os.path.join(config_home, "containers", "auth.json"))
    docker_dir = os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
    paths.append(os.path.join(docker_dir, "config.json"))
    out: list[str] = []
    for p in paths:
        if p not in out:
            out.append(p)
    return out


class Login:
    """What a pull or push authenticates with: `credentials` given on the command line (--creds) for every
    registry it contacts, else the auth files, with `auth_file` (--authfile) in place of $REGISTRY_AUTH_FILE."""

    __slots__ = ("credentials", "auth_file")

    def __init__(self, credentials: Credentials | None = None, auth_file: str | None = None) -> None:
        self.credentials = credentials
        self.auth_file = auth_file


def _normalize_key(key: str) -> str:
    """`https://index.docker.io/v1/` -> `docker.io`; `http://host:5000/` -> `host:5000`; keeps a repository."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
            host = key.split("/", 1)[0]  # docker's URL keys name a registry, not a repository
            key = host
    key = key.rstrip("/")
    host, sep, rest = key.partition("/")
    if host in _DOCKER_HUB_KEYS:
        host = "docker.io"
    return host + sep + rest


def _read(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    if not data.strip():
        return {}
    try:
        doc = jsonfast.loads(data.decode())
    except (jsonfast.DecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return doc


def _entry(path: str, key: str, entry: object) -> Credentials | None:
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: auths.{key}: expected an object")
    token = entry.get("identitytoken") or ""
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(f"{path}: auths.{key}.auth: not base64 of user:password") from None
        if not sep:
            raise ConfigError(f"{path}: auths.{key}.auth: not base64 of user:password")
        return Credentials(user, password, token if isinstance(token, str) else "")
    name, secret = entry.get("username"), entry.get("password")
    if isinstance(name, str) and isinstance(secret, str) and name:
        return Credentials(name, secret, token if isinstance(token, str) else "")
    if isinstance(token, str) and token:
        return Credentials("", "", token)
    return None


def lookup(registry: str, repository: str = "", files: list[str] | None = None) -> Credentials | None:
    """Credentials for `registry` (host[:port]) and `repository`, or None for anonymous access."""
    registry = _normalize_key(registry)
    wanted = [registry]
    parts = repository.split("/") if repository else []
    for n in range(len(parts), 0, -1):
        wanted.insert(len(wanted) - 1, f"{registry}/{'/'.join(parts[:n])}")
    for path in auth_files() if files is None else files:
        doc = _read(path)
        helped = _from_helper(path, doc or {}, registry)
        if helped is not None:
            return helped
        auths = (doc or {}).get("auths")
        if not isinstance(auths, dict):
            continue
        keyed = {_normalize_key(k): (k, v) for k, v in auths.items()}
        for key in wanted:
            if key in keyed:
                found = _entry(path, keyed[key][0], keyed[key][1])
                if found is not None:
                    return found
    return None


def _from_helper(path: str, doc: dict[str, Any], registry: str) -> Credentials | None:
    """Credentials from the helper `doc` names for `registry` (host only), or None."""
    helpers = doc.get("credHelpers")
    if helpers is not None and not isinstance(helpers, dict):
        raise ConfigError(f"{path}: credHelpers: expected an object")
    host = registry.split("/", 1)[0]
    helper = next((v for k, v in (helpers or {}).items() if _normalize_key(k) == host), None)
    if helper is None:
        helper = doc.get("credsStore")
    if helper is None or helper == "":
        return None
    if not isinstance(helper, str):
        raise ConfigError(f"{path}: credential helper for {host}: expected a name")
    from hutch.image import credhelpers

    return credhelpers.get(helper, host, path)


def _write(path: str, doc: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    data = (jsonfast.dumps(doc, indent=1) + "\n").encode()
    replace_file(path, lambda f: f.write(data), mode=0o600)


def _helper_for(path: str, doc: dict[str, Any], key: str) -> str | None:
    """The helper the file's `credHelpers` names for exactly `key` (a registry; a namespaced key has none),
    as containers/image picks where `login` writes."""
    helpers = doc.get("credHelpers")
    if helpers is None:
        return None
    if not isinstance(helpers, dict):
        raise ConfigError(f"{path}: credHelpers: expected an object")
    helper = next((v for k, v in helpers.items() if _normalize_key(k) == key), None)
    if helper is not None and (not isinstance(helper, str) or not helper):
        raise ConfigError(f"{path}: credHelpers.{key}: expected a helper name")
    return helper


def save(registry: str, creds: Credentials, path: str | None = None) -> str:
    """Store credentials for `registry` (or `registry/namespace`): through the credential helper the
    containers auth.json names for it in `credHelpers`, else in the file's `auths`. Returns where they went
    (the file's path, or `credential helper: NAME`)."""
    path = auth_file() if path is None else path
    doc = _read(path) or {}
    key = _normalize_key(registry)
    helper = _helper_for(path, doc, key)
    if helper is not None:
        from hutch.image import credhelpers

        credhelpers.store(helper, key, creds, path)
        return f"credential helper: {helper}"
    auths = doc.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise ConfigError(f"{path}: auths: expected an object")
    entry: dict[str, str] = {"auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()}
    if creds.identity_token:
        entry["identitytoken"] = creds.identity_token
    auths[key] = entry
    _write(path, doc)
    return path


def remove(registry: str, path: str | None = None) -> bool:
    """Forget the credentials for `registry`, in its `credHelpers` helper and in the file's `auths`; False
    when neither had any."""
    path = auth_file() if path is None else path
    doc = _read(path)
    if doc is None:
        return False
    key = _normalize_key(registry)
    helper = _helper_for(path, doc, key)
    erased = False
    if helper is not None:
        from hutch.image import credhelpers

        erased = credhelpers.erase(helper, key, path)
    auths = doc.get("auths")
    keys = [k for k in auths if _normalize_key(k) == key] if isinstance(auths, dict) else []
    for k in keys:
        del auths[k]  # type: ignore[union-attr]
    if keys:
        _write(path, doc)
    return erased or bool(keys)


def remove_all(path: str | None = None) -> None:
    """`logout --all`: erase what each `credHelpers` helper holds for its registry (one without any is
    fine), then the file. A helper that fails does not keep the file (and the secrets of its `auths`) or
    the other helpers' logins: its error is raised once the rest is done."""
    path = auth_file() if path is None else path
    doc = _read(path)
    if doc is None:
        return
    failed: Exception | None = None
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict):
        from hutch.image import credhelpers

        for key in helpers:
            try:
                helper = _helper_for(path, doc, _normalize_key(key))
                if helper is not None:
                    credhelpers.erase(helper, _normalize_key(key), path)
            except ConfigError as e:  # CredentialHelperError is one
                failed = failed or e
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    if failed is not None:
        raise failed


def parse_challenges(header: str) -> list[Challenge]:
    """`Bearer realm="https://auth/token",service="reg",scope="repository:a:pull", Basic realm="x"`."""
    out: list[Challenge] = []
    i, n = 0, len(header)
    current: Challenge | None = None
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        start = i
        while i < n and header[i] not in " \t,=":
            i += 1
        token = header[start:i]
        if not token:
            break
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and current is not None:
            i = j + 1
            while i < n and header[i] in " \t":
                i += 1
            if i < n and header[i] == '"':
                i += 1
                chars: list[str] = []
                while i < n and header[i] != '"':
                    if header[i] == "\\" and i + 1 < n:
                        i += 1
                    chars.append(header[i])
                    i += 1
                i += 1
                value = "".join(chars)
            else:
                start = i
                while i < n and header[i] not in " \t,":
                    i += 1
                value = header[start:i]
            current.params[token.lower()] = value
        else:
            current = Challenge(token.lower())
            out.append(current)
    return out
