"""An image's history as podman shows it: the config's history entries, newest first, lined up with the layers.

As c/common's libimage does: walking the history from the newest entry, the current layer starts at the
image's top layer; an entry that made a layer (not `empty_layer`) gets that layer's uncompressed size and
moves the walk to the layer below. An entry whose current layer is the top layer of a stored image (this one,
or one it was built on) is shown with that image's id, once; the others are `<missing>`.
"""

from __future__ import annotations

from hutch.image import db as _db
from hutch.image.storage import Storage
from hutch.oci import image as _image

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field

MISSING = "<missing>"


@dataclass(slots=True)
class Entry:
    id: str  # an image id (hex), or <missing>
    created: str  # as the config has it (RFC 3339), or ""
    created_by: str
    size: int
    comment: str
    tags: list[str] = field(default_factory=list)


def history(storage: Storage, image: _db.Image) -> list[Entry]:
    """The history of the stored `image`, newest first."""
    config = _image.parse_config(storage.blobs.read(image.id), f"image {image.id.short}: config")
    layers = storage.db.image_layers(image.id)
    sizes = [layer.unpacked_size or 0 for layer in layers]
    diff_ids = [layer.diff_id for layer in layers]
    by_chain: dict[tuple[str, ...], list[_db.Image]] = {}
    for other in storage.db.images():
        by_chain.setdefault(tuple(str(d) for d in other.layers), []).append(other)
    steps = config.history or [_image.History() for _ in layers]
    out: list[Entry] = []
    used: set[str] = set()
    position = len(layers) - 1
    for step in reversed(steps):
        entry = Entry(MISSING, step.created, step.created_by, 0, step.comment)
        if position >= 0:
            if not step.empty_layer:
                entry.size = sizes[position]
            owners = by_chain.get(tuple(str(d) for d in diff_ids[: position + 1]), [])
            if any(o.id == image.id for o in owners):  # the image itself first
                owners = [image] + [o for o in owners if o.id != image.id]
            if owners:
                first = owners[0].id.hex
                if first not in used:
                    entry.id = first
                    used.add(first)
                for o in owners:
                    entry.tags.extend(o.tags)
            if not step.empty_layer:
                position -= 1
        out.append(entry)
    return out
