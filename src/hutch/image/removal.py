"""Removing stored images: rmi (untag, or remove the image), prune, and the garbage collection after both
(see hutch.image.storage for the locks a collect takes beside a pull)."""

from __future__ import annotations

import os

from hutch.errors import HutchError, NotFoundError
from hutch.image.flock import EXCLUSIVE, Flock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.image import db as _db
    from hutch.image.storage import Storage

# What a collect keeps while a pull runs beside it: blobs and layers claimed this recently.
PULL_GRACE = 600.0


class ImageInUseError(HutchError):
    """An image cannot be removed as asked (more than one tag, by id, without force)."""


class UsedByContainerError(ImageInUseError):
    """An image that a container uses cannot be removed (podman rmi exits 2)."""


def remove(
    storage: Storage, names: list[str], *, force: bool = False, skip_in_use: bool = False
) -> list[str]:
    """podman rmi: a tag of an image with other tags is untagged; an image's last tag, or its id, removes
    the image. Returns podman's lines (`Untagged: NAME`, `Deleted: ID`). Then collects garbage. An
    image a container uses is refused (UsedByContainerError), or with `skip_in_use` (rmi -a) kept."""
    lines: list[str] = []
    try:
        for name in names:
            image = storage.find(name)
            tag = _matching_tag(name, image)
            if tag is not None and len(image.tags) > 1:
                storage.db.untag(tag)
                lines.append(f"Untagged: {tag}")
                continue
            if tag is None and len(image.tags) > 1 and not force:
                raise ImageInUseError(
                    f'unable to delete image "{image.id.hex}" by ID with more than one tag '
                    f"({image.tags}): please force removal"
                )
            users = storage.in_use(image.id.hex) if storage.in_use is not None else []
            if users:
                if skip_in_use:
                    continue
                raise UsedByContainerError(
                    f"image used by {users[0]}: image is in use by a container: consider listing "
                    "external containers and force-removing image"
                )
            lines.extend(_remove_image(storage, image))
    finally:
        collect(storage)
    return lines


def _matching_tag(name: str, image: _db.Image) -> str | None:
    if name in image.tags:
        return name
    from hutch.image import reference as _reference

    try:
        ref = str(_reference.parse(name).with_default_tag())
    except _reference.ImageReferenceError:
        return None
    if ref in image.tags:
        return ref
    short = _reference.parse(name, normalize=False)
    if not short.qualified and (short.tag or short.digest is None):
        suffix = "/" + str(short.with_default_tag())
        found = [t for t in image.tags if t.endswith(suffix)]
        if len(found) == 1:
            return found[0]
    return None


def _remove_image(storage: Storage, image: _db.Image) -> list[str]:
    lines = [f"Untagged: {t}" for t in image.tags]
    try:
        storage.db.remove_image(image.id)
    except NotFoundError:
        pass  # removed beside us
    lines.append(f"Deleted: {image.id.hex}")
    return lines


def prune(storage: Storage, *, all: bool = False) -> list[str]:
    """Remove dangling images (no tag), or with `all` every image, but those containers use; returns
    the removed ids. Then collects garbage."""
    removed: list[str] = []
    try:
        for image in storage.db.images():
            if image.tags and not all:
                continue
            if storage.in_use is not None and storage.in_use(image.id.hex):
                continue
            try:
                storage.db.remove_image(image.id)
            except NotFoundError:
                continue
            removed.append(image.id.hex)
    finally:
        collect(storage)
    return removed


def collect(storage: Storage) -> _db.Garbage:
    """Delete what no image references: database rows, then blob files and layer directories."""
    import shutil  # here: shutil imports bz2 and lzma

    gc = Flock(os.path.join(storage.locks_dir, "gc"), EXCLUSIVE)
    alone = gc.acquire(blocking=False)
    try:
        garbage = storage.db.collect(grace=0.0 if alone else PULL_GRACE)
        for digest in garbage.blobs:
            storage.blobs.delete(digest)
        for layer in garbage.layers:
            with storage.layer_lock(layer.diff_id):
                if storage.db.layer(layer.diff_id) is not None:
                    continue  # a pull claimed it again since
                if os.path.dirname(os.path.abspath(layer.path)) == os.path.abspath(storage.layers_dir):
                    shutil.rmtree(layer.path, ignore_errors=True)
    finally:
        gc.release()
    return garbage
