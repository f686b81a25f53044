"""The OCI image spec (and Docker's schema 2) as typed data: media types, platforms, image configs; manifests,
indexes and descriptors are in hutch.oci.manifest, the choice of a platform in hutch.oci.platforms (both
also reachable from here, imported on first use: `run` needs neither).

`parse_config` and the parsers of hutch.oci.manifest take the raw bytes a registry or a layout gave; every
ConfigError names the document (`source`, e.g. the image reference and digest) and the JSON path of the
offending value, as hutch.oci.config does. Unknown keys are ignored. Docker's schema 2 manifest and manifest
list have the same shape as OCI's manifest and index and parse into the same types; `media_type` says which
one it was.
"""

from __future__ import annotations

from hutch import jsonfast
from hutch.errors import ConfigError
from hutch.errors import NotFoundError as NotFoundError  # select_platform's, caught as image.NotFoundError
from hutch.oci import digest as _digest
from hutch.oci.reader import Reader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field
if TYPE_CHECKING:
    from hutch.oci.digest import Digest

    # Re-exported by __getattr__ at run time.
    from hutch.oci.manifest import Descriptor as Descriptor
    from hutch.oci.manifest import Index as Index
    from hutch.oci.manifest import Manifest as Manifest
    from hutch.oci.manifest import parse_document as parse_document
    from hutch.oci.manifest import parse_index as parse_index
    from hutch.oci.manifest import parse_manifest as parse_manifest
    from hutch.oci.platforms import host_platform as host_platform
    from hutch.oci.platforms import normalize as normalize
    from hutch.oci.platforms import select_platform as select_platform

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


def read_document(data: bytes | str, source: str) -> Reader:
    """The JSON object in `data`, to read with its path named in errors."""
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
    r = read_document(data, source)
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


# Where the names this module had before `run` stopped importing them live now.
_MOVED = {
    "Descriptor": "manifest",
    "Manifest": "manifest",
    "Index": "manifest",
    "parse_manifest": "manifest",
    "parse_index": "manifest",
    "parse_document": "manifest",
    "host_platform": "platforms",
    "normalize": "platforms",
    "select_platform": "platforms",
}


def __getattr__(name: str) -> object:
    """A name of hutch.oci.manifest or hutch.oci.platforms, imported on first use."""
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"hutch.oci.{module}"), name)
