"""`hutch save`, `load`, `import` and `history`, checked against skopeo and podman (private storage).

Images come from Debian's docker-registry seeded by skopeo (pulled by hutch), from archives skopeo and podman
write, and from archives made here by hand (multi-layer with history, and hostile ones).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration import registry_fixtures
from tests.integration.registry_fixtures import (
    BUSYBOX,
    BusyboxImage,
    RegistryServer,
    busybox_layer,
    skopeo,
)
from tests.integration.test_image_cli import EXIT_ENGINE, hutch, inspect

from hutch.image import db as _db
from hutch.image import snapshot

# The shared fixtures, by name.
registry = registry_fixtures.registry
busybox = registry_fixtures.busybox

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
FORMATS = ("docker-archive", "oci-archive")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "storage"


def image_id(img: BusyboxImage) -> str:
    return img.config_digest.removeprefix("sha256:")


def pulled(root: Path, registry: RegistryServer) -> str:
    name = f"{registry.host}/busybox:1"
    hutch(root, "pull", "--tls-verify=false", "-q", name)
    return name


def stored(root: Path) -> tuple[list[str], list[str], list[str]]:
    """Blobs, layer dirs and image ids in the storage."""
    blobs = sorted(os.listdir(root / "blobs" / "sha256")) if (root / "blobs").exists() else []
    layers = sorted(os.listdir(root / "layers")) if (root / "layers").exists() else []
    ids = hutch(root, "images", "-q").stdout.split()
    return blobs, layers, ids


def mounted_has_busybox(root: Path, name: str, tmp_path: Path) -> bool:
    with _db.Database(str(root / "hutch.db")) as db:
        layers = db.image_layers(db.lookup(name).id)
    target, upper, work = tmp_path / "rootfs", tmp_path / "upper", tmp_path / "work"
    for d in (target, upper, work):
        d.mkdir(exist_ok=True)
    snapshot.mount_rootfs([layer.path for layer in reversed(layers)], str(upper), str(work), str(target))
    try:
        return (target / "bin" / "busybox").read_bytes() == BUSYBOX.read_bytes()
    finally:
        snapshot.unmount(str(target))


class Podman:
    """podman with private storage (as tests/compat sets it up), for load and save only."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        conf = home / "containers.conf"
        nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 20000)
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
        conf.write_text(
            f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            '[engine]\nevents_logger="file"\n'
        )
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.runroot = tempfile.mkdtemp(prefix="hutch-pm-")  # podman wants it at most 50 characters long
        self.base = [
            "podman",
            "--root",
            str(home / "storage"),
            "--runroot",
            self.runroot,
            "--tmpdir",
            str(home / "tmp"),
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]

    def run(self, *args: str) -> str:
        proc = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, env=self.env, timeout=120, check=False
        )
        if proc.returncode != 0:
            pytest.fail(f"podman {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    p = Podman(tmp_path / "podman")
    yield p
    subprocess.run([*p.base, "rmi", "--all", "--force"], env=p.env, capture_output=True, check=False)
    shutil.rmtree(p.runroot, ignore_errors=True)


# --- save and load ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_save_then_load_keeps_the_image(
    fmt: str, busybox: BusyboxImage, registry: RegistryServer, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    name = pulled(first, registry)
    archive = tmp_path / "busybox.tar"
    hutch(first, "save", "--format", fmt, "-o", str(archive), name)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".busybox.tar")] == []  # no temp left
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        if fmt == "docker-archive":
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
            assert manifest[0]["Config"] == f"{image_id(busybox)}.json"
            assert manifest[0]["RepoTags"] == [name]
            assert manifest[0]["Layers"] == [f"{busybox.diff_id.removeprefix('sha256:')}.tar"]
            assert "repositories" in names
        else:
            index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
            desc = index["manifests"][0]
            assert desc["digest"] == busybox.manifest_digest
            assert desc["annotations"]["org.opencontainers.image.ref.name"] == name
            assert "oci-layout" in names and f"blobs/{busybox.layer_digest.replace(':', '/')}" in names

    out = hutch(second, "load", "-i", str(archive))
    assert out.stdout.splitlines() == [f"Loaded image: {name}"]
    doc = inspect(second, name)
    assert doc["Id"] == image_id(busybox)
    assert doc["RootFS"] == {"Type": "layers", "Layers": [busybox.diff_id]}
    if fmt == "oci-archive":
        assert doc["Digest"] == busybox.manifest_digest  # the manifest byte for byte
    assert mounted_has_busybox(second, name, tmp_path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_save_several_images_in_one_archive(
    fmt: str, busybox: BusyboxImage, registry: RegistryServer, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    name = pulled(first, registry)
    made = tmp_path / "made.tar"
    made.write_bytes(_layer("hello", b"hello\n"))
    made_id = hutch(first, "import", "-q", str(made), "made:2").stdout.strip().removeprefix("sha256:")
    archive = tmp_path / "two.tar"
    hutch(first, "image", "save", "-m", "--format", fmt, "-o", str(archive), name, "made:2")
    out = hutch(second, "image", "load", "-i", str(archive))
    assert sorted(out.stdout.splitlines()) == sorted(
        [f"Loaded image: {name}", "Loaded image: localhost/made:2"]
    )
    assert inspect(second, name)["Id"] == image_id(busybox)
    assert inspect(second, "localhost/made:2")["Id"] == made_id


def test_load_reads_stdin_and_gzip(busybox: BusyboxImage, registry: RegistryServer, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    name = pulled(first, registry)
    data = subprocess.run(
        [*_hutch_cmd(first), "save", name], capture_output=True, check=True, timeout=60
    ).stdout
    assert data[257:262] == b"ustar"
    archive = tmp_path / "busybox.tar.gz"
    archive.write_bytes(gzip.compress(data))
    assert hutch(second, "load", "-q", "-i", str(archive)).stdout == f"Loaded image: {name}\n"
    third = tmp_path / "c"
    proc = subprocess.run(
        [*_hutch_cmd(third), "load"], input=data, capture_output=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert inspect(third, name)["Id"] == image_id(busybox)


def _hutch_cmd(root: Path) -> list[str]:
    from tests.integration.test_image_cli import HUTCH

    return [*HUTCH, "--root", str(root)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_skopeo_and_podman_read_what_hutch_saves(
    fmt: str, busybox: BusyboxImage, registry: RegistryServer, podman: Podman, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    name = pulled(root, registry)
    archive = tmp_path / "busybox.tar"
    hutch(root, "save", "--format", fmt, "-o", str(archive), name)

    config = json.loads(skopeo("inspect", "--config", f"{fmt}:{archive}"))
    assert config["rootfs"]["diff_ids"] == [busybox.diff_id]
    info = json.loads(skopeo("inspect", f"{fmt}:{archive}"))
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    if fmt == "oci-archive":
        assert info["Digest"] == busybox.manifest_digest

    out = podman.run("load", "-i", str(archive))
    assert f"Loaded image: {name}" in out
    images = json.loads(podman.run("images", "--format", "json"))
    assert [i["Id"] for i in images] == [image_id(busybox)]
    assert images[0]["Names"] == [name]


def test_hutch_loads_a_docker_archive_skopeo_writes(
    busybox: BusyboxImage, root: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "skopeo.tar"
    skopeo("copy", f"oci:{busybox.layout}:1", f"docker-archive:{archive}:busybox:1")
    out = hutch(root, "load", "-i", str(archive))
    assert out.stdout.splitlines() == ["Loaded image: docker.io/library/busybox:1"]
    doc = inspect(root, "busybox:1")
    assert doc["Id"] == image_id(busybox)
    assert doc["RootFS"] == {"Type": "layers", "Layers": [busybox.diff_id]}
    assert mounted_has_busybox(root, "docker.io/library/busybox:1", tmp_path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_hutch_loads_what_podman_saves(
    fmt: str, busybox: BusyboxImage, podman: Podman, root: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source.tar"
    skopeo("copy", f"oci:{busybox.layout}:1", f"docker-archive:{source}:localhost/busybox:1")
    podman.run("load", "-i", str(source))
    archive = tmp_path / "podman.tar"
    podman.run("save", "--format", fmt, "-o", str(archive), "localhost/busybox:1")
    out = hutch(root, "load", "-i", str(archive))
    assert out.stdout.splitlines() == ["Loaded image: localhost/busybox:1"]
    doc = inspect(root, "localhost/busybox:1")
    # podman rewrites the config when it saves an oci-archive: the id is the one its manifest names.
    raw = json.loads(skopeo("inspect", "--raw", f"{fmt}:{archive}"))
    assert doc["Id"] == raw["config"]["digest"].removeprefix("sha256:")
    if fmt == "docker-archive":
        assert doc["Id"] == image_id(busybox)
    assert doc["RootFS"] == {"Type": "layers", "Layers": [busybox.diff_id]}
    assert mounted_has_busybox(root, "localhost/busybox:1", tmp_path)


# --- hostile archives ---------------------------------------------------------------------------------------


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_archive(
    path: Path,
    layers: list[bytes],
    history: list[dict[str, object]] | None = None,
    *,
    tag: str = "localhost/made:1",
    extra: list[tarfile.TarInfo] | None = None,
    tamper: bool = False,
) -> str:
    """An oci-archive with uncompressed `layers`; `tamper` changes a byte of the first layer after its digest
    is taken; `extra` members are added as they are. Returns the config digest."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(b) for b in layers]},
            "history": history or [{"created": "2024-01-01T00:00:00Z", "created_by": "made"}] * len(layers),
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha(b), "size": len(b)} for b in layers],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": sha(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    with tarfile.open(path, "w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", json.dumps(index).encode())
        for i, blob in enumerate([config, manifest, *layers]):
            data = blob
            if tamper and i == 2:
                data = bytearray(blob)
                data[600] ^= 1
            _add(tar, f"blobs/sha256/{hashlib.sha256(blob).hexdigest()}", bytes(data))
        for m in extra or []:
            tar.addfile(m, io.BytesIO(b"x" * m.size) if m.isreg() else None)
    return sha(config)


def _refused(root: Path, archive: Path, words: str) -> None:
    out = hutch(root, "load", "-i", str(archive), check=False)
    assert out.returncode == EXIT_ENGINE, out.stdout
    assert out.stderr.startswith("Error: ") and words in out.stderr, out.stderr
    assert stored(root) == ([], [], [])
    assert os.listdir(root / "tmp") == []


def test_a_blob_that_does_not_match_its_digest_is_refused(root: Path, tmp_path: Path) -> None:
    archive = tmp_path / "bad.tar"
    oci_archive(archive, [busybox_layer()[0]], tamper=True)
    _refused(root, archive, "digest mismatch")


def test_a_docker_archive_layer_that_does_not_match_is_refused(
    busybox: BusyboxImage, root: Path, tmp_path: Path
) -> None:
    good = tmp_path / "good.tar"
    skopeo("copy", f"oci:{busybox.layout}:1", f"docker-archive:{good}:busybox:1")
    bad = tmp_path / "bad.tar"
    with tarfile.open(good) as src, tarfile.open(bad, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
            if data is not None and m.name.endswith(".tar"):
                changed = bytearray(data)
                changed[700] ^= 1
                data = bytes(changed)
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    _refused(root, bad, "digest mismatch")


def test_a_member_climbing_out_is_refused(root: Path, tmp_path: Path) -> None:
    archive = tmp_path / "dotdot.tar"
    evil = tarfile.TarInfo("../evil")
    evil.size = 1
    oci_archive(archive, [busybox_layer()[0]], extra=[evil])
    _refused(root, archive, "'../evil': refused")
    assert not (tmp_path / "evil").exists() and not (root / "evil").exists()


def test_a_symlink_member_leading_out_is_refused(root: Path, tmp_path: Path) -> None:
    # The manifest's blob is a symlink to a file outside the archive.
    layer = busybox_layer()[0]
    archive = tmp_path / "link.tar"
    oci_archive(archive, [layer])
    with tarfile.open(archive) as src:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers()]  # type: ignore[union-attr]
    layer_name = f"blobs/sha256/{hashlib.sha256(layer).hexdigest()}"
    with tarfile.open(archive, "w") as dst:
        for m, data in members:
            if m.name == layer_name:
                link = tarfile.TarInfo(layer_name)
                link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
                dst.addfile(link)
            else:
                dst.addfile(m, io.BytesIO(data))
    _refused(root, archive, "refused: a link to the absolute path '/etc/passwd'")
    for target in ("../../../../etc/passwd", "../../.."):
        with tarfile.open(archive, "w") as dst:
            for m, data in members:
                if m.name == layer_name:
                    link = tarfile.TarInfo(layer_name)
                    link.type, link.linkname = tarfile.SYMTYPE, target
                    dst.addfile(link)
                else:
                    dst.addfile(m, io.BytesIO(data))
        _refused(root, archive, "leads outside the archive")


def test_not_an_image_archive(root: Path, tmp_path: Path) -> None:
    archive = tmp_path / "plain.tar"
    with tarfile.open(archive, "w") as tar:
        _add(tar, "hello", b"hi")
    _refused(root, archive, "neither a docker-archive")


# --- history ------------------------------------------------------------------------------------------------


def _layer(name: str, data: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def test_history_lines_up_entries_with_layers(root: Path, tmp_path: Path) -> None:
    base, top = busybox_layer()[0], _layer("etc/motd", b"hello\n" * 1000)
    history = [
        {
            "created": "2024-01-01T00:00:00Z",
            "created_by": "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789 in / ",
        },
        {
            "created": "2024-01-02T00:00:00Z",
            "created_by": "/bin/sh -c echo hello > /etc/motd",
            "comment": "motd",
        },
        {
            "created": "2024-01-03T00:00:00Z",
            "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
            "empty_layer": True,
        },
    ]
    archive = tmp_path / "two.tar"
    config_digest = oci_archive(archive, [base, top], history)
    hutch(root, "load", "-i", str(archive))
    full = config_digest.removeprefix("sha256:")

    rows = hutch(root, "history", "localhost/made:1").stdout.splitlines()
    assert rows[0].split() == ["ID", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert rows[1].startswith(full[:12] + "  ") and '#(nop)  CMD ["sh"]' in rows[1] and " 0 B" in rows[1]
    assert rows[2].startswith("<missing>") and "echo hello" in rows[2] and rows[2].rstrip().endswith("motd")
    assert f"{len(top) / 1000:.3g} kB" in rows[2]
    assert rows[3].startswith("<missing>") and "/bin/sh -c #(nop) ADD file:0123456789abcde...  " in rows[3]
    assert f"{len(base) / 1e6:.3g} MB" in rows[3]
    assert len(rows) == 4

    assert hutch(root, "history", "-q", "localhost/made:1").stdout.split() == [
        full[:12],
        "<missing>",
        "<missing>",
    ]
    assert hutch(root, "history", "-q", "--no-trunc", "localhost/made:1").stdout.split()[0] == full
    assert (
        "ADD file:0123456789abcdef0123456789 in / "
        in hutch(root, "history", "--no-trunc", "localhost/made:1").stdout
    )
    doc = json.loads(hutch(root, "history", "--format", "json", "localhost/made:1").stdout)
    assert [e["id"] for e in doc] == [full, "<missing>", "<missing>"]
    assert [e["size"] for e in doc] == [0, len(top), len(base)]
    assert doc[1]["comment"] == "motd" and doc[2]["created"] == "2024-01-01T00:00:00Z"


def test_history_of_a_pulled_image(busybox: BusyboxImage, registry: RegistryServer, root: Path) -> None:
    name = pulled(root, registry)
    rows = hutch(root, "image", "history", name).stdout.splitlines()
    assert len(rows) == 2
    assert rows[1].startswith(image_id(busybox)[:12]) and "hutch test: busybox" in rows[1]


# --- import -------------------------------------------------------------------------------------------------


def rootfs_tarball(path: Path, compress: bool) -> None:
    raw = busybox_layer()[0]
    path.write_bytes(gzip.compress(raw) if compress else raw)


def test_import_a_rootfs_tarball(root: Path, tmp_path: Path) -> None:
    tarball = tmp_path / "rootfs.tar.gz"
    rootfs_tarball(tarball, compress=True)
    out = hutch(
        root,
        "import",
        "--change",
        "CMD=/bin/sh",
        "-c",
        'ENTRYPOINT=["/bin/busybox"]',
        "-c",
        "ENV=A=b",
        "-c",
        "WORKDIR=/tmp",
        str(tarball),
        "made:1",
    )
    assert out.stdout.startswith("sha256:") and len(out.stdout.strip()) == 71
    assert "Writing manifest to image destination" in out.stderr
    doc = inspect(root, "localhost/made:1")
    assert doc["Id"] == out.stdout.strip().removeprefix("sha256:")
    assert doc["RepoTags"] == ["localhost/made:1"]
    diff_id = sha(busybox_layer()[0])
    assert doc["RootFS"] == {"Type": "layers", "Layers": [diff_id]}
    assert doc["Config"] == {
        "Cmd": ["/bin/sh", "-c", "/bin/sh"],
        "Entrypoint": ["/bin/busybox"],
        "Env": ["A=b"],
        "WorkingDir": "/tmp",
    }
    assert mounted_has_busybox(root, "localhost/made:1", tmp_path)
    rows = hutch(root, "history", "made:1").stdout.splitlines()
    assert len(rows) == 2 and rows[1].rstrip().endswith("imported from tarball")
    assert f"ADD file:{diff_id.removeprefix('sha256:')[:15]}" in rows[1]


def test_import_from_stdin_without_a_name(root: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [*_hutch_cmd(root), "import", "-q", "-m", "from stdin", "-"],
        input=busybox_layer()[0],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    image = proc.stdout.decode().strip().removeprefix("sha256:")
    assert hutch(root, "images", "-q").stdout.split() == [image[:12]]
    assert hutch(root, "history", image).stdout.splitlines()[1].rstrip().endswith("from stdin")


def test_import_refuses_what_is_not_a_tar(root: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a tar at all" * 100)
    out = hutch(root, "import", str(junk), check=False)
    assert out.returncode == EXIT_ENGINE and "not a tar archive" in out.stderr
    assert stored(root) == ([], [], [])
