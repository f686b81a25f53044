"""A new image of a base image plus one layer (what `hutch commit` makes of a container): the layer, an
uncompressed OCI tar, is stored and unpacked as pull's layers are, and the image recorded with an OCI manifest
(the base's layer descriptors, then the new one), a config whose rootfs, history and `config` follow, and
`tag` if given, in one transaction.
"""

from __future__ import annotations

import datetime
import hashlib

from hutch import jsonfast
from hutch.errors import ConfigError
from hutch.image import db as _db
from hutch.image import reference as _reference
from hutch.image.pull import clean_up, install_layer, record_image
from hutch.image.storage import Storage
from hutch.oci import digest as _digest
from hutch.oci import image as _image
from hutch.oci import manifest as _manifest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO

_CHUNK = 1 << 20
# A manifest names its layers with its own format's media types (the bytes are the same).
_DOCKER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
_TO_OCI = {_image.DOCKER_LAYER: _image.OCI_LAYER_GZIP, _DOCKER_TAR: _image.OCI_LAYER}
_TO_DOCKER = {_image.OCI_LAYER_GZIP: _image.DOCKER_LAYER, _image.OCI_LAYER: _DOCKER_TAR}


class _Kinds:
    """The media types of one manifest format."""

    def __init__(self, docker: bool) -> None:
        self.manifest = _image.DOCKER_MANIFEST if docker else _image.OCI_MANIFEST
        self.config = _image.DOCKER_CONFIG if docker else _image.OCI_CONFIG
        self.layer = _DOCKER_TAR if docker else _image.OCI_LAYER
        self.rename = _TO_DOCKER if docker else _TO_OCI


def local_tag(name: str) -> str:
    """podman's name for a committed image: `localhost/NAME:latest` for a bare name."""
    ref = _reference.parse(name, normalize=False)
    if not ref.domain:
        ref = _reference.parse("localhost/" + name, normalize=False)
    if ref.digest is not None:
        raise ConfigError(f"{name}: an image cannot be committed to a digest")
    return str(ref.with_default_tag())


def commit_image(
    storage: Storage,
    base: _db.Image,
    layer: BinaryIO,
    *,
    config: dict[str, Any],
    tag: str = "",
    history: dict[str, Any] | None = None,
    author: str = "",
    docker: bool = False,
    say: Callable[[str], None] | None = None,
) -> _db.Image:
    """Record `base` + the layer tar in `layer` (a seekable file at 0) as an image whose container config is
    `config`, tagged `tag`; an OCI manifest, or with `docker` a Docker schema 2 one. Nothing is left behind
    on failure."""
    kinds = _Kinds(docker)
    try:
        with storage.pull_lock():
            return _commit(
                storage, base, layer, config, tag, history or {}, author, kinds, say or (lambda _l: None)
            )
    except BaseException:
        clean_up(storage)
        raise


def _commit(
    storage: Storage,
    base: _db.Image,
    layer: BinaryIO,
    config: dict[str, Any],
    tag: str,
    history: dict[str, Any],
    author: str,
    kinds: _Kinds,
    say: Callable[[str], None],
) -> _db.Image:
    say("Getting image source signatures")
    h = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: layer.read(_CHUNK), b""):
        h.update(chunk)
        size += len(chunk)
    diff_id = _digest.Digest("sha256", h.hexdigest())
    db = storage.db
    db.claim_blob(diff_id, size)
    layer.seek(0)
    storage.blobs.ingest(diff_id, size, iter(lambda: layer.read(_CHUNK), b""), "commit: layer")
    say(f"Copying blob {diff_id.short} done")
    desc = _manifest.Descriptor(kinds.layer, diff_id, size)
    new_ref = install_layer(storage, diff_id, desc, "commit: layer")
    base_manifest = storage.manifest(base)
    doc = storage.config_document(base)
    now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    doc["created"] = now
    doc["config"] = config
    if author:
        doc["author"] = author
    rootfs = dict(doc.get("rootfs") or {"type": "layers"})
    rootfs["diff_ids"] = [*list(rootfs.get("diff_ids") or []), str(diff_id)]
    doc["rootfs"] = rootfs
    doc["history"] = [*list(doc.get("history") or []), {"created": now, **history}]
    config_data = jsonfast.dumps(doc).encode()
    config_digest = _digest.of_bytes(config_data)
    db.claim_blob(config_digest, len(config_data))
    storage.blobs.ingest_bytes(config_data, config_digest, "commit: config")
    say(f"Copying config {config_digest.short} done")
    config_desc = _manifest.Descriptor(kinds.config, config_digest, len(config_data))
    layers = [
        _manifest.Descriptor(kinds.rename.get(d.media_type, d.media_type), d.digest, d.size)
        for d in base_manifest.layers
    ] + [desc]
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": kinds.manifest,
        "config": config_desc.to_json(),
        "layers": [d.to_json() for d in layers],
    }
    manifest_data = jsonfast.dumps(manifest_doc).encode()
    manifest_digest = _digest.of_bytes(manifest_data)
    db.claim_blob(manifest_digest, len(manifest_data))
    say("Writing manifest to image destination")
    storage.blobs.ingest_bytes(manifest_data, manifest_digest, "commit: manifest")
    refs = [_db.LayerRef(layer.diff_id, layer.digest) for layer in db.image_layers(base.id)] + [new_ref]
    parsed = _image.parse_config(config_data, "commit: config")
    manifest = _manifest.Manifest(kinds.manifest, config_desc, layers)
    return record_image(
        storage,
        manifest_digest,
        len(manifest_data),
        kinds.manifest,
        manifest,
        parsed,
        refs,
        [tag] if tag else [],
    )
