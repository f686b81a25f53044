"""hutch.oci.image: manifests, indexes and image configs as typed data; platform selection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hutch.errors import ConfigError, NotFoundError
from hutch.oci import image
from hutch.oci.digest import of_bytes
from hutch.oci.image import Index, Platform, select_platform

D1 = str(of_bytes(b"one"))
D2 = str(of_bytes(b"two"))
D3 = str(of_bytes(b"three"))


def _manifest(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": image.OCI_MANIFEST,
        "config": {"mediaType": image.OCI_CONFIG, "digest": D1, "size": 3},
        "layers": [
            {
                "mediaType": image.OCI_LAYER_GZIP,
                "digest": D2,
                "size": 3,
                "annotations": {"org.example": "x"},
                "urls": ["https://example.invalid/blob"],
            }
        ],
    }
    doc.update(extra)
    return doc


def _b(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_oci_manifest_parses_into_descriptors() -> None:
    m = image.parse_manifest(_b(_manifest(annotations={"a": "b"})))
    assert m.media_type == image.OCI_MANIFEST
    assert str(m.config.digest) == D1 and m.config.size == 3 and m.config.media_type == image.OCI_CONFIG
    (layer,) = m.layers
    assert str(layer.digest) == D2
    assert layer.annotations == {"org.example": "x"}
    assert layer.urls == ["https://example.invalid/blob"]
    assert m.annotations == {"a": "b"}


def test_docker_schema2_manifest_parses_as_manifest() -> None:
    doc = _manifest(mediaType=image.DOCKER_MANIFEST)
    doc["config"]["mediaType"] = image.DOCKER_CONFIG
    doc["layers"][0]["mediaType"] = image.DOCKER_LAYER
    m = image.parse_document(_b(doc))
    assert isinstance(m, image.Manifest)
    assert m.media_type == image.DOCKER_MANIFEST
    assert m.layers[0].media_type == image.DOCKER_LAYER


def test_manifest_without_media_type_takes_the_transports() -> None:
    doc = _manifest()
    del doc["mediaType"]
    assert image.parse_document(_b(doc), media_type=image.DOCKER_MANIFEST).media_type == image.DOCKER_MANIFEST
    assert image.parse_document(_b(doc)).media_type == image.OCI_MANIFEST


def _index(*platforms: dict[str, Any] | None, media_type: str = image.OCI_INDEX) -> dict[str, Any]:
    manifests = []
    for i, p in enumerate(platforms):
        d: dict[str, Any] = {
            "mediaType": image.OCI_MANIFEST,
            "digest": str(of_bytes(str(i).encode())),
            "size": i,
        }
        if p is not None:
            d["platform"] = p
        manifests.append(d)
    return {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}


def test_index_and_docker_manifest_list_parse_into_index() -> None:
    for media_type in (image.OCI_INDEX, image.DOCKER_MANIFEST_LIST):
        doc = _index(
            {"os": "linux", "architecture": "arm", "variant": "v7", "os.features": ["f"], "os.version": "1"},
            media_type=media_type,
        )
        idx = image.parse_document(_b(doc))
        assert isinstance(idx, Index) and idx.media_type == media_type
        assert idx.manifests[0].platform == Platform("linux", "arm", "v7", "1", ["f"])


def test_schema1_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="schema 1"):
        image.parse_document(_b({"schemaVersion": 1, "name": "x", "fsLayers": []}))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["layers"][0].update(digest="sha256:abc"), r"src: layers\[0\]\.digest: invalid digest"),
        (lambda d: d["layers"][0].update(size="3"), r"src: layers\[0\]\.size: expected an integer"),
        (lambda d: d["config"].pop("mediaType"), r"src: config\.mediaType: required"),
        (lambda d: d.pop("config"), r"src: config: required"),
        (lambda d: d.update(schemaVersion=3), r"src: schemaVersion: schema version 3"),
        (lambda d: d.update(mediaType=image.OCI_INDEX), r"src: mediaType: unexpected media type"),
        (
            lambda d: d["layers"][0].update(platform={"os": 1}),
            r"src: layers\[0\]\.platform\.os: expected a string",
        ),
    ],
)
def test_manifest_errors_name_document_and_path(edit: Any, message: str) -> None:
    doc = _manifest()
    edit(doc)
    with pytest.raises(ConfigError, match=message):
        image.parse_manifest(_b(doc), "src")


def test_invalid_json_names_document() -> None:
    with pytest.raises(ConfigError, match=r"^reg/x:1: line 1 column 2: invalid JSON"):
        image.parse_manifest(b"{x", "reg/x:1")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        image.parse_index(b"[]", "idx")


CONFIG = {
    "architecture": "arm64",
    "os": "linux",
    "variant": "v8",
    "created": "2024-01-01T00:00:00Z",
    "config": {
        "Env": ["PATH=/bin"],
        "Entrypoint": ["/bin/sh"],
        "Cmd": None,
        "WorkingDir": "/w",
        "User": "1000:1000",
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}},
        "Labels": {"k": "v"},
        "StopSignal": "SIGTERM",
    },
    "rootfs": {"type": "layers", "diff_ids": [D1, D3]},
    "history": [{"created_by": "ADD x", "created": "2024"}, {"created_by": "ENV", "empty_layer": True}],
}


def test_image_config_fields() -> None:
    c = image.parse_config(_b(CONFIG))
    assert c.platform == Platform("linux", "arm64", "v8")
    cc = c.config
    assert cc.env == ["PATH=/bin"]
    assert cc.entrypoint == ["/bin/sh"] and cc.cmd is None
    assert cc.working_dir == "/w" and cc.user == "1000:1000"
    assert cc.exposed_ports == ["80/tcp", "53/udp"] and cc.volumes == ["/data"]
    assert cc.labels == {"k": "v"} and cc.stop_signal == "SIGTERM"
    assert [str(d) for d in c.diff_ids] == [D1, D3]
    assert [h.empty_layer for h in c.history] == [False, True]
    assert c.history[0].created_by == "ADD x"


def test_image_config_errors_name_path() -> None:
    doc = json.loads(json.dumps(CONFIG))
    doc["rootfs"]["diff_ids"][1] = "sha256:nothex"
    with pytest.raises(ConfigError, match=r"cfg: rootfs\.diff_ids\[1\]: invalid digest"):
        image.parse_config(_b(doc), "cfg")
    doc = json.loads(json.dumps(CONFIG))
    doc["config"]["Env"] = ["A=1", 2]
    with pytest.raises(ConfigError, match=r"cfg: config\.Env\[1\]: expected a string, got 2"):
        image.parse_config(_b(doc), "cfg")
    doc = json.loads(json.dumps(CONFIG))
    doc["config"]["Labels"] = {"k": 1}
    with pytest.raises(ConfigError, match=r'cfg: config\.Labels\["k"\]: expected a string'):
        image.parse_config(_b(doc), "cfg")


def test_empty_entrypoint_differs_from_absent() -> None:
    c = image.parse_config(_b({"os": "linux", "architecture": "amd64", "config": {"Entrypoint": []}}))
    assert c.config.entrypoint == [] and c.config.cmd is None


def test_descriptor_round_trips_through_json() -> None:
    m = image.parse_manifest(_b(_manifest()))
    d = m.layers[0]
    d.platform = Platform("linux", "arm", "v7")
    again = image.parse_index(_b({"schemaVersion": 2, "manifests": [d.to_json()]})).manifests[0]
    assert again == d


# --- platforms --------------------------------------------------------------------------------------------


def _idx(*platforms: dict[str, Any] | None) -> Index:
    return image.parse_index(_b(_index(*platforms)))


def _pick(index: Index, wanted: str) -> int:
    chosen = select_platform(index, Platform.parse(wanted))
    return index.manifests.index(chosen)


AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}
ARM64_V8 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
ARM_V6 = {"os": "linux", "architecture": "arm", "variant": "v6"}
ARM_V7 = {"os": "linux", "architecture": "arm", "variant": "v7"}
ARM = {"os": "linux", "architecture": "arm"}
ATTESTATION = {"os": "unknown", "architecture": "unknown"}


def test_select_by_os_and_architecture() -> None:
    index = _idx(ATTESTATION, ARM64, AMD64)
    assert _pick(index, "linux/amd64") == 2
    assert _pick(index, "linux/arm64") == 1


def test_arm64_variant_defaults_to_v8_on_both_sides() -> None:
    assert _pick(_idx(AMD64, ARM64), "linux/arm64/v8") == 1
    assert _pick(_idx(AMD64, ARM64_V8), "linux/arm64") == 1


def test_arm_variant_defaults_to_v7_and_falls_back_to_older_variants() -> None:
    assert _pick(_idx(ARM_V6, ARM_V7), "linux/arm") == 1
    assert _pick(_idx(ARM_V6, ARM), "linux/arm/v7") == 1  # arm without a variant means v7
    assert _pick(_idx(AMD64, ARM_V6), "linux/arm/v7") == 1  # v7 runs v6 when there is no v7
    with pytest.raises(NotFoundError):
        select_platform(_idx(ARM_V7), Platform("linux", "arm", "v6"))  # but v6 does not run v7


def test_no_match_names_what_the_index_has() -> None:
    with pytest.raises(NotFoundError, match=r"linux/s390x.*linux/amd64, linux/arm64"):
        select_platform(_idx(AMD64, ARM64), Platform("linux", "s390x"))
    with pytest.raises(NotFoundError):
        select_platform(_idx(AMD64), Platform("windows", "amd64"))


def test_lone_manifest_without_platform_is_taken() -> None:
    assert _pick(_idx(None), "linux/amd64") == 0


def test_default_is_host_platform() -> None:
    host = image.host_platform()
    index = _idx({"os": "linux", "architecture": host.architecture, "variant": host.variant}, ATTESTATION)
    assert select_platform(index) is index.manifests[0]


def test_platform_parse() -> None:
    assert Platform.parse("linux/arm/v7") == Platform("linux", "arm", "v7")
    assert str(Platform.parse("linux/amd64")) == "linux/amd64"
    for bad in ("linux", "linux//v7", "a/b/c/d"):
        with pytest.raises(ConfigError):
            Platform.parse(bad)
