"""A real registry for the image tests: Debian's docker-registry on 127.0.0.1, a busybox OCI image, skopeo.

    start_registry(dir, *, tls=None, htpasswd=None) -> RegistryServer
                        docker-registry serving from DIR/storage on a free port (with TLS and htpasswd auth
                        when given); .host is "127.0.0.1:PORT", .stop() ends it
    build_busybox_layout(dir, tag) -> BusyboxImage
                        an OCI image layout with one gzip layer: /bin/busybox (busybox-static) and /bin/sh
    skopeo(*args)       runs skopeo (with --insecure-policy), failing the test with its stderr
    make_tls(dir)       a self-signed CA-less certificate for 127.0.0.1 made by the openssl CLI: (cert, key)
    make_htpasswd(path, user, password) -> str | None
                        a bcrypt htpasswd file, by apache2-utils' htpasswd or else Python's bcrypt; None
                        (with the reason) when neither is installed
    registry, busybox   module-scoped pytest fixtures: a plain-HTTP registry, and the busybox image pushed to it
                        as busybox:1 (a test module binds them: `registry = registry_fixtures.registry`)
    Proxy(upstream, hook)
                        an HTTP server on 127.0.0.1 that forwards to `upstream` and lets a test change what
                        comes back (tamper with a blob, drop a connection, answer 503, demand a Bearer token)

No test needs the internet: the image is built from /bin/busybox, the registry runs locally.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOCKER_REGISTRY = "/usr/bin/docker-registry"
BUSYBOX = Path("/bin/busybox")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def require(binary: str, package: str) -> None:
    if shutil.which(binary) is None and not Path(binary).exists():
        pytest.fail(f"{binary} is missing: apt-get install {package} (make deps)")


@dataclass
class RegistryServer:
    host: str
    proc: subprocess.Popen[bytes]
    root: Path
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_registry(
    directory: Path, *, tls: tuple[Path, Path] | None = None, htpasswd: Path | None = None
) -> RegistryServer:
    require(DOCKER_REGISTRY, "docker-registry")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    http_conf: dict[str, object] = {"addr": f"127.0.0.1:{port}", "secret": "hutch-test"}
    if tls is not None:
        http_conf["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "storage")}, "delete": {"enabled": True}},
        "http": http_conf,
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "hutch-test", "path": str(htpasswd)}}
    conf = directory / "config.yml"
    conf.write_text(json.dumps(config))  # YAML is a superset of JSON
    log = directory / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([DOCKER_REGISTRY, "serve", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    server = RegistryServer(f"127.0.0.1:{port}", proc, directory, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"docker-registry did not listen on {port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A plain-HTTP docker-registry for the test module."""
    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def busybox(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> BusyboxImage:
    """The busybox image, pushed by skopeo to `registry` as busybox:1."""
    img = build_busybox_layout(tmp_path_factory.mktemp("layout"), "1")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{img.layout}:1", f"docker://{registry.host}/busybox:1")
    return img


def skopeo(*args: str, timeout: float = 120) -> str:
    require("skopeo", "skopeo")
    proc = subprocess.run(
        ["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"skopeo {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


# --- a busybox image --------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class BusyboxImage:
    layout: Path
    tag: str
    manifest: bytes
    config: bytes
    layer: bytes  # gzip
    diff_id: str

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256(self.config)

    @property
    def layer_digest(self) -> str:
        return sha256(self.layer)


def busybox_layer() -> tuple[bytes, bytes]:
    """(tar, gzip of it): /bin/busybox and /bin/sh -> busybox, with fixed mtimes so the digest is stable."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("bin")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(d)
        data = BUSYBOX.read_bytes()
        f = tarfile.TarInfo("bin/busybox")
        f.size, f.mode, f.mtime = len(data), 0o755, 0
        tar.addfile(f, io.BytesIO(data))
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname, link.mode, link.mtime = tarfile.SYMTYPE, "busybox", 0o777, 0
        tar.addfile(link)
    tar_bytes = raw.getvalue()
    return tar_bytes, gzip.compress(tar_bytes, compresslevel=6, mtime=0)


def image_config(diff_ids: list[str], arch: str = "amd64", **config: object) -> bytes:
    doc = {
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], **config},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "hutch test: busybox"}],
    }
    return json.dumps(doc, sort_keys=True).encode()


def image_manifest(config: bytes, layers: list[bytes], annotations: dict[str, str] | None = None) -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256(b), "size": len(b)} for b in layers],
    }
    if annotations:
        doc["annotations"] = annotations
    return json.dumps(doc, sort_keys=True).encode()


def build_busybox_layout(directory: Path, tag: str = "1") -> BusyboxImage:
    if not BUSYBOX.exists():
        pytest.fail("/bin/busybox is missing: apt-get install busybox-static (make deps)")
    tar_bytes, layer = busybox_layer()
    config = image_config([sha256(tar_bytes)])
    manifest = image_manifest(config, [layer])
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for blob in (layer, config, manifest):
        (blobs / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": sha256(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (directory / "index.json").write_text(json.dumps(index))
    return BusyboxImage(directory, tag, manifest, config, layer, sha256(tar_bytes))


# --- TLS and htpasswd -------------------------------------------------------------------------------------


def make_tls(directory: Path) -> tuple[Path, Path]:
    require("openssl", "openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "registry.crt", directory / "registry.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def make_htpasswd(path: Path, user: str, password: str) -> str | None:
    """Write a bcrypt htpasswd entry; returns None on success, else why it could not be made."""
    if shutil.which("htpasswd"):
        subprocess.run(["htpasswd", "-Bbc", str(path), user, password], check=True, capture_output=True)
        return None
    try:
        import bcrypt
    except ImportError:
        return "neither htpasswd (apt-get install apache2-utils) nor Python's bcrypt is installed"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    path.write_text(f"{user}:{hashed}\n")
    return None


# --- a meddling proxy -------------------------------------------------------------------------------------


@dataclass
class Exchange:
    """What the proxy got from upstream, for a hook to change before it is sent on."""

    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    reply_headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    truncate_to: int | None = None  # send the full Content-Length, then only this many bytes, then close


Hook = Callable[[Exchange], bool]  # called before forwarding (status 0) and after; True: handled, send as is


class Proxy:
    """Forwards to `upstream` (host:port, plain HTTP); `hook` sees each exchange. `.requests` logs them."""

    def __init__(self, upstream: str, hook: Hook | None = None) -> None:
        self.upstream = upstream
        self.hook = hook
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()}
                proxy.requests.append((self.command, self.path, headers))
                ex = Exchange(self.command, self.path, headers)
                if not (proxy.hook and proxy.hook(ex)):
                    conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                    send = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=body, headers=send)
                    resp = conn.getresponse()
                    ex.status = resp.status
                    ex.reply_headers = [
                        (k, v)
                        for k, v in resp.getheaders()
                        if k.lower() not in ("connection", "transfer-encoding")
                    ]
                    ex.body = resp.read()
                    conn.close()
                    if proxy.hook:
                        proxy.hook(ex)
                self.send_response(ex.status)
                for k, v in ex.reply_headers:
                    if k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(ex.body)))
                if ex.truncate_to is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(ex.body if ex.truncate_to is None else ex.body[: ex.truncate_to])
                if ex.truncate_to is not None:
                    self.wfile.flush()
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def write_auth_file(path: Path, host: str, user: str, password: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))


def wait_until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def listdir(path: Path) -> list[str]:
    return sorted(os.listdir(path))
