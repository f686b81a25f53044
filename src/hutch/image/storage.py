"""The image storage as a whole: the blob store, the image database and the unpacked layers, and the
operations on stored images that touch all three: find and tag here, remove, prune and collect in
hutch.image.removal, inspect in hutch.image.inspection (imported when used: `run` only finds).

Layout under the storage root (default /var/lib/hutch/storage):

    blobs/, ingest/             the content-addressed blob store (store.py)
    layers/<diff_id hex>/       one unpacked layer, shared by every image that has it
    locks/layer-<hex>           flock: held while a layer is unpacked or removed
    locks/gc                    flock: shared by every pull while it runs, exclusive while garbage is collected

A pull holds the gc lock shared. `collect` takes it exclusive without waiting: when no pull runs it removes
everything no image references at once; when one does, it keeps what was claimed in the last grace period
(what the running pull may still record) and removes the rest.
"""

from __future__ import annotations

import os

from hutch.errors import ConfigError, HutchError, NotFoundError
from hutch.image import db as _db
from hutch.image.store import DEFAULT_ROOT, BlobStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from hutch.image.flock import Flock
    from hutch.image.removal import ImageInUseError as ImageInUseError  # re-exported by __getattr__
    from hutch.image.removal import UsedByContainerError as UsedByContainerError
    from hutch.oci.digest import Digest
    from hutch.oci.manifest import Manifest

DEFAULT_DB = _db.DEFAULT_PATH


class Storage:
    """The storage under `root` with its database at `db_path`; one per thread (as a Database)."""

    def __init__(self, root: str = DEFAULT_ROOT, db_path: str = DEFAULT_DB) -> None:
        root = os.path.abspath(root)
        self.root = root
        self.db_path = db_path
        self.layers_dir = os.path.join(root, "layers")
        self.locks_dir = os.path.join(root, "locks")
        for d in (self.layers_dir, self.locks_dir):
            try:
                os.makedirs(d, mode=0o700, exist_ok=True)
            except OSError as e:
                raise HutchError(f"{d}: cannot create the image storage: {e.strerror}") from e
        self.blobs = BlobStore(root)
        self.db = _db.Database(db_path)
        # The engine's hook: the ids of the containers that use an image (its hex id). rmi refuses such an
        # image and prune keeps it; without a hook no image counts as used.
        self.in_use: Callable[[str], list[str]] | None = None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def open_db(self) -> _db.Database:
        """A new connection to the database, for another thread."""
        return _db.Database(self.db_path)

    # --- paths and locks ------------------------------------------------------------------------------------

    def layer_path(self, diff_id: Digest) -> str:
        return os.path.join(self.layers_dir, diff_id.hex)

    def layer_lock(self, diff_id: Digest) -> Flock:
        from hutch.image.flock import EXCLUSIVE, Flock

        return Flock(os.path.join(self.locks_dir, f"layer-{diff_id.hex}"), EXCLUSIVE)

    def pull_lock(self) -> Flock:
        """Held (shared) by a pull from its first claim to its record."""
        from hutch.image.flock import SHARED, Flock

        return Flock(os.path.join(self.locks_dir, "gc"), SHARED)

    # --- finding images -------------------------------------------------------------------------------------

    def find(self, name: str) -> _db.Image:
        """The stored image `name` names: an id or its prefix, a digest, a tag or `repo@digest`, normalized as
        pull normalizes it (`busybox` is `docker.io/library/busybox:latest`), or a short name that matches the
        end of one stored name (`busybox:1` finds `127.0.0.1:5000/busybox:1`)."""
        try:
            return self.db.lookup(name)
        except NotFoundError:
            pass
        from hutch.image import reference as _reference  # here: it imports re, which `run NAME:TAG` needs not

        try:
            ref = _reference.parse(name).with_default_tag()
        except _reference.ImageReferenceError:
            raise NotFoundError(f"{name}: image not known") from None
        try:
            return self.db.lookup(str(ref))
        except NotFoundError:
            pass
        short = _reference.parse(name, normalize=False)
        if not short.qualified:
            suffix = "/" + str(short.with_default_tag())
            matches = sorted({image_id for tag, image_id in self.db.tags() if tag.endswith(suffix)})
            if len(matches) == 1:
                return self.db.get(matches[0])
        raise NotFoundError(f"{name}: image not known")

    def tag_name(self, name: str) -> str:
        """The name a tag is stored under: the normalized reference, `latest` when it has no tag."""
        from hutch.image import reference as _reference

        ref = _reference.parse(name)
        if ref.digest is not None:
            raise ConfigError(f"{name}: a tag cannot name a digest")
        return str(ref.with_default_tag())

    def tag(self, source: str, targets: list[str]) -> None:
        image = self.find(source)
        for t in targets:
            self.db.tag(self.tag_name(t), image.id)

    # --- removing and inspecting: hutch.image.removal and hutch.image.inspection ---------------------------

    def remove(self, names: list[str], *, force: bool = False, skip_in_use: bool = False) -> list[str]:
        from hutch.image import removal

        return removal.remove(self, names, force=force, skip_in_use=skip_in_use)

    def prune(self, *, all: bool = False) -> list[str]:
        from hutch.image import removal

        return removal.prune(self, all=all)

    def collect(self) -> _db.Garbage:
        from hutch.image import removal

        return removal.collect(self)

    def config_document(self, image: _db.Image) -> dict[str, Any]:
        from hutch.image import inspection

        return inspection.config_document(self, image)

    def inspect(self, image: _db.Image) -> dict[str, Any]:
        from hutch.image import inspection

        return inspection.inspect(self, image)

    @staticmethod
    def repo_digests(image: _db.Image) -> list[str]:
        from hutch.image import inspection

        return inspection.repo_digests(image)

    # --- reading --------------------------------------------------------------------------------------------

    def manifest(self, image: _db.Image) -> Manifest:
        from hutch.oci.manifest import parse_manifest

        data = self.blobs.read(image.manifest_digest)
        return parse_manifest(data, f"manifest {image.manifest_digest}", image.media_type)

    def iter_images(self) -> Iterator[_db.Image]:
        yield from self.db.images()


def repository(name: str) -> str:
    """The repository of a stored tag name: `host/repo:tag` and `host/repo@digest` give `host/repo`."""
    if "@" in name:
        return name.partition("@")[0]
    colon = name.rfind(":")
    return name[:colon] if colon > name.rfind("/") else name


def repository_and_tag(name: str) -> tuple[str, str]:
    """REPOSITORY and TAG as `podman images` shows a stored name (`<none>` for a digest reference)."""
    if "@" in name:
        return name.partition("@")[0], "<none>"
    repo = repository(name)
    return repo, name[len(repo) + 1 :] or "<none>"


def __getattr__(name: str) -> type[ImageInUseError]:
    """rmi's errors, from hutch.image.removal (imported on first use)."""
    if name in ("ImageInUseError", "UsedByContainerError"):
        from hutch.image import removal

        return getattr(removal, name)  # type: ignore[no-any-return]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
