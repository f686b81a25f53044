"""`hutch pull`, `push`, and `run`/`create` pulling a missing image: on a terminal (a real pty) one bar per
blob, redrawn in place with byte counters; through a pipe podman's plain lines and no escape sequences. A
throttling TCP relay in front of the registry makes the transfer take long enough for the bars to move.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration import registry_fixtures
from tests.integration.registry_fixtures import (
    BusyboxImage,
    RegistryServer,
    image_config,
    image_manifest,
    sha256,
)
from tests.integration.test_engine_run import through_pty
from tests.integration.test_image_cli import HUTCH, hutch

from hutch.image import upload
from hutch.image.registry import Registry
from hutch.oci import image as oci_image
from hutch.oci.digest import parse

registry = registry_fixtures.registry
busybox = registry_fixtures.busybox
LAYER_BYTES = 3 << 20


class SlowRelay:
    """A TCP relay to `upstream` that sends what comes back at about `rate` bytes a second, and what goes up at
    `up_rate` (0: at once) through a small receive buffer, so that an upload's sender waits for it."""

    def __init__(self, upstream: str, rate: int, up_rate: int = 0) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.rate = rate
        self.up_rate = up_rate
        self.sock = socket.socket()
        if up_rate:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)  # accepted sockets inherit it
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.host = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, up, self.up_rate), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, client, self.rate), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, rate: int) -> None:
        try:
            while data := src.recv(32 << 10):
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self.sock.close()


