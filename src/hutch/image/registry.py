"""A client of the OCI distribution spec (and Docker's registry API v2): auth, requests, reading manifests and blobs.

`Registry(host)` talks to one registry (`docker.io` means registry-1.docker.io). Reads:
`get_manifest(repo, ref)` (the Accept list names OCI and Docker manifests and indexes), `resolve(repo, ref,
platform)` (an index becomes the platform's manifest), `head_blob`, `iter_blob` (a generator of verified
chunks: digest and size are checked while the bytes stream, a connection that drops is resumed with `Range`
where the registry honours it, and skipped forward where it does not), `fetch_blob` (into an open file, truncated
back on any error) and `download_blob` (to a path, renamed into place only once verified). Writing (blob
uploads, manifest PUT) is hutch.image.upload's, over this client's `request`.

Auth follows the registry's WWW-Authenticate challenge: Basic, or a Bearer token from the realm for the
request's scope (`repository:NAME:pull[,push]`), fetched anonymously or with the credentials of
hutch.image.auth. TLS is verified by default, against the system CAs plus /etc/containers/certs.d/HOST[:PORT]/
(`*.crt` CAs, `*.cert`/`*.key` client pairs); `tls_verify=False` skips verification, and then a registry
that does not speak TLS is spoken to in plain HTTP. `plain_http=True` uses HTTP from the start.

Requests are retried with exponential backoff on 5xx, 429 and dropped connections; redirects are followed for
GET and HEAD, without the Authorization header when they leave the registry's host.

HTTP is urllib3's: this module is imported only by the commands that talk to registries, never on the
runtime's hot path.
"""

from __future__ import annotations

import os
import ssl
import threading
import time
import urllib.parse

import urllib3

from hutch import jsonfast
from hutch.errors import HutchError, NotFoundError
from hutch.image import auth as _auth
from hutch.image.ingest import replace_file
from hutch.oci import image as _image
from hutch.oci import manifest as _manifest
from hutch.oci import platforms as _platforms
from hutch.oci.digest import Digest, MismatchError, of_bytes
from hutch.oci.digest import parse as parse_digest
from hutch.oci.verifier import Verifier

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    from hutch.record import dataclass
if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from typing import Any, BinaryIO

    from urllib3.response import BaseHTTPResponse

DEFAULT_CERTS_DIR = "/etc/containers/certs.d"
DOCKER_HUB_API = "registry-1.docker.io"
MANIFEST_LIMIT = 4 << 20  # the distribution spec lets registries refuse bigger manifests; so does hutch
CHUNK = 1 << 20
USER_AGENT = "hutch"

_REDIRECTS = (301, 302, 303, 307, 308)
_ACCEPT = ", ".join(_image.MANIFEST_ACCEPT)


class RegistryError(HutchError):
    """A registry refused a request or could not be reached; the message names the registry and the request.

    `status` is the HTTP status (0 when there was no response) and `code` the first distribution error code.
    """

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RegistryAuthError(RegistryError):
    """The registry wants credentials hutch does not have, or refused the ones it has (401, 403)."""


class RegistryNotFoundError(RegistryError, NotFoundError):
    """The manifest, blob or repository does not exist (404)."""


@dataclass(slots=True)
class ManifestResponse:
    """A manifest or index as the registry sent it: raw bytes, media type and verified digest."""

    data: bytes
    media_type: str
    digest: Digest


@dataclass(slots=True)
class Resolved:
    """A reference resolved to an image manifest; `index` is set when the reference named an index."""

    manifest: _manifest.Manifest
    data: bytes
    digest: Digest
    media_type: str
    index: _manifest.Index | None = None
    index_digest: Digest | None = None


class _Dropped(Exception):
    """The body ended before its Content-Length."""


def scope(repo: str, actions: str = "pull") -> str:
    """The token scope for `actions` (`pull`, `pull,push`) on repository `repo`."""
    return f"repository:{repo}:{actions}"


