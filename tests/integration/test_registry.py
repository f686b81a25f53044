"""hutch.image.registry against Debian's docker-registry, seeded and checked with skopeo.

A busybox image built from /bin/busybox is pushed by skopeo and pulled by hutch, and the reverse; a proxy
between them tampers with blobs, drops connections and answers 503 to show what the client refuses and what
it survives; a second registry with TLS and htpasswd auth shows Basic auth, auth files and CA handling.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.integration import registry_fixtures
from tests.integration.registry_fixtures import (
    OCI_MANIFEST,
    BusyboxImage,
    Exchange,
    Hook,
    Proxy,
    RegistryServer,
    busybox_layer,
    image_config,
    image_manifest,
    make_htpasswd,
    make_tls,
    sha256,
    skopeo,
    start_registry,
    write_auth_file,
)

from hutch.image import auth, upload
from hutch.image.registry import Registry, RegistryAuthError, RegistryError, RegistryNotFoundError
from hutch.oci import image
from hutch.oci.digest import MismatchError, parse

# The shared fixtures, by name.
registry = registry_fixtures.registry
busybox = registry_fixtures.busybox


def client(host: str, **kw: object) -> Registry:
    return Registry(host, plain_http=True, use_auth_files=False, backoff=0.01, **kw)  # type: ignore[arg-type]


def d(text: str) -> image.Digest:
    return parse(text, "test")


ProxyFactory = Callable[..., Proxy]


@pytest.fixture
def proxy_factory(registry: RegistryServer) -> Iterator[ProxyFactory]:
    """proxy_factory(hook=...) -> a Proxy in front of the plain registry, stopped after the test."""
    started: list[Proxy] = []

    def start(hook: Hook | None = None) -> Proxy:
        started.append(Proxy(registry.host, hook))
        return started[-1]

    yield start
    for p in started:
        p.stop()


# --- pull -------------------------------------------------------------------------------------------------


def test_pull_manifest_config_and_layer_pushed_by_skopeo(
    busybox: BusyboxImage, registry: RegistryServer, tmp_path: Path
) -> None:
    with client(registry.host) as reg:
        got = reg.resolve("busybox", "1")
        assert got.index is None
        assert got.media_type == image.OCI_MANIFEST
        assert str(got.digest) == sha256(got.data)
        assert [str(layer.digest) for layer in got.manifest.layers] == [busybox.layer_digest]
        assert str(got.manifest.config.digest) == busybox.config_digest
        cfg_bytes = reg.get_blob("busybox", got.manifest.config.digest, got.manifest.config.size)
        cfg = image.parse_config(cfg_bytes, "busybox config")
        assert [str(x) for x in cfg.diff_ids] == [busybox.diff_id]
        assert cfg.config.cmd == ["/bin/sh"]
        layer = got.manifest.layers[0]
        assert reg.head_blob("busybox", layer.digest) == layer.size
        target = tmp_path / "layer"
        reg.download_blob("busybox", layer.digest, layer.size, str(target))
    data = target.read_bytes()
    assert sha256(data) == busybox.layer_digest
    assert sha256(gzip.decompress(data)) == busybox.diff_id
    assert os.listdir(tmp_path) == ["layer"]


def test_pull_by_digest_and_head(busybox: BusyboxImage, registry: RegistryServer) -> None:
    with client(registry.host) as reg:
        digest = reg.head_manifest("busybox", "1")
        assert digest is not None
        assert str(digest) == busybox.manifest_digest
        by_digest = reg.get_manifest("busybox", str(digest))
        assert by_digest.digest == digest and sha256(by_digest.data) == str(digest)
        assert reg.head_manifest("busybox", "nosuchtag") is None
        assert "1" in reg.list_tags("busybox")


def test_missing_manifest_and_blob_are_not_found(busybox: BusyboxImage, registry: RegistryServer) -> None:
    with client(registry.host) as reg:
        with pytest.raises(RegistryNotFoundError, match=r"busybox:nope.*404.*MANIFEST_UNKNOWN"):
            reg.get_manifest("busybox", "nope")
        missing = d(sha256(b"missing"))
        assert reg.head_blob("busybox", missing) is None
        with pytest.raises(RegistryNotFoundError, match="404"):
            reg.get_blob("busybox", missing)


def test_index_resolves_to_the_platform_manifest(busybox: BusyboxImage, registry: RegistryServer) -> None:
    tar_bytes, layer = busybox_layer()
    arm_config = image_config([sha256(tar_bytes)], arch="arm64")
    arm_manifest = image_manifest(arm_config, [layer])
    with client(registry.host) as reg:
        upload.push_blob(reg, "multi", d(sha256(layer)), len(layer), layer, mount_from="busybox")
        upload.push_blob(reg, "multi", d(busybox.config_digest), len(busybox.config), busybox.config)
        upload.push_blob(reg, "multi", d(sha256(arm_config)), len(arm_config), arm_config)
        upload.put_manifest(reg, "multi", busybox.manifest_digest, busybox.manifest, OCI_MANIFEST)
        upload.put_manifest(reg, "multi", sha256(arm_manifest), arm_manifest, OCI_MANIFEST)
        index = {
            "schemaVersion": 2,
            "mediaType": image.OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": busybox.manifest_digest, "size": len(busybox.manifest),
                 "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": OCI_MANIFEST, "digest": sha256(arm_manifest), "size": len(arm_manifest),
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            ],
        }  # fmt: skip
        index_bytes = json.dumps(index).encode()
        upload.put_manifest(reg, "multi", "latest", index_bytes, image.OCI_INDEX)
        arm = reg.resolve("multi", "latest", image.Platform("linux", "arm64"))
        assert arm.index is not None and str(arm.index_digest) == sha256(index_bytes)
        assert str(arm.digest) == sha256(arm_manifest)
        amd = reg.resolve("multi", "latest", image.Platform("linux", "amd64"))
        assert str(amd.digest) == busybox.manifest_digest
        with pytest.raises(image.NotFoundError, match="linux/s390x"):
            reg.resolve("multi", "latest", image.Platform("linux", "s390x"))
    # skopeo reads the index hutch pushed, and picks the same manifest for arm64.
    raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{registry.host}/multi:latest")
    assert json.loads(raw) == index
    arch = skopeo("inspect", "--tls-verify=false", "--override-arch=arm64", "--format={{.Architecture}}",
                  f"docker://{registry.host}/multi:latest")  # fmt: skip
    assert arch.strip() == "arm64"


# --- push -------------------------------------------------------------------------------------------------


def test_push_chunked_and_monolithic_then_skopeo_copies_it_back(
    registry: RegistryServer, tmp_path: Path
) -> None:
    tar_bytes, layer = busybox_layer()
    config = image_config([sha256(tar_bytes)], Labels={"pushed-by": "hutch"})
    manifest = image_manifest(config, [layer], {"org.example.test": "push"})
    layer_file = tmp_path / "layer.tar.gz"
    layer_file.write_bytes(layer)
    with client(registry.host) as reg:
        assert (
            upload.push_blob(reg, "pushed", d(sha256(layer)), len(layer), str(layer_file), chunk_size=300_000)
            == "uploaded"
        )
        assert upload.push_blob(reg, "pushed", d(sha256(config)), len(config), config) == "uploaded"
        assert str(upload.put_manifest(reg, "pushed", "v1", manifest, OCI_MANIFEST)) == sha256(manifest)
    raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{registry.host}/pushed:v1")
    assert raw.encode() == manifest
    out = tmp_path / "copy"
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/pushed:v1", f"oci:{out}:v1")
    blobs = out / "blobs" / "sha256"
    for blob in (layer, config):
        assert (blobs / hashlib.sha256(blob).hexdigest()).read_bytes() == blob
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/pushed:v1"))
    assert inspected["Labels"] == {"pushed-by": "hutch"}


def test_push_monolithic_from_file(registry: RegistryServer, tmp_path: Path) -> None:
    blob = os.urandom(200_000)
    path = tmp_path / "blob"
    path.write_bytes(blob)
    with client(registry.host) as reg:
        assert upload.push_blob(reg, "files", d(sha256(blob)), len(blob), str(path)) == "uploaded"
        assert reg.get_blob("files", d(sha256(blob)), len(blob)) == blob


def test_push_skips_existing_and_mounts_across_repositories(
    busybox: BusyboxImage, registry: RegistryServer
) -> None:
    layer = d(busybox.layer_digest)
    with client(registry.host) as reg:
        assert upload.push_blob(reg, "busybox", layer, len(busybox.layer), busybox.layer) == "exists"
        assert reg.head_blob("mounted", layer) is None
        assert (
            upload.push_blob(reg, "mounted", layer, len(busybox.layer), busybox.layer, mount_from="busybox")
            == "mounted"
        )
        assert reg.head_blob("mounted", layer) == len(busybox.layer)
        assert (
            upload.push_blob(reg, "mounted", layer, len(busybox.layer), busybox.layer, mount_from="busybox")
            == "exists"
        )


def test_push_with_wrong_digest_is_refused_by_the_registry(registry: RegistryServer) -> None:
    with client(registry.host) as reg, pytest.raises(RegistryError, match="DIGEST_INVALID|400"):
        upload.push_blob(reg, "bad", d(sha256(b"right")), 5, b"wrong")


# --- what the client refuses and survives -----------------------------------------------------------------


def _flip_blob(digest: str) -> Hook:
    def hook(ex: Exchange) -> bool:
        if ex.status and ex.method == "GET" and ex.path.endswith(f"/blobs/{digest}") and ex.body:
            ex.body = bytes([ex.body[0] ^ 0xFF]) + ex.body[1:]
        return False

    return hook


def test_tampered_blob_is_refused_and_nothing_is_kept(
    busybox: BusyboxImage, proxy_factory: ProxyFactory, tmp_path: Path
) -> None:
    proxy = proxy_factory(hook=_flip_blob(busybox.layer_digest))
    layer = d(busybox.layer_digest)
    target = tmp_path / "layer"
    with client(proxy.host) as reg:
        with pytest.raises(MismatchError, match=f"busybox@{busybox.layer_digest}: digest mismatch"):
            reg.download_blob("busybox", layer, len(busybox.layer), str(target))
        assert os.listdir(tmp_path) == []
        out = io.BytesIO(b"kept")
        out.seek(4)
        with pytest.raises(MismatchError):
            reg.fetch_blob("busybox", layer, len(busybox.layer), out)
        assert out.getvalue() == b"kept"
        seen: list[bytes] = []
        with pytest.raises(MismatchError):
            seen.extend(reg.iter_blob("busybox", layer, len(busybox.layer)))
        assert sum(map(len, seen)) < len(busybox.layer)  # the end of a bad blob is never handed out


def test_blob_longer_than_its_descriptor_is_refused(busybox: BusyboxImage, registry: RegistryServer) -> None:
    with client(registry.host) as reg, pytest.raises(MismatchError, match="descriptor says 10"):
        reg.get_blob("busybox", d(busybox.layer_digest), 10)


def test_tampered_manifest_is_refused(
    busybox: BusyboxImage, proxy_factory: ProxyFactory, registry: RegistryServer
) -> None:
    digest = client(registry.host).head_manifest("busybox", "1")

    def hook(ex: Exchange) -> bool:
        if ex.status and "/manifests/" in ex.path and ex.method == "GET":
            ex.body += b"\n"  # still valid JSON, another digest
        return False

    proxy = proxy_factory(hook=hook)
    with client(proxy.host) as reg:
        with pytest.raises(MismatchError, match="digest mismatch"):
            reg.get_manifest("busybox", str(digest))
        with pytest.raises(MismatchError, match="digest mismatch"):
            reg.get_manifest("busybox", "1")  # against the registry's Docker-Content-Digest


def test_dropped_connection_resumes_with_range(
    busybox: BusyboxImage, proxy_factory: ProxyFactory, tmp_path: Path
) -> None:
    half = len(busybox.layer) // 2
    drops = [half]

    def hook(ex: Exchange) -> bool:
        if ex.status and ex.method == "GET" and "/blobs/" in ex.path and drops:
            ex.truncate_to = drops.pop()
        return False

    proxy = proxy_factory(hook=hook)
    target = tmp_path / "layer"
    with client(proxy.host) as reg:
        reg.download_blob("busybox", d(busybox.layer_digest), len(busybox.layer), str(target))
    assert sha256(target.read_bytes()) == busybox.layer_digest
    ranges = [h.get("Range") for m, p, h in proxy.requests if m == "GET" and "/blobs/" in p]
    assert len(ranges) == 2 and ranges[0] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=") and int(ranges[1][6:-1]) > 0


def test_server_errors_are_retried(busybox: BusyboxImage, proxy_factory: ProxyFactory) -> None:
    failures = [503, 502]

    def hook(ex: Exchange) -> bool:
        if not ex.status and "/manifests/" in ex.path and failures:
            ex.status = failures.pop()
            ex.body = b"busy"
            return True
        return False

    proxy = proxy_factory(hook=hook)
    with client(proxy.host) as reg:
        assert str(reg.resolve("busybox", "1").digest) == busybox.manifest_digest
    assert sum(1 for m, p, _ in proxy.requests if "/manifests/" in p) == 3

    def always_500(ex: Exchange) -> bool:
        if not ex.status:
            ex.status = 500
            return True
        return False

    always = proxy_factory(hook=always_500)
    with client(always.host, retries=2) as reg, pytest.raises(RegistryError, match="500"):
        reg.get_manifest("busybox", "1")
    assert len(always.requests) == 3


def test_bearer_token_from_the_challenge_and_redirect_drops_authorization(
    busybox: BusyboxImage, proxy_factory: ProxyFactory, tmp_path: Path
) -> None:
    token_requests: list[dict[str, list[str]]] = []
    redirected: list[dict[str, str]] = []
    holder: list[Proxy] = []

    def hook(ex: Exchange) -> bool:
        if ex.status:
            return False
        url = urllib.parse.urlsplit(ex.path)
        if url.path == "/token":
            query = urllib.parse.parse_qs(url.query)
            token_requests.append(query)
            ok = ex.headers.get("Authorization") == auth.Credentials("alice", "s3cret").basic()
            ex.status = 200 if ok else 401
            ex.body = json.dumps({"token": "T-" + ",".join(query.get("scope", []))}).encode() if ok else b""
            return True
        if "redirected=1" in url.query:
            redirected.append(ex.headers)
            ex.path = url.path
            return False
        if not ex.headers.get("Authorization", "").startswith("Bearer T-"):
            realm = f"http://{holder[0].host}/token"
            ex.status = 401
            ex.reply_headers = [
                ("WWW-Authenticate", f'Bearer realm="{realm}",service="hutch-test",scope="x"')
            ]
            return True
        if ex.method == "GET" and "/blobs/" in url.path:
            ex.status = 307
            port = holder[0].host.rsplit(":", 1)[1]
            ex.reply_headers = [("Location", f"http://localhost:{port}{url.path}?redirected=1")]
            return True
        return False

    proxy = proxy_factory(hook=hook)
    holder.append(proxy)
    with client(proxy.host) as reg, pytest.raises(RegistryAuthError, match="refused anonymous access"):
        reg.get_manifest("busybox", "1")
    wrong = auth.Credentials("alice", "wrong")
    with (
        client(proxy.host, credentials=wrong) as reg,
        pytest.raises(RegistryAuthError, match="refused the credentials"),
    ):
        reg.get_manifest("busybox", "1")
    token_requests.clear()
    with client(proxy.host, credentials=auth.Credentials("alice", "s3cret")) as reg:
        got = reg.resolve("busybox", "1")
        data = reg.get_blob("busybox", got.manifest.layers[0].digest, got.manifest.layers[0].size)
    assert sha256(data) == busybox.layer_digest
    assert token_requests[0]["service"] == ["hutch-test"]
    assert token_requests[0]["scope"] == ["repository:busybox:pull"]
    assert len(token_requests) == 1  # the token is kept for the scope
    assert redirected and all("Authorization" not in h for h in redirected)


# --- TLS and htpasswd -------------------------------------------------------------------------------------

USER, PASSWORD = "hutch", "pw-for-tests"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryServer, Path]]:
    base = tmp_path_factory.mktemp("secure")
    htpasswd = base / "htpasswd"
    why = make_htpasswd(htpasswd, USER, PASSWORD)
    if why is not None:
        pytest.skip(f"NOT TESTED: Basic auth and TLS against docker-registry need a bcrypt htpasswd: {why}")
    cert, key = make_tls(base / "tls")
    server = start_registry(base / "registry", tls=(cert, key), htpasswd=htpasswd)
    yield server, cert
    server.stop()


def _certs_dir(tmp_path: Path, host: str, cert: Path) -> Path:
    certs = tmp_path / "certs.d"
    (certs / host).mkdir(parents=True)
    (certs / host / "ca.crt").write_bytes(cert.read_bytes())
    return certs


def test_basic_auth_and_tls_with_certs_d(
    secure: tuple[RegistryServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = secure
    certs = _certs_dir(tmp_path, server.host, cert)
    blob = b"secure blob"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    auth.save(server.host, auth.Credentials(USER, PASSWORD))
    with Registry(server.host, certs_dir=str(certs), backoff=0.01) as reg:
        assert upload.push_blob(reg, "sec", d(sha256(blob)), len(blob), blob) == "uploaded"
        assert reg.get_blob("sec", d(sha256(blob))) == blob
    anonymous = Registry(server.host, certs_dir=str(certs), use_auth_files=False)
    with anonymous as reg, pytest.raises(RegistryAuthError, match="401"):
        reg.get_blob("sec", d(sha256(blob)))
    bad = auth.Credentials(USER, "wrong")
    with (
        Registry(server.host, certs_dir=str(certs), credentials=bad) as reg,
        pytest.raises(RegistryAuthError),
    ):
        reg.get_blob("sec", d(sha256(blob)))
    # skopeo sees what hutch pushed, with the same auth file.
    manifest = image_manifest(blob, [])
    with Registry(server.host, certs_dir=str(certs)) as reg:
        upload.put_manifest(reg, "sec", "t", manifest, OCI_MANIFEST)
    raw = skopeo("inspect", "--raw", f"--cert-dir={certs / server.host}", f"docker://{server.host}/sec:t")
    assert raw.encode() == manifest


def test_tls_is_verified_by_default(secure: tuple[RegistryServer, Path], tmp_path: Path) -> None:
    server, _ = secure
    creds = auth.Credentials(USER, PASSWORD)
    unverified = Registry(server.host, credentials=creds, certs_dir=str(tmp_path), retries=0)
    with unverified as reg, pytest.raises(RegistryError, match="TLS error.*CERTIFICATE_VERIFY_FAILED"):
        reg.ping()
    with Registry(server.host, credentials=creds, tls_verify=False) as reg:
        reg.ping()


def test_docker_config_json_credentials(
    secure: tuple[RegistryServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = secure
    certs = _certs_dir(tmp_path, server.host, cert)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "empty.json"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    # Without the docker config the registry refuses: the ping below passes by its credentials alone.
    with Registry(server.host, certs_dir=str(certs)) as reg, pytest.raises(RegistryAuthError):
        reg.ping()
    write_auth_file(tmp_path / "docker" / "config.json", f"https://{server.host}/v1/", USER, PASSWORD)
    with Registry(server.host, certs_dir=str(certs)) as reg:
        reg.ping()


def test_insecure_registry_without_tls_falls_back_to_http(
    busybox: BusyboxImage, registry: RegistryServer
) -> None:
    with Registry(registry.host, tls_verify=False, use_auth_files=False) as reg:
        assert str(reg.resolve("busybox", "1").digest) == busybox.manifest_digest
        assert reg.scheme == "http"
    with (
        Registry(registry.host, use_auth_files=False, retries=0) as reg,
        pytest.raises(RegistryError, match="TLS"),
    ):
        reg.ping()  # but not when TLS is to be verified


def test_a_blob_read_halfway_does_not_spoil_the_next_request(
    busybox: BusyboxImage, registry: RegistryServer
) -> None:
    with client(registry.host) as reg:
        for _ in range(3):
            chunks = reg.iter_blob("busybox", d(busybox.layer_digest), len(busybox.layer), chunk_size=4096)
            assert len(next(chunks)) == 4096
            chunks.close()
            assert reg.get_blob("busybox", d(busybox.config_digest), len(busybox.config)) == busybox.config


def test_chunked_upload_from_bytes(registry: RegistryServer) -> None:
    blob = os.urandom(100_001)
    with client(registry.host) as reg:
        assert (
            upload.push_blob(reg, "chunks", d(sha256(blob)), len(blob), blob, chunk_size=30_000) == "uploaded"
        )
        assert reg.get_blob("chunks", d(sha256(blob)), len(blob)) == blob
