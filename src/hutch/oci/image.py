"""The OCI image spec (and Docker's schema 2) as typed data: descriptors, manifests, indexes, image configs.

`parse_manifest`, `parse_index`, `parse_config` and `parse_document` take the raw bytes a registry or a
layout gave; every ConfigError names the document (`source`, e.g. the image reference and digest) and the
JSON path of the offending value, as hutch.oci.config does. Unknown keys are ignored. Docker's schema 2
manifest and manifest list have the same shape as OCI's manifest and index and parse into the same types;
`media_type` says which one it was. `select_platform(index, wanted)` picks a manifest for a platform.
"""

from __future__ import annotations

import os

from hutch import jsonfast
from hutch.errors import ConfigError, NotFoundError
from hutch.oci import digest as _digest
from hutch.oci.config import Reader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field
if TYPE_CHECKING:
    from hutch.oci.digest import Digest

# --- media types --------------------------------------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
LAYER_TYPES = (
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_LAYER_NONDIST,
    OCI_LAYER_NONDIST_GZIP,
    OCI_LAYER_NONDIST_ZSTD,
    DOCKER_LAYER,
    DOCKER_FOREIGN_LAYER,
)
# The Accept header of a manifest GET: what hutch can read, best first.
MANIFEST_ACCEPT = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)

_SIZE = (0, 2**63 - 1)


# --- the data -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Platform:
    """A platform: GOOS and GOARCH names (`linux`, `amd64`, `arm64`), with an optional arm variant (`v7`)."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @staticmethod
    def parse(text: str) -> Platform:
        """`os/arch[/variant]`, as --platform takes it (`linux/arm64/v8`, `linux/amd64`)."""
        parts = text.split("/")
        if not 2 <= len(parts) <= 3 or not all(parts):
            raise ConfigError(f"platform {text!r}: expected os/architecture[/variant]")
        return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


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


@dataclass(slots=True)
class ContainerConfig:
    """An image config's `config`: the defaults of a container made from the image.

    `entrypoint` and `cmd` are None when the image does not set them (which differs from an empty list when
    a run overrides one of them). `exposed_ports` are keys like `80/tcp`; `volumes` are paths.
    """

    user: str = ""
    exposed_ports: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    volumes: list[str] = field(default_factory=list)
    working_dir: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    healthcheck: dict[str, object] | None = None  # Docker's Healthcheck (Test, Interval, ...), as written


@dataclass(slots=True)
class History:
    """One step of an image config's history; `empty_layer` steps made no layer."""

    created: str = ""
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False


@dataclass(slots=True)
class ImageConfig:
    """An image config (OCI or Docker): the platform, the container defaults and the layers' diff IDs."""

    architecture: str
    os: str
    config: ContainerConfig = field(default_factory=ContainerConfig)
    diff_ids: list[Digest] = field(default_factory=list)
    history: list[History] = field(default_factory=list)
    variant: str = ""
    os_version: str = ""
    os_features: list[str] = field(default_factory=list)
    created: str = ""
    author: str = ""

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant, self.os_version, list(self.os_features))


# --- the parsers --------------------------------------------------------------------------------------------


def _load(data: bytes | str, source: str) -> Reader:
    try:
        text = data.decode() if isinstance(data, bytes) else data
        doc = jsonfast.loads(text)
    except jsonfast.DecodeError as e:
        raise ConfigError(f"{source}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{source}: invalid JSON: not UTF-8 text ({e.reason})") from None
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{source}: expected a JSON object, got {'an array' if isinstance(doc, list) else doc}"
        )
    return Reader(doc, "", source)


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
    r = _load(data, source)
    return _manifest(r, _media_type(r, media_type, MANIFEST_TYPES))


def parse_index(data: bytes | str, source: str = "index", media_type: str = OCI_INDEX) -> Index:
    """An image index or manifest list."""
    r = _load(data, source)
    return _index(r, _media_type(r, media_type, INDEX_TYPES))


def parse_document(data: bytes | str, source: str = "manifest", media_type: str = "") -> Manifest | Index:
    """A manifest or an index, told apart by its mediaType, else the transport's, else its shape."""
    r = _load(data, source)
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


