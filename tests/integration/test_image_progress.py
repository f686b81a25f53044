"""`hutch pull` progress: on a terminal (a real pty) one bar per blob, redrawn in place with byte counters;
through a pipe podman's plain lines and no escape sequences. A throttling TCP relay in front of the registry
makes the download take long enough for the bars to move.
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
from tests.integration.registry_fixtures import RegistryServer, image_config, image_manifest, sha256
from tests.integration.test_engine_run import through_pty
from tests.integration.test_image_cli import HUTCH, hutch

from hutch.image import upload
from hutch.image.registry import Registry
from hutch.oci import image as oci_image
from hutch.oci.digest import parse

registry = registry_fixtures.registry
LAYER_BYTES = 3 << 20


class SlowRelay:
    """A TCP relay to `upstream` that sends what comes back at about `rate` bytes a second."""

    def __init__(self, upstream: str, rate: int) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.rate = rate
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, up, 0), daemon=True).start()
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


@pytest.fixture(scope="module")
def big(registry: RegistryServer) -> Iterator[tuple[SlowRelay, str]]:
    """An image with one incompressible 3 MiB layer, behind a relay at ~3 MiB/s: (relay, layer digest)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = os.urandom(LAYER_BYTES)
        info = tarfile.TarInfo("big")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    layer = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    config = image_config([sha256(tar_bytes)])
    manifest = image_manifest(config, [layer])
    with Registry(registry.host, plain_http=True, use_auth_files=False) as reg:
        upload.push_blob(reg, "big", parse(sha256(layer), "t"), len(layer), layer)
        upload.push_blob(reg, "big", parse(sha256(config), "t"), len(config), config)
        upload.put_manifest(reg, "big", "1", manifest, oci_image.OCI_MANIFEST)
    relay = SlowRelay(registry.host, 3 << 20)
    yield relay, sha256(layer)
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
