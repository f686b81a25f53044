"""Image manifests and indexes (OCI's, and Docker's schema 2 manifest and manifest list) as typed data, and
their descriptors; see hutch.oci.image for the media types and how parse errors are named. `run` reads only an
image's config, so these are parsed only by pull, push, save, load, commit and import.
"""

from __future__ import annotations

from hutch import jsonfast
from hutch.errors import ConfigError
from hutch.oci import digest as _digest
from hutch.oci.image import (
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Platform,
    read_document,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field

    from hutch.oci.digest import Digest
    from hutch.oci.reader import Reader
else:
    from hutch.record import dataclass, field

_SIZE = (0, 2**63 - 1)


@dataclass(slots=True)
class Descriptor:
    """A pointer to content: its media type, digest and size (and where else to find it)."""

    media_type: str
    digest: Digest
    size: int
    urls: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str = ""

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.urls:
            doc["urls"] = self.urls
        if self.annotations:
            doc["annotations"] = self.annotations
        if self.platform is not None:
            p = self.platform
            plat: dict[str, object] = {"architecture": p.architecture, "os": p.os}
            if p.os_version:
                plat["os.version"] = p.os_version
            if p.os_features:
                plat["os.features"] = p.os_features
            if p.variant:
                plat["variant"] = p.variant
            doc["platform"] = plat
        if self.artifact_type:
            doc["artifactType"] = self.artifact_type
        return doc


@dataclass(slots=True)
class Manifest:
    """An OCI image manifest or a Docker schema 2 manifest (`media_type` says which)."""

    media_type: str
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str = ""


@dataclass(slots=True)
class Index:
    """An OCI image index or a Docker manifest list (`media_type` says which)."""

    media_type: str
    manifests: list[Descriptor]
    annotations: dict[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None


def _digest_at(r: Reader, key: str) -> Digest:
    return _digest.parse(r.string(key, required=True), f"{r.source}: {r.at(key)}")


def _platform(r: Reader) -> Platform:
    return Platform(
        os=r.string("os", required=True),
        architecture=r.string("architecture", required=True),
        variant=r.string("variant"),
        os_version=r.string("os.version"),
        os_features=r.strings("os.features"),
    )


def _descriptor(r: Reader) -> Descriptor:
    plat = r.child("platform")
    return Descriptor(
        media_type=r.string("mediaType", required=True),
        digest=_digest_at(r, "digest"),
        size=r.integer("size", _SIZE, required=True),
        urls=r.strings("urls"),
        annotations=r.string_map("annotations"),
        platform=None if plat is None else _platform(plat),
        artifact_type=r.string("artifactType"),
    )


def _schema2(r: Reader) -> None:
    version = r.get("schemaVersion", int, required=True)
    if version != 2:
        raise r.error("schemaVersion", f"schema version {version} is not supported (expected 2)")


def _manifest(r: Reader, media_type: str) -> Manifest:
    _schema2(r)
    subject = r.child("subject")
    if r.get("layers", list, required=True) is None:  # pragma: no cover - get raised
        raise r.error("layers", "required")
    return Manifest(
        media_type=media_type,
        config=_descriptor(r.need("config")),
        layers=[_descriptor(c) for c in r.children("layers")],
        annotations=r.string_map("annotations"),
        subject=None if subject is None else _descriptor(subject),
        artifact_type=r.string("artifactType"),
    )


def _index(r: Reader, media_type: str) -> Index:
    _schema2(r)
    subject = r.child("subject")
    r.get("manifests", list, required=True)
    return Index(
        media_type=media_type,
        manifests=[_descriptor(c) for c in r.children("manifests")],
        annotations=r.string_map("annotations"),
        subject=None if subject is None else _descriptor(subject),
    )


def _media_type(r: Reader, expected: str, known: tuple[str, ...]) -> str:
    """The document's own mediaType (optional in OCI) or `expected`; one of `known`."""
    value = r.string("mediaType") or expected
    if value not in known:
        raise r.error(
            "mediaType", f"unexpected media type {jsonfast.dumps(value)} (expected {' or '.join(known)})"
        )
    return value


def parse_manifest(data: bytes | str, source: str = "manifest", media_type: str = OCI_MANIFEST) -> Manifest:
    """An image manifest; `media_type` is the one the transport said (Content-Type), if the JSON has none."""
    r = read_document(data, source)
    return _manifest(r, _media_type(r, media_type, MANIFEST_TYPES))


def parse_index(data: bytes | str, source: str = "index", media_type: str = OCI_INDEX) -> Index:
    """An image index or manifest list."""
    r = read_document(data, source)
    return _index(r, _media_type(r, media_type, INDEX_TYPES))


def parse_document(data: bytes | str, source: str = "manifest", media_type: str = "") -> Manifest | Index:
    """A manifest or an index, told apart by its mediaType, else the transport's, else its shape."""
    r = read_document(data, source)
    kind = r.string("mediaType") or media_type.split(";")[0].strip()
    if kind in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED) or r.doc.get("schemaVersion") == 1:
        raise ConfigError(f"{source}: Docker schema 1 manifests are not supported")
    if kind in INDEX_TYPES:
        return _index(r, kind)
    if kind in MANIFEST_TYPES:
        return _manifest(r, kind)
    if kind and kind not in ("application/json", "text/plain", "application/octet-stream"):
        raise r.error("mediaType", f"unknown manifest media type {jsonfast.dumps(kind)}")
    if "manifests" in r.doc:
        return _index(r, OCI_INDEX)
    return _manifest(r, OCI_MANIFEST)