class Registry:
    """A client of one registry. Thread-safe: layers may be fetched in parallel from one instance."""

    def __init__(
        self,
        host: str,
        *,
        credentials: _auth.Credentials | None = None,
        use_auth_files: bool = True,
        auth_file: str | None = None,
        tls_verify: bool = True,
        plain_http: bool = False,
        certs_dir: str = DEFAULT_CERTS_DIR,
        retries: int = 4,
        backoff: float = 0.25,
        timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.api_host = DOCKER_HUB_API if host in ("docker.io", "index.docker.io") else host
        self.credentials = credentials
        self.use_auth_files = use_auth_files
        self.auth_file = auth_file
        self.tls_verify = tls_verify
        self.scheme = "http" if plain_http else "https"
        self.retries = retries
        self.backoff = backoff
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, ...], str] = {}
        self._bearer: dict[str, str] | None = None  # realm and service of the registry's Bearer challenge
        self._basic = False
        self._creds_cache: dict[str, _auth.Credentials | None] = {}
        timeouts = urllib3.Timeout(connect=min(timeout, 30.0), read=timeout)
        if tls_verify:
            self._pool = urllib3.PoolManager(
                ssl_context=self._ssl_context(certs_dir), timeout=timeouts, retries=False, maxsize=8
            )
        else:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            # A context of our own: into its default one urllib3 loads the system's CA certificates (~35 ms,
            # on every pull with --tls-verify=false, whose first try is HTTPS), to verify nothing with them.
            insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            insecure.check_hostname = False
            insecure.verify_mode = ssl.CERT_NONE
            self._pool = urllib3.PoolManager(
                ssl_context=insecure,
                cert_reqs="CERT_NONE",
                assert_hostname=False,
                timeout=timeouts,
                retries=False,
                maxsize=8,
            )

    def _ssl_context(self, certs_dir: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        directory = os.path.join(certs_dir, self.host)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return ctx
        for name in names:
            path = os.path.join(directory, name)
            try:
                if name.endswith(".crt"):
                    ctx.load_verify_locations(cafile=path)
                elif name.endswith(".cert"):
                    ctx.load_cert_chain(path, os.path.join(directory, name[: -len(".cert")] + ".key"))
            except (OSError, ssl.SSLError) as e:
                raise RegistryError(f"{path}: cannot load certificate: {e}") from None
        return ctx

    def close(self) -> None:
        self._pool.clear()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- requests -------------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.api_host}{path}"

    def _creds(self, repo: str) -> _auth.Credentials | None:
        if self.credentials is not None or not self.use_auth_files:
            return self.credentials
        with self._lock:
            if repo not in self._creds_cache:
                self._creds_cache[repo] = _auth.lookup(self.host, repo, _auth.auth_files(self.auth_file))
            return self._creds_cache[repo]

    def _authorization(self, scopes: tuple[str, ...], repo: str) -> str | None:
        with self._lock:
            token = self._tokens.get(scopes)
            bearer = self._bearer
        if token is not None:
            return token
        if bearer is not None:
            return self._fetch_token(bearer, scopes, repo)
        creds = self._creds(repo)
        if self._basic and creds is not None:
            return creds.basic()
        return None

    def _fetch_token(self, challenge: dict[str, str], scopes: tuple[str, ...], repo: str) -> str:
        realm = challenge.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise RegistryAuthError(f"{self.host}: Bearer challenge has no usable realm ({realm!r})")
        creds = self._creds(repo)
        fields: list[tuple[str, str]] = []
        if challenge.get("service"):
            fields.append(("service", challenge["service"]))
        fields += [("scope", s) for s in scopes if s]
        headers = {"User-Agent": USER_AGENT}
        if creds is not None and creds.identity_token:
            body = urllib.parse.urlencode(
                [*fields, ("grant_type", "refresh_token"), ("refresh_token", creds.identity_token)]
                + [("client_id", USER_AGENT)]
            )
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            method, url, data = "POST", realm, body.encode()
        else:
            if creds is not None:
                headers["Authorization"] = creds.basic()
            sep = "&" if "?" in realm else "?"
            method, url, data = "GET", realm + sep + urllib.parse.urlencode(fields), None
        try:
            resp = self._pool.request(method, url, headers=headers, body=data, redirect=True, retries=False)
        except urllib3.exceptions.HTTPError as e:
            raise RegistryAuthError(f"{self.host}: cannot get a token from {realm}: {e}") from None
        if resp.status in (401, 403):
            raise RegistryAuthError(
                f"{self.host}: authentication required: the token server {realm} refused "
                f"{'the credentials' if creds else 'anonymous access'} ({resp.status})",
                resp.status,
            )
        if resp.status != 200:
            raise RegistryAuthError(f"{self.host}: token server {realm} answered {resp.status}", resp.status)
        try:
            doc = jsonfast.loads(resp.data.decode())
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, UnicodeDecodeError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(f"{self.host}: token server {realm} sent no token")
        value = "Bearer " + token
        with self._lock:
            self._tokens[scopes] = value
        return value

    def _challenge(self, resp: BaseHTTPResponse, scopes: tuple[str, ...], repo: str) -> bool:
        """Take a 401's challenge; True when a retry with new credentials may succeed."""
        challenges = _auth.parse_challenges(resp.headers.get("WWW-Authenticate", ""))
        for c in challenges:
            if c.scheme == "bearer":
                with self._lock:
                    self._bearer = dict(c.params)
                    self._tokens.pop(scopes, None)
                self._fetch_token(c.params, scopes, repo)
                return True
        for c in challenges:
            if c.scheme == "basic" and self._creds(repo) is not None:
                was = self._basic
                self._basic = True
                return not was
        return False

    def _sleep(self, attempt: int, resp: BaseHTTPResponse | None = None) -> None:
        delay = self.backoff * (2**attempt)
        after = resp.headers.get("Retry-After") if resp is not None else None
        if after and after.isdigit():
            delay = max(delay, min(float(after), 30.0))
        time.sleep(delay)

    def request(
        self,
        method: str,
        path: str,
        *,
        repo: str = "",
        scopes: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
        body: bytes | Callable[[], Any] | None = None,
        stream: bool = False,
        ok: tuple[int, ...] = (200,),
        what: str = "",
    ) -> BaseHTTPResponse:
        """One request, with auth, retries and redirects; a status outside `ok` raises RegistryError.

        `path` is a path under the registry or an absolute URL (an upload location). `body` may be a callable
        that returns a fresh body for each attempt (a file to read from its start). With `stream`, the caller
        reads and releases the response.
        """
        url = path if "://" in path else self.url(path)
        what = what or f"{method} {url}"
        attempt = 0
        redirects = 0
        authed = False
        # A PATCH sends the next piece of an upload session: sent twice, the session is wrong, so it is not retried.
        replayable = method != "PATCH"
        while True:
            hdrs = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
            hdrs.update(headers or {})
            if urllib.parse.urlsplit(url).netloc == self.api_host:
                authorization = self._authorization(scopes, repo)
                if authorization:
                    hdrs["Authorization"] = authorization
            data = body() if callable(body) else body
            try:
                resp = self._pool.request(
                    method,
                    url,
                    headers=hdrs,
                    body=data,
                    preload_content=not stream,
                    decode_content=False,
                    redirect=False,
                    retries=False,
                )
            except urllib3.exceptions.SSLError as e:
                if not self.tls_verify and url.startswith("https://" + self.api_host):
                    # An insecure registry that does not speak TLS at all: fall back to plain HTTP. (Another
                    # thread may have switched the scheme while this request was in flight.)
                    self.scheme = "http"
                    url = "http://" + url[len("https://") :]
                    continue
                raise RegistryError(f"{self.host}: {what}: TLS error: {e}") from None
            except urllib3.exceptions.HTTPError as e:
                if attempt < self.retries and replayable:
                    self._sleep(attempt)
                    attempt += 1
                    continue
                raise RegistryError(f"{self.host}: {what}: {e}") from None
            status = resp.status
            if status == 401 and not authed:
                authed = True
                resp.drain_conn()
                if self._challenge(resp, scopes, repo):
                    continue
            if status in _REDIRECTS and method in ("GET", "HEAD") and resp.headers.get("Location"):
                resp.drain_conn()
                redirects += 1
                if redirects > 10:
                    raise RegistryError(f"{self.host}: {what}: too many redirects")
                url = urllib.parse.urljoin(url, resp.headers["Location"])
                continue
            if (status >= 500 or status == 429) and attempt < self.retries and replayable:
                resp.drain_conn()
                self._sleep(attempt, resp)
                attempt += 1
                continue
            if status not in ok:
                raise self._error(resp, what)
            return resp

    def _error(self, resp: BaseHTTPResponse, what: str) -> RegistryError:
        status = resp.status
        code, detail = "", ""
        try:
            data = resp.data[: 64 << 10]
            doc = jsonfast.loads(data.decode()) if data else None
            if isinstance(doc, dict) and isinstance(doc.get("errors"), list) and doc["errors"]:
                first = doc["errors"][0]
                code = str(first.get("code", ""))
                detail = str(first.get("message", ""))
        except (ValueError, UnicodeDecodeError, AttributeError, urllib3.exceptions.HTTPError):
            pass
        finally:
            resp.release_conn()
        message = f"{self.host}: {what}: {status} {resp.reason or ''}".rstrip()
        if code or detail:
            message += f" ({code}{': ' if code and detail else ''}{detail})"
        if status in (401, 403):
            return RegistryAuthError(message, status, code)
        if status == 404:
            return RegistryNotFoundError(message, status, code)
        return RegistryError(message, status, code)

    # --- reading --------------------------------------------------------------------------------------------

    def get_manifest(self, repo: str, reference: str) -> ManifestResponse:
        """The manifest or index `reference` (a tag or a digest) names, its digest checked."""
        where = f"{self.host}/{repo}{'@' if ':' in reference else ':'}{reference}"
        expected = parse_digest(reference, where) if ":" in reference else None
        resp = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            repo=repo,
            scopes=(scope(repo),),
            headers={"Accept": _ACCEPT},
            stream=True,
            what=f"manifest {where}",
        )
        try:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > MANIFEST_LIMIT:
                raise RegistryError(f"{where}: manifest is {length} bytes, more than hutch accepts")
            data = resp.read(MANIFEST_LIMIT + 1)
        except urllib3.exceptions.HTTPError as e:
            resp.close()
            raise RegistryError(f"{where}: reading the manifest: {e}") from None
        except BaseException:
            resp.close()
            raise
        if len(data) > MANIFEST_LIMIT:
            resp.close()
        else:
            resp.release_conn()
        if len(data) > MANIFEST_LIMIT:
            raise RegistryError(
                f"{where}: manifest is more than {MANIFEST_LIMIT} bytes, more than hutch accepts"
            )
        media_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        if expected is not None:
            actual = of_bytes(data, expected.algorithm)
            if actual != expected:
                raise MismatchError(f"{where}: digest mismatch: expected {expected}, got {actual}")
            return ManifestResponse(data, media_type, expected)
        actual = of_bytes(data)
        header = resp.headers.get("Docker-Content-Digest")
        if header:
            claimed = parse_digest(header, f"{where}: Docker-Content-Digest")
            if claimed.algorithm == "sha256" and claimed != actual:
                raise MismatchError(
                    f"{where}: digest mismatch: the registry says {claimed}, content is {actual}"
                )
        return ManifestResponse(data, media_type, actual)

    def head_manifest(self, repo: str, reference: str) -> Digest | None:
        """The digest of the manifest `reference` names (from Docker-Content-Digest), None if there is none."""
        resp = self.request(
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            repo=repo,
            scopes=(scope(repo),),
            headers={"Accept": _ACCEPT},
            ok=(200, 404),
        )
        if resp.status == 404:
            return None
        header = resp.headers.get("Docker-Content-Digest")
        return (
            parse_digest(header, f"{self.host}/{repo}:{reference}: Docker-Content-Digest") if header else None
        )

    def resolve(self, repo: str, reference: str, platform: _image.Platform | None = None) -> Resolved:
        """The image manifest of `reference`; an index is resolved to the manifest for `platform` (the host's)."""
        where = f"{self.host}/{repo}{'@' if ':' in reference else ':'}{reference}"
        got = self.get_manifest(repo, reference)
        doc = _manifest.parse_document(got.data, f"{where} (manifest)", got.media_type)
        if isinstance(doc, _manifest.Manifest):
            return Resolved(doc, got.data, got.digest, doc.media_type)
        chosen = _platforms.select_platform(doc, platform)
        sub = self.get_manifest(repo, str(chosen.digest))
        source = f"{self.host}/{repo}@{chosen.digest} (manifest)"
        if chosen.size and len(sub.data) != chosen.size:
            raise MismatchError(f"{source}: is {len(sub.data)} bytes, the index says {chosen.size}")
        manifest = _manifest.parse_manifest(sub.data, source, chosen.media_type or sub.media_type)
        return Resolved(manifest, sub.data, sub.digest, manifest.media_type, doc, got.digest)

    def head_blob(self, repo: str, digest: Digest) -> int | None:
        """The size of blob `digest` in `repo`, or None when the registry does not have it there."""
        resp = self.request(
            "HEAD", f"/v2/{repo}/blobs/{digest}", repo=repo, scopes=(scope(repo),), ok=(200, 404)
        )
        if resp.status == 404:
            return None
        length = resp.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else -1

    def iter_blob(
        self, repo: str, digest: Digest, size: int | None = None, chunk_size: int = CHUNK
    ) -> Generator[bytes, None, None]:
        """The blob's bytes in chunks, each passed through a digest.Verifier; MismatchError ends it.

        The last chunk is yielded only after the whole blob verified, so a consumer that stops at an error
        has never seen the blob end as if it were whole.
        """
        where = f"{self.host}/{repo}@{digest}"
        verifier = Verifier(digest, size, where)
        received = 0
        failures = 0
        held = b""
        while True:
            headers = {"Range": f"bytes={received}-"} if received else {}
            resp = self.request(
                "GET",
                f"/v2/{repo}/blobs/{digest}",
                repo=repo,
                scopes=(scope(repo),),
                headers=headers,
                stream=True,
                ok=(200, 206),
                what=f"blob {where}",
            )
            done = False
            try:
                skip = received if resp.status == 200 else 0
                if resp.status == 206 and not resp.headers.get("Content-Range", "").startswith(
                    f"bytes {received}-"
                ):
                    raise RegistryError(f"{where}: the registry sent the wrong range")
                length = resp.headers.get("Content-Length", "")
                if size is not None and length.isdigit() and int(length) + (received - skip) > size:
                    raise MismatchError(
                        f"{where}: the registry sends {length} bytes, the descriptor says {size}"
                    )
                for chunk in resp.stream(chunk_size, decode_content=False):
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk, skip = chunk[skip:], 0
                    verifier.update(chunk)
                    received += len(chunk)
                    if held:
                        yield held
                    held = chunk
                if skip or (size is not None and received < size):
                    raise _Dropped()
                done = True
                break
            except (urllib3.exceptions.HTTPError, _Dropped) as e:
                failures += 1
                if failures > self.retries:
                    reason = "the connection dropped" if isinstance(e, _Dropped) else str(e)
                    raise RegistryError(f"{where}: after {received} bytes: {reason}") from None
                self._sleep(failures - 1)
            finally:
                # A response not read to its end must not go back to the pool: its connection is closed.
                if done:
                    resp.release_conn()
                else:
                    resp.close()
        verifier.finish()
        if held:
            yield held

    def get_blob(self, repo: str, digest: Digest, size: int | None = None) -> bytes:
        """A small blob (an image config) in memory, verified."""
        return b"".join(self.iter_blob(repo, digest, size))

    def fetch_blob(self, repo: str, digest: Digest, size: int | None, out: BinaryIO) -> int:
        """Write the verified blob to `out` (a seekable file); on any error `out` is truncated back."""
        start = out.tell()
        written = 0
        try:
            for chunk in self.iter_blob(repo, digest, size):
                out.write(chunk)
                written += len(chunk)
        except BaseException:
            out.seek(start)
            out.truncate()
            raise
        return written

    def download_blob(self, repo: str, digest: Digest, size: int | None, path: str) -> None:
        """Write the verified blob to `path`, atomically: nothing is left at `path` (or beside it) on error."""
        replace_file(path, lambda f: self.fetch_blob(repo, digest, size, f))

    def list_tags(self, repo: str) -> list[str]:
        """The repository's tags (following `Link` pagination)."""
        tags: list[str] = []
        path: str | None = f"/v2/{repo}/tags/list"
        while path:
            resp = self.request(
                "GET", path, repo=repo, scopes=(scope(repo),), what=f"tags of {self.host}/{repo}"
            )
            try:
                doc = jsonfast.loads(resp.data.decode())
            except (ValueError, UnicodeDecodeError):
                raise RegistryError(f"{self.host}/{repo}: tag list is not JSON") from None
            tags += [t for t in (doc.get("tags") or []) if isinstance(t, str)]
            link = resp.headers.get("Link", "")
            path = link[link.find("<") + 1 : link.find(">")] if link.startswith("<") else None
            if path and "://" not in path:
                path = path if path.startswith("/") else "/" + path
        return tags

    def ping(self) -> None:
        """GET /v2/: checks that the registry is there and speaks the API (auth challenges are taken)."""
        self.request("GET", "/v2/", ok=(200,), what="ping")