def _container_config(r: Reader) -> ContainerConfig:
    def opt_strings(key: str) -> list[str] | None:
        return None if r.doc.get(key) is None else r.strings(key)

    def keys(key: str) -> list[str]:
        return list(r.get(key, dict) or {})

    return ContainerConfig(
        user=r.string("User"),
        exposed_ports=keys("ExposedPorts"),
        env=r.strings("Env"),
        entrypoint=opt_strings("Entrypoint"),
        cmd=opt_strings("Cmd"),
        volumes=keys("Volumes"),
        working_dir=r.string("WorkingDir"),
        labels=r.string_map("Labels"),
        stop_signal=r.string("StopSignal"),
        healthcheck=r.get("Healthcheck", dict),
    )


def _history(r: Reader) -> History:
    return History(
        created=r.string("created"),
        created_by=r.string("created_by"),
        author=r.string("author"),
        comment=r.string("comment"),
        empty_layer=r.boolean("empty_layer"),
    )


def parse_config(data: bytes | str, source: str = "image config") -> ImageConfig:
    """An image config (application/vnd.oci.image.config.v1+json or Docker's)."""
    r = _load(data, source)
    rootfs = r.child("rootfs")
    diff_ids: list[Digest] = []
    if rootfs is not None:
        kind = rootfs.string("type")
        if kind and kind != "layers":
            raise rootfs.error("type", f"unknown rootfs type {jsonfast.dumps(kind)} (expected layers)")
        for i, text in enumerate(rootfs.strings("diff_ids")):
            diff_ids.append(_digest.parse(text, f"{r.source}: {rootfs.at(f'diff_ids[{i}]')}"))
    cfg = r.child("config")
    return ImageConfig(
        architecture=r.string("architecture"),
        os=r.string("os"),
        config=ContainerConfig() if cfg is None else _container_config(cfg),
        diff_ids=diff_ids,
        history=[_history(h) for h in r.children("history")],
        variant=r.string("variant"),
        os_version=r.string("os.version"),
        os_features=r.strings("os.features"),
        created=r.string("created"),
        author=r.string("author"),
    )


# --- platforms ----------------------------------------------------------------------------------------------

# uname -m to GOARCH (and arm variant).
_MACHINES = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv8l": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
    "mips64": ("mips64", ""),
    "loongarch64": ("loong64", ""),
}


def host_platform() -> Platform:
    """The platform this machine runs natively."""
    machine = os.uname().machine
    arch, variant = _MACHINES.get(machine, (machine, ""))
    return Platform("linux", arch, variant)


def normalize(p: Platform) -> Platform:
    """Platform names as containerd normalises them: arm64's variant defaults to v8, arm's to v7."""
    arch, variant = p.architecture.lower(), p.variant.lower()
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}.get(
        arch, arch
    )
    if p.architecture.lower() == "armel" and not variant:
        variant = "v6"
    if arch == "arm64" and variant in ("", "8"):
        variant = "v8"
    elif arch == "arm" and not variant:
        variant = "v7"
    elif arch == "arm" and variant in ("5", "6", "7", "8"):
        variant = "v" + variant
    elif arch == "amd64" and variant == "v1":
        variant = ""
    return Platform(p.os.lower(), arch, variant, p.os_version, list(p.os_features))


def _candidates(wanted: Platform) -> list[tuple[str, str]]:
    """(architecture, variant) pairs that run on `wanted`, best first: arm v7 also runs v6 and v5 images."""
    w = normalize(wanted)
    pairs = [(w.architecture, w.variant)]
    for arch, ladder in (("arm", ("v8", "v7", "v6", "v5")), ("amd64", ("v4", "v3", "v2", ""))):
        if w.architecture == arch and w.variant in ladder:
            pairs += [(arch, v) for v in ladder[ladder.index(w.variant) + 1 :]]
    return pairs


def select_platform(index: Index, wanted: Platform | None = None) -> Descriptor:
    """The manifest of `index` for `wanted` (default: the host's), by os, architecture and variant.

    A manifest without a platform is taken only if it is the sole image manifest of the index. Raises
    NotFoundError naming the platforms the index has.
    """
    wanted = host_platform() if wanted is None else wanted
    w = normalize(wanted)
    images = [d for d in index.manifests if d.media_type in MANIFEST_TYPES or d.media_type in INDEX_TYPES]
    for arch, variant in _candidates(wanted):
        for d in images:
            if d.platform is None:
                continue
            p = normalize(d.platform)
            if p.os == w.os and p.architecture == arch and p.variant == variant:
                return d
    bare = [d for d in images if d.platform is None]
    if len(bare) == 1 and len(images) == 1:
        return bare[0]
    have = sorted({str(d.platform) for d in images if d.platform is not None})
    raise NotFoundError(
        f"no image for platform {wanted} in the index (it has: {', '.join(have) if have else 'none'})"
    )
