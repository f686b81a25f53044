"""The image storage as a whole: the blob store, the image database and the unpacked layers, and the
operations on stored images that touch all three (find, tag, remove, prune, collect, inspect).

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

import fcntl
import os

from hutch import jsonfast
from hutch.errors import ConfigError, HutchError, NotFoundError
from hutch.image import db as _db
from hutch.image.store import DEFAULT_ROOT, BlobStore
from hutch.oci import image as _image

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from hutch.image import reference as _reference
    from hutch.oci.digest import Digest

DEFAULT_DB = _db.DEFAULT_PATH
# What a collect keeps while a pull runs beside it: blobs and layers claimed this recently.
PULL_GRACE = 600.0


class ImageInUseError(HutchError):
    """An image cannot be removed as asked (more than one tag, by id, without force)."""


class UsedByContainerError(ImageInUseError):
    """An image that a container uses cannot be removed (podman rmi exits 2)."""


class _Flock:
    """An flock on a file under locks/, released on exit (and by the kernel when the process dies)."""

    def __init__(self, path: str, mode: int) -> None:
        self.path = path
        self.mode = mode
        self.fd = -1

    def acquire(self, blocking: bool = True) -> bool:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, self.mode | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(self.fd)
            self.fd = -1
            return False
        return True

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> _Flock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


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

    def layer_lock(self, diff_id: Digest) -> _Flock:
        return _Flock(os.path.join(self.locks_dir, f"layer-{diff_id.hex}"), fcntl.LOCK_EX)

    def pull_lock(self) -> _Flock:
        """Held (shared) by a pull from its first claim to its record."""
        return _Flock(os.path.join(self.locks_dir, "gc"), fcntl.LOCK_SH)

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
            suffix = "/" + str(_short_text(short))
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

    # --- removing -------------------------------------------------------------------------------------------

    def remove(self, names: list[str], *, force: bool = False, skip_in_use: bool = False) -> list[str]:
        """podman rmi: a tag of an image with other tags is untagged; an image's last tag, or its id, removes
        the image. Returns podman's lines (`Untagged: NAME`, `Deleted: ID`). Then collects garbage. An
        image a container uses is refused (UsedByContainerError), or with `skip_in_use` (rmi -a) kept."""
        lines: list[str] = []
        try:
            for name in names:
                image = self.find(name)
                tag = self._matching_tag(name, image)
                if tag is not None and len(image.tags) > 1:
                    self.db.untag(tag)
                    lines.append(f"Untagged: {tag}")
                    continue
                if tag is None and len(image.tags) > 1 and not force:
                    raise ImageInUseError(
                        f'unable to delete image "{image.id.hex}" by ID with more than one tag '
                        f"({image.tags}): please force removal"
                    )
                users = self.in_use(image.id.hex) if self.in_use is not None else []
                if users:
                    if skip_in_use:
                        continue
                    raise UsedByContainerError(
                        f"image used by {users[0]}: image is in use by a container: consider listing "
                        "external containers and force-removing image"
                    )
                lines.extend(self._remove_image(image))
        finally:
            self.collect()
        return lines

    def _matching_tag(self, name: str, image: _db.Image) -> str | None:
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
            suffix = "/" + str(_short_text(short))
            found = [t for t in image.tags if t.endswith(suffix)]
            if len(found) == 1:
                return found[0]
        return None

    def _remove_image(self, image: _db.Image) -> list[str]:
        lines = [f"Untagged: {t}" for t in image.tags]
        try:
            self.db.remove_image(image.id)
        except NotFoundError:
            pass  # removed beside us
        lines.append(f"Deleted: {image.id.hex}")
        return lines

    def prune(self, *, all: bool = False) -> list[str]:
        """Remove dangling images (no tag), or with `all` every image, but those containers use; returns
        the removed ids. Then collects garbage."""
        removed: list[str] = []
        try:
            for image in self.db.images():
                if image.tags and not all:
                    continue
                if self.in_use is not None and self.in_use(image.id.hex):
                    continue
                try:
                    self.db.remove_image(image.id)
                except NotFoundError:
                    continue
                removed.append(image.id.hex)
        finally:
            self.collect()
        return removed

    def collect(self) -> _db.Garbage:
        """Delete what no image references: database rows, then blob files and layer directories."""
        import shutil  # here: `run` opens the storage, and shutil imports bz2 and lzma

        gc = _Flock(os.path.join(self.locks_dir, "gc"), fcntl.LOCK_EX)
        alone = gc.acquire(blocking=False)
        try:
            garbage = self.db.collect(grace=0.0 if alone else PULL_GRACE)
            for digest in garbage.blobs:
                self.blobs.delete(digest)
            for layer in garbage.layers:
                with self.layer_lock(layer.diff_id):
                    if self.db.layer(layer.diff_id) is not None:
                        continue  # a pull claimed it again since
                    if os.path.dirname(os.path.abspath(layer.path)) == os.path.abspath(self.layers_dir):
                        shutil.rmtree(layer.path, ignore_errors=True)
        finally:
            gc.release()
        return garbage

    # --- reading --------------------------------------------------------------------------------------------

    def manifest(self, image: _db.Image) -> _image.Manifest:
        data = self.blobs.read(image.manifest_digest)
        return _image.parse_manifest(data, f"manifest {image.manifest_digest}", image.media_type)

    def config_document(self, image: _db.Image) -> dict[str, Any]:
        """The image config as stored, as JSON (for inspect, which shows it as it is)."""
        doc = jsonfast.loads(self.blobs.read(image.id).decode())
        if not isinstance(doc, dict):
            raise ConfigError(f"image config {image.id}: not a JSON object")
        return doc

    def inspect(self, image: _db.Image) -> dict[str, Any]:
        """podman image inspect's object for `image`."""
        config = self.config_document(image)
        repo_digests = self.repo_digests(image)
        layers = self.db.image_layers(image.id)
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
            "RepoDigests": repo_digests,
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

    @staticmethod
    def repo_digests(image: _db.Image) -> list[str]:
        """podman's RepoDigests: each repository of the image with the digest pulled and, for an index, the
        platform manifest's too."""
        digests = [image.digest] + ([image.manifest_digest] if image.index_digest is not None else [])
        out: list[str] = []
        for t in image.tags:
            repo = _repository(t)
            for d in digests:
                rd = f"{repo}@{d}"
                if rd not in out:
                    out.append(rd)
        return out

    def iter_images(self) -> Iterator[_db.Image]:
        yield from self.db.images()


def _short_text(ref: _reference.Reference) -> str:
    """A short reference as text with its default tag: `busybox:latest`, `busybox@sha256:...`."""
    return str(ref.with_default_tag())


def _repository(name: str) -> str:
    """The repository of a stored tag name: `host/repo:tag` and `host/repo@digest` give `host/repo`."""
    if "@" in name:
        return name.partition("@")[0]
    colon = name.rfind(":")
    return name[:colon] if colon > name.rfind("/") else name


def repository_and_tag(name: str) -> tuple[str, str]:
    """REPOSITORY and TAG as `podman images` shows a stored name (`<none>` for a digest reference)."""
    if "@" in name:
        return name.partition("@")[0], "<none>"
    repo = _repository(name)
    return repo, name[len(repo) + 1 :] or "<none>"
