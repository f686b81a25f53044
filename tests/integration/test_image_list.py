"""`hutch images` as podman lists them (--format templates, --filter, --digests, --no-trunc), the unpacked
SIZE, and what a pull through an index records (the index digest beside the platform manifest's), against
Debian's docker-registry with images pushed by the registry client.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration import registry_fixtures
from tests.integration.registry_fixtures import (
    BusyboxImage,
    RegistryServer,
    busybox_layer,
    image_config,
    image_manifest,
    sha256,
)
from tests.integration.test_image_cli import EXIT_ENGINE, human, hutch, inspect, pull

from hutch.image import upload
from hutch.image.registry import Registry
from hutch.oci import image as oci_image
from hutch.oci.digest import parse

registry = registry_fixtures.registry
busybox = registry_fixtures.busybox


def push_image(host: str, repo: str, tag: str, arch: str = "amd64", **config: object) -> tuple[bytes, bytes]:
    """Push an image of the busybox layer with its own config (`created`, labels, ...): (config, manifest)."""
    tar_bytes, layer = busybox_layer()
    created = str(config.pop("created", "2024-01-01T00:00:00Z"))
    doc = json.loads(image_config([sha256(tar_bytes)], arch=arch, **config))
    doc["created"] = created
    cfg = json.dumps(doc, sort_keys=True).encode()
    manifest = image_manifest(cfg, [layer])
    with Registry(host, plain_http=True, use_auth_files=False) as reg:
        upload.push_blob(reg, repo, parse(sha256(layer), "t"), len(layer), layer)
        upload.push_blob(reg, repo, parse(sha256(cfg), "t"), len(cfg), cfg)
        upload.put_manifest(reg, repo, tag, manifest, oci_image.OCI_MANIFEST)
    return cfg, manifest


def test_format_filter_digests_and_no_trunc(registry: RegistryServer, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    host = registry.host
    old_cfg, old_man = push_image(host, "lst/old", "1", created="2020-01-01T00:00:00Z", Labels={"tier": "db"})
    mid_cfg, _ = push_image(host, "lst/mid", "2", created="2022-01-01T00:00:00Z", Labels={"tier": "web"})
    new_cfg, _ = push_image(host, "lst/new", "3", created="2024-06-01T00:00:00Z")
    for name in ("lst/old:1", "lst/mid:2", "lst/new:3"):
        pull(root, f"{host}/{name}", "-q")
    old_id, mid_id, new_id = (sha256(c)[7:] for c in (old_cfg, mid_cfg, new_cfg))
    hutch(root, "tag", f"{host}/lst/old:1", "localhost/extra:x")
    mid_digest = inspect(root, mid_id)["Digest"]

    # A plain template: one line per tag, no header, fields as podman names them.
    out = hutch(root, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}").stdout
    lines = sorted(out.splitlines())
    assert lines == sorted(
        [
            f"{host}/lst/old:1 {old_id[:12]} {sha256(old_man)}",
            f"localhost/extra:x {old_id[:12]} {sha256(old_man)}",
            f"{host}/lst/mid:2 {mid_id[:12]} {mid_digest}",
            f"{host}/lst/new:3 {new_id[:12]} " + inspect(root, new_id)["Digest"],
        ]
    )
    # A table: podman's headers and tabwriter padding.
    table = hutch(
        root, "images", "--format", "table {{.ID}}\\t{{.Size}}\\t{{.CreatedSince}}"
    ).stdout.splitlines()
    assert table[0].split() == ["IMAGE", "ID", "SIZE", "CREATED"]
    assert table[0].index("SIZE") == table[1].index(human(inspect(root, new_id)["Size"]))  # type: ignore[arg-type]
    assert "years ago" in table[-1] or "months ago" in table[-1]
    assert len(hutch(root, "images", "--noheading", "--format", "table {{.ID}}").stdout.splitlines()) == 4

    def ids(*flags: str) -> list[str]:
        return hutch(root, "images", "-q", *flags).stdout.split()

    assert ids("--filter", "reference=*/lst/mid") == [mid_id[:12]]
    assert ids("--filter", "reference=extra") == [old_id[:12]]
    assert ids("--filter", "reference=new:3") == [new_id[:12]]
    assert sorted(ids("--filter", "reference=mid", "--filter", "reference=new")) == sorted(
        [mid_id[:12], new_id[:12]]
    )
    assert ids("--filter", "label=tier=db") == [old_id[:12]]
    assert sorted(ids("--filter", "label=tier")) == sorted([old_id[:12], mid_id[:12]])
    assert ids("--filter", "label=tier", "--filter", "reference=*mid*") == [mid_id[:12]]
    assert ids("--filter", f"before={host}/lst/mid:2") == [old_id[:12]]
    assert ids("--filter", f"since={host}/lst/mid:2") == [new_id[:12]]
    assert ids("--filter", "dangling=true") == []
    assert len(ids("--filter", "dangling=false")) == 3
    assert ids("-q", "--no-trunc", "--filter", "reference=*new*") == [f"sha256:{new_id}"]

    digests = hutch(root, "images", "--digests", "--filter", "reference=*old*").stdout.splitlines()
    assert digests[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    assert sha256(old_man) in digests[1] and old_id[:12] in digests[1]
    full = hutch(root, "images", "--no-trunc", "--filter", "reference=*lst/old*").stdout.splitlines()
    assert f"sha256:{old_id}" in full[1]

    for bad, word in (
        ("--filter=colour=red", "colour"),
        ("--filter=reference", "reference"),
        ("--format={{.Nope}}", "Nope"),
    ):
        proc = hutch(root, "images", bad, check=False)
        assert proc.returncode == EXIT_ENGINE and proc.stderr.startswith("Error: ") and word in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""

    # The tag moves to a newer push: the image it left is dangling, listed as <none> <none>.
    push_image(host, "lst/new", "3", created="2025-01-01T00:00:00Z")
    pull(root, f"{host}/lst/new:3", "-q")
    dangling = hutch(
        root, "images", "--filter", "dangling=true", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"
    )
    assert dangling.stdout.splitlines() == [f"<none> <none> {new_id[:12]}"]
    # Pulled by digest only: the repository, without a tag.
    hutch(root, "rmi", f"{host}/lst/mid:2")
    pull(root, f"{host}/lst/mid@{mid_digest}", "-q")
    by_digest = hutch(root, "images", "--filter", "reference=*mid*", "--format", "{{.Repository}} {{.Tag}}")
    assert by_digest.stdout.splitlines() == [f"{host}/lst/mid <none>"]


def test_size_is_the_unpacked_size(busybox: BusyboxImage, registry: RegistryServer, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    name = f"{registry.host}/busybox:1"
    pull(root, name, "-q")
    tar_bytes, layer = busybox_layer()
    expected = len(busybox.manifest) + len(busybox.config) + len(tar_bytes)
    assert len(tar_bytes) > 1.5 * len(layer)  # the compressed size would be visibly smaller
    doc = inspect(root, name)
    assert doc["Size"] == doc["VirtualSize"] == expected
    listed = json.loads(hutch(root, "images", "--format", "json").stdout)
    assert listed[0]["Size"] == expected
    assert hutch(root, "images", "--format", "{{.Size}}").stdout.strip() == human(expected)


def test_pull_of_an_index_records_both_digests(
    busybox: BusyboxImage, registry: RegistryServer, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    host = registry.host
    arm_cfg, arm_man = push_image(host, "idx", "arm", arch="arm64")
    amd_cfg, amd_man = push_image(host, "idx", "amd")
    index = {
        "schemaVersion": 2,
        "mediaType": oci_image.OCI_INDEX,
        "manifests": [
            {"mediaType": oci_image.OCI_MANIFEST, "digest": sha256(amd_man), "size": len(amd_man),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": oci_image.OCI_MANIFEST, "digest": sha256(arm_man), "size": len(arm_man),
             "platform": {"os": "linux", "architecture": "arm64"}},
        ],
    }  # fmt: skip
    data = json.dumps(index).encode()
    with Registry(host, plain_http=True, use_auth_files=False) as reg:
        upload.put_manifest(reg, "idx", "multi", data, oci_image.OCI_INDEX)
    name = f"{host}/idx:multi"
    pull(root, name, "-q", "--platform", "linux/amd64")
    doc = inspect(root, name)
    assert doc["Id"] == sha256(amd_cfg)[7:]
    assert doc["Digest"] == sha256(data)
    assert doc["RepoDigests"] == [f"{host}/idx@{sha256(data)}", f"{host}/idx@{sha256(amd_man)}"]
    out = hutch(root, "images", "--digests", "--format", "{{.Digest}}").stdout
    assert out.strip() == sha256(data)
    # Either digest finds the image.
    assert inspect(root, f"{host}/idx@{sha256(data)}")["Id"] == doc["Id"]
    assert inspect(root, f"{host}/idx@{sha256(amd_man)}")["Id"] == doc["Id"]
