"""The `hutch` image commands against Debian's docker-registry, seeded and checked with skopeo.

Every command runs as a real `hutch` process with `--root` in a temp dir. A counting proxy in front of the
registry shows what a pull downloads, slows a pull down so it can be killed mid-way, or tampers with a blob.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration import registry_fixtures
from tests.integration.registry_fixtures import (
    BusyboxImage,
    Exchange,
    Proxy,
    RegistryServer,
    skopeo,
)

from hutch.image import db as _db
from hutch.image import snapshot, upload

# The shared fixtures, by name.
registry = registry_fixtures.registry
busybox = registry_fixtures.busybox

REPO = Path(__file__).resolve().parent.parent.parent
HUTCH = [str(REPO / ".venv" / "bin" / "python"), "-m", "hutch.cli.main"]
EXIT_ENGINE = 125


def hutch(
    root: Path, *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*HUTCH, "--root", str(root), *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
        check=False,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"hutch {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[Proxy]:
    p = Proxy(registry.host)
    yield p
    p.stop()


def blob_gets(p: Proxy) -> list[str]:
    return [path for method, path, _ in p.requests if method == "GET" and "/blobs/" in path]


def inspect(root: Path, name: str) -> dict[str, object]:
    docs = json.loads(hutch(root, "image", "inspect", name).stdout)
    assert isinstance(docs, list) and len(docs) == 1
    doc: dict[str, object] = docs[0]
    return doc


def stored_files(root: Path) -> tuple[list[str], list[str]]:
    blobs = sorted(os.listdir(root / "blobs" / "sha256"))
    layers = sorted(os.listdir(root / "layers"))
    return blobs, layers


def pull(root: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return hutch(root, "pull", "--tls-verify=false", *extra, name)


# --- pull, images, inspect -----------------------------------------------------------------------------------


def test_pull_lists_inspects_and_mounts(
    busybox: BusyboxImage, registry: RegistryServer, root: Path, tmp_path: Path
) -> None:
    name = f"{registry.host}/busybox:1"
    out = pull(root, name)
    image_id = busybox.config_digest.removeprefix("sha256:")
    assert out.stdout.strip() == image_id
    assert "Copying blob" in out.stderr and "Writing manifest" in out.stderr

    listing = hutch(root, "images").stdout.splitlines()
    assert listing[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert len(listing) == 2
    row = listing[1].split()
    assert row[:3] == [f"{registry.host}/busybox", "1", image_id[:12]]
    # podman's size: manifest, config and the layer as unpacked (its tar), not as downloaded.
    size = len(busybox.manifest) + len(busybox.config) + len(registry_fixtures.busybox_layer()[0])
    assert " ".join(row[-2:]) == human(size)
    assert hutch(root, "image", "ls", "-q").stdout.split() == [image_id[:12]]
    listed = json.loads(hutch(root, "images", "--format", "json").stdout)
    assert listed[0]["Id"] == image_id and listed[0]["Size"] == size and listed[0]["Names"] == [name]

    reported = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{name}"))
    doc = inspect(root, name)
    assert doc["Digest"] == reported["Digest"] == busybox.manifest_digest
    assert doc["Id"] == image_id
    assert doc["RepoTags"] == [name]
    assert doc["RepoDigests"] == [f"{registry.host}/busybox@{busybox.manifest_digest}"]
    assert doc["RootFS"] == {"Type": "layers", "Layers": [busybox.diff_id]}
    assert doc["Architecture"] == "amd64" and doc["Os"] == "linux" and doc["Size"] == size
    assert doc["Created"] == "2024-01-01T00:00:00Z"
    assert doc["Config"] == {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]}

    with _db.Database(str(root / "hutch.db")) as db:
        layers = db.image_layers(db.lookup(name).id)
    assert [layer.state for layer in layers] == ["unpacked"]
    target, upper, work = tmp_path / "rootfs", tmp_path / "upper", tmp_path / "work"
    for d in (target, upper, work):
        d.mkdir()
    snapshot.mount_rootfs([layers[0].path], str(upper), str(work), str(target))
    try:
        assert (target / "bin" / "busybox").is_file()
        assert os.readlink(target / "bin" / "sh") == "busybox"
        assert (target / "bin" / "busybox").read_bytes() == Path("/bin/busybox").read_bytes()
    finally:
        snapshot.unmount(str(target))


def human(size: int) -> str:
    value, unit = float(size), "B"
    for u in ("kB", "MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, u
    return f"{value:.3g} {unit}"


def test_pull_by_digest(busybox: BusyboxImage, registry: RegistryServer, root: Path) -> None:
    name = f"{registry.host}/busybox@{busybox.manifest_digest}"
    out = pull(root, name, "-q")
    assert out.stdout.strip() == busybox.config_digest.removeprefix("sha256:")
    assert out.stderr == ""
    rows = hutch(root, "images").stdout.splitlines()[1:]
    assert [r.split()[:2] for r in rows] == [[f"{registry.host}/busybox", "<none>"]]
    doc = inspect(root, name)
    assert doc["Digest"] == busybox.manifest_digest and doc["RepoTags"] == []


def test_second_pull_downloads_nothing(busybox: BusyboxImage, proxy: Proxy, root: Path) -> None:
    name = f"{proxy.host}/busybox:1"
    pull(root, name)
    first = blob_gets(proxy)
    assert len(first) == 2  # the config and the layer
    proxy.requests.clear()
    again = pull(root, name)
    assert blob_gets(proxy) == []
    assert "already exists" in again.stderr
    assert len(hutch(root, "images", "-q").stdout.split()) == 1


def test_two_concurrent_pulls_both_succeed(
    busybox: BusyboxImage, registry: RegistryServer, root: Path
) -> None:
    # Both pulls download the layer at the same moment: the proxy holds each layer GET until both have come.
    barrier = threading.Barrier(2, timeout=30)

    def together(ex: Exchange) -> bool:
        if ex.status == 0 and ex.method == "GET" and busybox.layer_digest in ex.path:
            barrier.wait()
        return False

    p = Proxy(registry.host, together)
    try:
        _two_pulls(busybox, f"{p.host}/busybox:1", root)
    finally:
        barrier.abort()
        p.stop()


def _two_pulls(busybox: BusyboxImage, name: str, root: Path) -> None:
    procs = [
        subprocess.Popen(
            [*HUTCH, "--root", str(root), "pull", "--tls-verify=false", "-q", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == busybox.config_digest.removeprefix("sha256:")
    with _db.Database(str(root / "hutch.db")) as db:
        images = db.images()
        assert len(images) == 1 and images[0].tags == [name]
        assert [layer.state for layer in db.image_layers(images[0].id)] == ["unpacked"]
    assert os.listdir(root / "ingest") == []


def test_kill_during_pull_then_pull_again(
    busybox: BusyboxImage, registry: RegistryServer, root: Path
) -> None:
    arrived = threading.Event()
    release = threading.Event()

    def stall(ex: Exchange) -> bool:
        if ex.status == 0 and ex.method == "GET" and busybox.layer_digest in ex.path:
            arrived.set()
            release.wait(30)
        return False

    p = Proxy(registry.host, stall)
    try:
        name = f"{p.host}/busybox:1"
        proc = subprocess.Popen(
            [*HUTCH, "--root", str(root), "pull", "--tls-verify=false", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert arrived.wait(60), "the pull never asked for the layer"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        release.set()
        assert hutch(root, "images", "-q").stdout.split() == []
        out = pull(root, name)
        assert out.stdout.strip() == busybox.config_digest.removeprefix("sha256:")
    finally:
        release.set()
        p.stop()
    rows = hutch(root, "images").stdout.splitlines()[1:]
    assert len(rows) == 1 and rows[0].split()[:2] == [f"{p.host}/busybox", "1"]
    assert os.listdir(root / "ingest") == []
    doc = inspect(root, name)
    assert doc["RootFS"] == {"Type": "layers", "Layers": [busybox.diff_id]}


def test_kill_while_unpacking_leaves_a_pulling_layer_the_next_pull_redoes(
    busybox: BusyboxImage, registry: RegistryServer, root: Path
) -> None:
    # A layer row left `pulling` with a half-written directory, as a kill during unpack leaves it.
    pull(root, f"{registry.host}/busybox:1", "-q")
    hutch(root, "rmi", f"{registry.host}/busybox:1")
    diff = busybox.diff_id.removeprefix("sha256:")
    with _db.Database(str(root / "hutch.db")) as db:
        from hutch.oci.digest import parse

        db.begin_layer(parse(busybox.diff_id, "test"), str(root / "layers" / diff))
    (root / "layers" / diff / "bin").mkdir(parents=True)
    (root / "layers" / diff / "junk").write_text("half")
    assert hutch(root, "images", "-q").stdout.split() == []
    pull(root, f"{registry.host}/busybox:1", "-q")
    assert sorted(os.listdir(root / "layers" / diff)) == ["bin"]
    assert (root / "layers" / diff / "bin" / "busybox").is_file()


# --- tag, rmi, prune ----------------------------------------------------------------------------------------


def test_tag_and_rmi_collect_blobs_and_layers(
    busybox: BusyboxImage, registry: RegistryServer, root: Path
) -> None:
    name = f"{registry.host}/busybox:1"
    pull(root, name, "-q")
    blobs, layers = stored_files(root)
    assert len(blobs) == 3 and layers == [busybox.diff_id.removeprefix("sha256:")]
    hutch(root, "tag", name, "localhost/mine:2")
    rows = [r.split()[:2] for r in hutch(root, "images").stdout.splitlines()[1:]]
    assert sorted(rows) == sorted([[f"{registry.host}/busybox", "1"], ["localhost/mine", "2"]])

    out = hutch(root, "rmi", "localhost/mine:2")
    assert out.stdout.strip() == "Untagged: localhost/mine:2"
    assert hutch(root, "images", "-q").stdout.split() == [busybox.config_digest[7:19]]
    assert stored_files(root) == (blobs, layers)

    hutch(root, "tag", name, "localhost/mine:2")
    refused = hutch(root, "rmi", busybox.config_digest[7:19], check=False)
    assert refused.returncode == EXIT_ENGINE and "more than one tag" in refused.stderr

    out = hutch(root, "rmi", "localhost/mine:2")
    out = hutch(root, "rmi", "busybox:1")  # a short name finds the one stored busybox:1
    assert out.stdout.splitlines() == [f"Untagged: {name}", f"Deleted: {busybox.config_digest[7:]}"]
    assert hutch(root, "images", "-q").stdout.split() == []
    assert stored_files(root) == ([], [])


def test_image_prune(busybox: BusyboxImage, registry: RegistryServer, root: Path) -> None:
    pull(root, f"{registry.host}/busybox@{busybox.manifest_digest}", "-q")
    assert hutch(root, "image", "prune").stdout.split() == []
    assert hutch(root, "image", "prune", "-a").stdout.split() == [busybox.config_digest[7:]]
    assert hutch(root, "images", "-q").stdout.split() == []
    assert stored_files(root) == ([], [])


# --- push -----------------------------------------------------------------------------------------------------


def test_push_to_another_repository(busybox: BusyboxImage, registry: RegistryServer, root: Path) -> None:
    pull(root, f"{registry.host}/busybox:1", "-q")
    dest = f"{registry.host}/pushed/busybox:7"
    out = hutch(root, "push", "--tls-verify=false", f"{registry.host}/busybox:1", f"docker://{dest}")
    assert "Writing manifest" in out.stderr
    reported = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{dest}"))
    assert reported["Digest"] == busybox.manifest_digest
    assert reported["Layers"] == [busybox.layer_digest]
    # skopeo copies it back out, byte for byte.
    layout = root.parent / "copied"
    skopeo("copy", "--src-tls-verify=false", f"docker://{dest}", f"oci:{layout}:x")
    assert (layout / "blobs" / "sha256" / busybox.layer_digest[7:]).read_bytes() == busybox.layer
    # A tag pushes under its own name.
    hutch(root, "tag", f"{registry.host}/busybox:1", f"{registry.host}/again:1")
    hutch(root, "push", "-q", "--tls-verify=false", f"{registry.host}/again:1")
    reported = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/again:1"))
    assert reported["Digest"] == busybox.manifest_digest


# --- errors ---------------------------------------------------------------------------------------------------


def test_wrong_digest_from_the_registry_is_an_error_and_nothing_is_stored(
    busybox: BusyboxImage, registry: RegistryServer, root: Path
) -> None:
    def tamper(ex: Exchange) -> bool:
        if ex.status and ex.method == "GET" and busybox.layer_digest in ex.path and ex.body:
            ex.body = ex.body[:-1] + bytes([ex.body[-1] ^ 0xFF])
        return False

    p = Proxy(registry.host, tamper)
    try:
        out = hutch(root, "pull", "--tls-verify=false", f"{p.host}/busybox:1", check=False)
    finally:
        p.stop()
    assert out.returncode == EXIT_ENGINE
    err = out.stderr.strip().splitlines()[-1]
    assert err.startswith("Error: ") and "digest mismatch" in err
    assert hutch(root, "images", "-q").stdout.split() == []
    # Not the tampered layer, nor the manifest and config that came before it.
    assert stored_files(root) == ([], [])
    assert os.listdir(root / "ingest") == []


def test_unknown_image_is_a_one_line_error(
    busybox: BusyboxImage, registry: RegistryServer, root: Path
) -> None:
    for args in (
        ("image", "inspect", "nosuch"),
        ("rmi", "nosuch"),
        ("tag", "nosuch", "other"),
        ("pull", "-q", "--tls-verify=false", f"{registry.host}/nosuch:1"),
        ("push", "--tls-verify=false", "nosuch"),
    ):
        out = hutch(root, *args, check=False)
        assert out.returncode == EXIT_ENGINE, args
        assert out.stdout == ""
        lines = out.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, out.stderr)
    assert "nosuch: image not known" in hutch(root, "rmi", "nosuch", check=False).stderr


def test_bad_flag_exits_125(root: Path) -> None:
    out = hutch(root, "images", "--nope", check=False)
    assert out.returncode == EXIT_ENGINE and out.stderr.startswith("Error: ")


def test_login_and_logout(registry: RegistryServer, root: Path, tmp_path: Path) -> None:
    authfile = tmp_path / "auth.json"
    out = hutch(
        root,
        "login",
        "--tls-verify=false",
        "--authfile",
        str(authfile),
        "-u",
        "me",
        "--password-stdin",
        registry.host,
        input="secret\n",
    )
    assert out.stdout.strip() == "Login Succeeded!"
    assert registry.host in json.loads(authfile.read_text())["auths"]
    out = hutch(root, "logout", "--authfile", str(authfile), registry.host)
    assert out.stdout.strip() == f"Removed login credentials for {registry.host}"
    assert json.loads(authfile.read_text())["auths"] == {}
    again = hutch(root, "logout", "--authfile", str(authfile), registry.host, check=False)
    assert (
        again.returncode == EXIT_ENGINE and again.stderr.strip() == f"Error: not logged into {registry.host}"
    )


def test_images_on_an_empty_store(root: Path) -> None:
    assert hutch(root, "images").stdout.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert json.loads(hutch(root, "images", "--format", "json").stdout) == []


def test_pull_platform_from_an_index(busybox: BusyboxImage, registry: RegistryServer, root: Path) -> None:
    from tests.integration.registry_fixtures import busybox_layer, image_config, image_manifest, sha256

    from hutch.image.registry import Registry
    from hutch.oci import image as oci_image
    from hutch.oci.digest import parse

    tar_bytes, layer = busybox_layer()
    arm_config = image_config([sha256(tar_bytes)], arch="arm64")
    arm_manifest = image_manifest(arm_config, [layer])
    with Registry(registry.host, plain_http=True, use_auth_files=False) as reg:
        upload.push_blob(reg, "plat", parse(sha256(layer), "t"), len(layer), layer, mount_from="busybox")
        upload.push_blob(reg, "plat", parse(busybox.config_digest, "t"), len(busybox.config), busybox.config)
        upload.push_blob(reg, "plat", parse(sha256(arm_config), "t"), len(arm_config), arm_config)
        upload.put_manifest(reg, "plat", busybox.manifest_digest, busybox.manifest, oci_image.OCI_MANIFEST)
        upload.put_manifest(reg, "plat", sha256(arm_manifest), arm_manifest, oci_image.OCI_MANIFEST)
        index = {
            "schemaVersion": 2,
            "mediaType": oci_image.OCI_INDEX,
            "manifests": [
                {"mediaType": oci_image.OCI_MANIFEST, "digest": busybox.manifest_digest,
                 "size": len(busybox.manifest), "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": oci_image.OCI_MANIFEST, "digest": sha256(arm_manifest), "size": len(arm_manifest),
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            ],
        }  # fmt: skip
        upload.put_manifest(reg, "plat", "latest", json.dumps(index).encode(), oci_image.OCI_INDEX)
    name = f"{registry.host}/plat:latest"
    out = pull(root, name, "-q", "--platform", "linux/arm64")
    assert out.stdout.strip() == sha256(arm_config)[7:]
    doc = inspect(root, name)
    # podman's Digest is the one pulled (the index's); the platform manifest's is among the RepoDigests.
    assert doc["Architecture"] == "arm64" and doc["Digest"] == sha256(json.dumps(index).encode())
    assert f"{registry.host}/plat@{sha256(arm_manifest)}" in doc["RepoDigests"]  # type: ignore[operator]
    # The same layer: unpacked once for both images.
    pull(root, f"{registry.host}/busybox:1", "-q")
    assert stored_files(root)[1] == [busybox.diff_id[7:]]
    bad = hutch(root, "pull", "-q", "--tls-verify=false", "--platform", "linux/s390x", name, check=False)
    assert bad.returncode == EXIT_ENGINE and "linux/s390x" in bad.stderr


def test_rmi_beside_a_running_pull_keeps_what_the_pull_claimed(
    busybox: BusyboxImage, registry: RegistryServer, root: Path
) -> None:
    import fcntl

    name = f"{registry.host}/busybox:1"
    pull(root, name, "-q")
    blobs, layers = stored_files(root)
    # A pull holds the gc lock shared from its first claim to its record: hold it as one would.
    fd = os.open(root / "locks" / "gc", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        hutch(root, "rmi", name)
        assert hutch(root, "images", "-q").stdout.split() == []
        assert stored_files(root) == (blobs, layers)  # claimed moments ago: kept for the pull
    finally:
        os.close(fd)
    hutch(root, "image", "prune")
    assert stored_files(root) == ([], [])


def test_rmi_all_removes_images_with_several_tags(
    busybox: BusyboxImage, registry: RegistryServer, root: Path
) -> None:
    pull(root, f"{registry.host}/busybox:1", "-q")
    hutch(root, "tag", f"{registry.host}/busybox:1", "localhost/a:1", "localhost/b:1")
    out = hutch(root, "rmi", "-a").stdout.splitlines()
    assert out[-1] == f"Deleted: {busybox.config_digest[7:]}" and len(out) == 4
    assert hutch(root, "images", "-q").stdout.split() == []
    assert stored_files(root) == ([], [])


def test_kill_while_unpacking_then_pull_again(registry: RegistryServer, root: Path) -> None:
    import gzip
    import io
    import tarfile
    import time

    from tests.integration.registry_fixtures import image_config, image_manifest, sha256

    from hutch.image.registry import Registry
    from hutch.oci import image as oci_image
    from hutch.oci.digest import parse

    # A layer of many small files, so that unpacking it takes long enough to be killed in the middle.
    count = 20000
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in range(100):
            info = tarfile.TarInfo(f"d{d}")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for i in range(count):
            data = f"file {i}\n".encode()
            info = tarfile.TarInfo(f"d{i % 100}/f{i}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    layer = gzip.compress(tar_bytes, compresslevel=1)
    config = image_config([sha256(tar_bytes)])
    manifest = image_manifest(config, [layer])
    with Registry(registry.host, plain_http=True, use_auth_files=False) as reg:
        upload.push_blob(reg, "many", parse(sha256(layer), "t"), len(layer), layer)
        upload.push_blob(reg, "many", parse(sha256(config), "t"), len(config), config)
        upload.put_manifest(reg, "many", "1", manifest, oci_image.OCI_MANIFEST)

    name = f"{registry.host}/many:1"
    layer_dir = root / "layers" / sha256(tar_bytes)[7:]
    proc = subprocess.Popen([*HUTCH, "--root", str(root), "pull", "-q", "--tls-verify=false", name])
    deadline = time.monotonic() + 60
    while not (layer_dir / "d99").exists():
        assert proc.poll() is None, "the pull ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with _db.Database(str(root / "hutch.db")) as db:
        row = db.layer(parse(sha256(tar_bytes), "t"))
        assert row is not None and row.state == "pulling"
        assert db.images() == []
    assert sum(len(files) for _, _, files in os.walk(layer_dir)) < count  # killed half-way
    assert hutch(root, "images", "-q").stdout.split() == []

    out = pull(root, name, "-q")
    assert out.stdout.strip() == sha256(config)[7:]
    assert sum(len(files) for _, _, files in os.walk(layer_dir)) == count
    with _db.Database(str(root / "hutch.db")) as db:
        row = db.layer(parse(sha256(tar_bytes), "t"))
        assert row is not None and row.state == "unpacked"
    hutch(root, "rmi", name)
    assert stored_files(root) == ([], [])
