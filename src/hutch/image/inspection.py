"""What `podman image inspect` shows of a stored image, and the parts of it other commands show too (the
config as stored, the repo digests)."""

from __future__ import annotations

from hutch import jsonfast
from hutch.errors import ConfigError
from hutch.image.storage import Storage, repository

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.image import db as _db


def config_document(storage: Storage, image: _db.Image) -> dict[str, Any]:
    """The image config as stored, as JSON (for inspect, which shows it as it is)."""
    doc = jsonfast.loads(storage.blobs.read(image.id).decode())
    if not isinstance(doc, dict):
        raise ConfigError(f"image config {image.id}: not a JSON object")
    return doc


def inspect(storage: Storage, image: _db.Image) -> dict[str, Any]:
    """podman image inspect's object for `image`."""
    config = config_document(storage, image)
    layers = storage.db.image_layers(image.id)
    paths = [layer.path for layer in layers]
    graph: dict[str, str] = {}
    if paths:
        graph["UpperDir"] = paths[-1]
        if len(paths) > 1:
            graph["LowerDir"] = ":".join(reversed(paths[:-1]))
    history = config.get("history") or []
    return {
        "Id": image.id.hex,
        "Digest": str(image.digest),
        "RepoTags": [t for t in image.tags if "@" not in t],
        "RepoDigests": repo_digests(image),
        "Parent": "",
        "Comment": config.get("comment", ""),
        "Created": image.created or "",
        "Config": config.get("config") or {},
        "Version": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Architecture": image.architecture,
        "Os": image.os,
        **({"Variant": image.variant} if image.variant else {}),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Name": "overlay", "Data": graph},
        "RootFS": {"Type": "layers", "Layers": [str(d) for d in image.layers]},
        "Labels": (config.get("config") or {}).get("Labels") or None,
        "Annotations": {},
        "ManifestType": image.media_type,
        "User": (config.get("config") or {}).get("User", ""),
        "History": history,
        "NamesHistory": [],
    }


def repo_digests(image: _db.Image) -> list[str]:
    """podman's RepoDigests: each repository of the image with the digest pulled and, for an index, the
    platform manifest's too."""
    digests = [image.digest] + ([image.manifest_digest] if image.index_digest is not None else [])
    out: list[str] = []
    for t in image.tags:
        repo = repository(t)
        for d in digests:
            rd = f"{repo}@{d}"
            if rd not in out:
                out.append(rd)
    return out