def store_image(registry: RegistryServer, repo: str, size: int) -> str:
    """Store `repo:1` in the registry: one incompressible layer of `size` bytes; returns the layer's digest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = os.urandom(size)
        info = tarfile.TarInfo("big")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    layer = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    config = image_config([sha256(tar_bytes)])
    manifest = image_manifest(config, [layer])
    with Registry(registry.host, plain_http=True, use_auth_files=False) as reg:
        upload.push_blob(reg, repo, parse(sha256(layer), "t"), len(layer), layer)
        upload.push_blob(reg, repo, parse(sha256(config), "t"), len(config), config)
        upload.put_manifest(reg, repo, "1", manifest, oci_image.OCI_MANIFEST)
    return sha256(layer)


@pytest.fixture(scope="module")
def big(registry: RegistryServer) -> Iterator[tuple[SlowRelay, str]]:
    """An image with one incompressible 3 MiB layer, behind a relay at ~3 MiB/s: (relay, layer digest)."""
    layer = store_image(registry, "big", LAYER_BYTES)
    relay = SlowRelay(registry.host, 3 << 20)
    yield relay, layer
    relay.stop()


def test_bars_on_a_terminal(big: tuple[SlowRelay, str], tmp_path: Path) -> None:
    relay, layer = big
    short = layer[7:19]
    code, raw = through_pty(
        [*HUTCH, "--root", str(tmp_path / "storage"), "pull", "--tls-verify=false", f"{relay.host}/big:1"]
    )
    out = raw.decode()
    assert code == 0, out
    # Each redraw moves the cursor up over the bars and clears the lines it rewrites.
    assert re.search(r"\x1b\[\d+A", out) and "\x1b[2K" in out
    bars = re.findall(rf"Copying blob {short} \[([=>-]+)\] (\S+) / (\S+)", out)
    assert len(bars) >= 3, out
    assert all(len(b[0]) == 30 and b[2] == "3.0MiB" for b in bars)
    assert bars[0][1] == "0.0b"
    # The bar moved: some redraw shows a part of the layer, neither nothing nor all of it.
    assert any(b[1] not in ("0.0b", "3.0MiB") and 0 < b[0].count("=") < 30 for b in bars), bars
    assert out.index(f"Copying blob {short} done") > out.rindex(f"Copying blob {short} [")
    assert out.rstrip().splitlines()[-1].strip().isalnum()  # the image id, last
    assert "Writing manifest to image destination" in out


def test_plain_lines_through_a_pipe(big: tuple[SlowRelay, str], tmp_path: Path) -> None:
    relay, layer = big
    proc = hutch(tmp_path / "storage", "pull", "--tls-verify=false", f"{relay.host}/big:1")
    assert "\x1b" not in proc.stderr and "[" not in proc.stderr.replace(f"{relay.host}/big:1...", "")
    lines = proc.stderr.splitlines()
    assert lines[0] == f"Trying to pull {relay.host}/big:1..."
    assert f"Copying blob {layer[7:19]} done" in lines
    assert lines[-1] == "Writing manifest to image destination"


def _bars(out: str, short: str) -> list[tuple[str, str, str]]:
    return re.findall(rf"Copying blob {short} \[([=>-]+)\] (\S+) / (\S+)", out)


def test_push_bars_on_a_terminal_and_lines_through_a_pipe(registry: RegistryServer, tmp_path: Path) -> None:
    # 12 MiB: the kernel's socket buffers take the first few at once; the rest goes at 8 MiB/s.
    layer = store_image(registry, "pushme", 12 << 20)
    short = layer[7:19]
    storage = tmp_path / "storage"
    hutch(storage, "pull", "-q", "--tls-verify=false", f"{registry.host}/pushme:1")
    up = SlowRelay(registry.host, 0, up_rate=8 << 20)
    try:
        code, raw = through_pty(
            [*HUTCH, "--root", str(storage), "push", "--tls-verify=false", f"{registry.host}/pushme:1",
             f"{up.host}/pushed/pushme:1"]
        )  # fmt: skip
    finally:
        up.stop()
    out = raw.decode()
    assert code == 0, out
    assert re.search(r"\x1b\[\d+A", out) and "\x1b[2K" in out
    bars = re.findall(rf"Copying blob {short} \[([=>-]+)\] (\S+) / (\S+)", out)
    assert len(bars) >= 3 and all(len(b[0]) == 30 and b[2] == "12.0MiB" for b in bars), out
    assert bars[0][1] == "0.0b"
    assert any(b[1] not in ("0.0b", "12.0MiB") and 0 < b[0].count("=") < 30 for b in bars), bars
    assert out.index(f"Copying blob {short} done") > out.rindex(f"Copying blob {short} [")
    assert "Writing manifest to image destination" in out
    # Through a pipe: podman's lines, the blob now already there.
    proc = hutch(
        storage, "push", "--tls-verify=false", f"{registry.host}/pushme:1", f"{registry.host}/pushed/pushme:1"
    )
    assert "\x1b" not in proc.stderr
    assert f"Copying blob {short} skipped: already exists" in proc.stderr.splitlines()


def test_create_pulling_shows_bars_on_a_terminal(big: tuple[SlowRelay, str], tmp_path: Path) -> None:
    relay, layer = big
    short = layer[7:19]
    storage = tmp_path / "storage"
    code, raw = through_pty(
        [*HUTCH, "--root", str(storage), "create", "--tls-verify=false", f"{relay.host}/big:1", "/big"]
    )
    out = raw.decode()
    try:
        assert code == 0, out
        assert re.search(r"\x1b\[\d+A", out) and "\x1b[2K" in out
        bars = re.findall(rf"Copying blob {short} \[([=>-]+)\] (\S+) / (\S+)", out)
        assert any(b[1] not in ("0.0b", "3.0MiB") and 0 < b[0].count("=") < 30 for b in bars), out
        assert out.index(f"Copying blob {short} done") > out.rindex(f"Copying blob {short} [")
    finally:
        container = out.rstrip().splitlines()[-1].strip()
        hutch(storage, "rm", "-f", container, check=False)


def test_run_pulling_plain_lines_and_quiet(
    busybox: BusyboxImage, registry: RegistryServer, tmp_path: Path
) -> None:
    image = f"{registry.host}/busybox:1"
    shown = hutch(tmp_path / "shown", "run", "--rm", "--tls-verify=false", image, "sh", "-c", "echo ran")
    assert shown.stdout == "ran\n" and "\x1b" not in shown.stderr
    lines = shown.stderr.splitlines()
    assert lines[0] == f"Trying to pull {image}..."
    assert f"Copying blob {busybox.layer_digest[7:19]} done" in lines
    assert lines[-1] == "Writing manifest to image destination"
    quiet = hutch(
        tmp_path / "quiet", "run", "-q", "--rm", "--tls-verify=false", image, "sh", "-c", "echo ran"
    )
    assert quiet.stdout == "ran\n" and quiet.stderr == ""
    assert hutch(tmp_path / "quiet", "images", "-q").stdout.strip() == busybox.config_digest[7:19]
