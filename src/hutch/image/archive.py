"""Image archives: `save` writes stored images as a docker-archive or an oci-archive, `load` reads either back.

docker-archive (what `docker save` and `podman save` write): manifest.json (`[{"Config", "RepoTags",
"Layers"}]`), the config as `<config hex>.json`, each layer as an uncompressed `<diff_id hex>.tar`, the legacy
`<layer id>/{VERSION,json,layer.tar}` entries (layer.tar a symlink to the layer file, as c/image writes it) and
`repositories`. oci-archive: a tar of an OCI image layout (`oci-layout`, `index.json` with each manifest named
by `org.opencontainers.image.ref.name`, `blobs/sha256/...`), the stored blobs byte for byte, so the manifest
digest is kept. Archives are written to a temp file beside the target and renamed into place.

`load` reads the archive once, as a stream (plain, or gzip/bzip2/xz compressed), copying each member to a
private temp dir; it refuses members with absolute or `..` names, device nodes and fifos, and links that lead
outside the archive (a symlink or hardlink to another member is followed, as podman's archives need). Every
blob goes into the blob store verified against its digest (the descriptor's, or the name a docker-archive gives
its config and layer files), every layer is unpacked by pull's machinery and checked against the config's
diff_ids, and only then is the image recorded. On any error nothing is recorded and what was stored is
collected.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import shutil
import tarfile
import tempfile

from hutch import jsonfast
from hutch.errors import ConfigError, HutchError
from hutch.image import db as _db
from hutch.image import reference as _reference
from hutch.image.ingest import replace_file
from hutch.image.pull import clean_up, install_layer, record_image
from hutch.image.storage import Storage
from hutch.oci import digest as _digest
from hutch.oci import image as _image
from hutch.oci import manifest as _manifest
from hutch.oci import platforms as _platforms

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import BinaryIO

    Progress = Callable[[str], None]

DOCKER_ARCHIVE = "docker-archive"
OCI_ARCHIVE = "oci-archive"
FORMATS = (DOCKER_ARCHIVE, OCI_ARCHIVE)
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_CHUNK = 1 << 20
_JSON_MAX = 64 << 20
_LINK_DEPTH = 16


class ArchiveError(HutchError):
    """An image archive that cannot be read (malformed, hostile, or not an image archive) or written."""


def _quiet(_line: str) -> None:
    pass


# --- save ---------------------------------------------------------------------------------------------------


def save(
    names: list[str],
    output: str | None,
    *,
    storage: Storage,
    format: str = DOCKER_ARCHIVE,
    stream: BinaryIO | None = None,
) -> None:
    """Write the stored images `names` as one archive of `format` to `output` (atomically), or to `stream`."""
    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: expected one of {', '.join(FORMATS)}")
    if not names:
        raise ConfigError("save: at least one image must be given")
    images = [(name, storage.find(name)) for name in names]
    if output is None:
        if stream is None:
            raise ConfigError("save: no output file given")
        _write(images, stream, storage, format)
        return
    replace_file(output, lambda out: _write(images, out, storage, format))


def _write(images: list[tuple[str, _db.Image]], out: BinaryIO, storage: Storage, format: str) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if format == OCI_ARCHIVE:
            _write_oci(images, tar, storage)
        else:
            _write_docker(images, tar, storage)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, path: str) -> None:
    with open(path, "rb") as f:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = os.fstat(f.fileno()).st_size, 0o644, 0
        tar.addfile(info, f)


def _names(name: str, image: _db.Image) -> list[str]:
    """The names an image is saved under: the tag it was asked by, else all its tags (not by digest)."""
    tags = [t for t in image.tags if "@" not in t]
    try:
        ref = str(_reference.parse(name).with_default_tag())
    except _reference.ImageReferenceError:
        ref = ""
    if ref in tags:
        return [ref]
    matching = [t for t in tags if t.endswith("/" + name) or t.endswith("/" + name + ":latest")]
    return matching[:1] if matching else tags


def _write_oci(images: list[tuple[str, _db.Image]], tar: tarfile.TarFile, storage: Storage) -> None:
    _add_bytes(tar, "oci-layout", jsonfast.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    _add_dir(tar, "blobs")
    _add_dir(tar, "blobs/sha256")
    written: set[_digest.Digest] = set()
    manifests: list[dict[str, object]] = []
    for name, image in images:
        manifest = storage.manifest(image)
        for d in [manifest.config, *manifest.layers, _manifest.Descriptor("", image.manifest_digest, 0)]:
            if d.digest in written:
                continue
            written.add(d.digest)
            _add_file(tar, f"blobs/{d.digest.algorithm}/{d.digest.hex}", storage.blobs.path(d.digest))
        size = storage.blobs.size(image.manifest_digest)
        for tag in _names(name, image) or [""]:
            desc = _manifest.Descriptor(image.media_type, image.manifest_digest, size)
            if tag:
                desc.annotations = {REF_NAME: tag}
            manifests.append(desc.to_json())
    index = {"schemaVersion": 2, "mediaType": _image.OCI_INDEX, "manifests": manifests}
    _add_bytes(tar, "index.json", jsonfast.dumps(index).encode())


def _write_docker(images: list[tuple[str, _db.Image]], tar: tarfile.TarFile, storage: Storage) -> None:
    entries: list[dict[str, object]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    for name, image in images:
        manifest = storage.manifest(image)
        config_data = storage.blobs.read(image.id)
        config = _image.parse_config(config_data, f"image {image.id.short}: config")
        if len(config.diff_ids) != len(manifest.layers):
            raise ArchiveError(f"image {image.id.short}: the config and the manifest differ in their layers")
        config_name = f"{image.id.hex}.json"
        if config_name not in written:
            written.add(config_name)
            _add_bytes(tar, config_name, config_data)
        layer_names: list[str] = []
        parent = ""
        for diff_id, desc in zip(config.diff_ids, manifest.layers, strict=True):
            layer_name = f"{diff_id.hex}.tar"
            layer_names.append(layer_name)
            # The legacy layer id, chained as c/image chains it: the digest of the parent's id and the diff_id.
            legacy = hashlib.sha256(f"{parent}\n{diff_id}".encode()).hexdigest() if parent else diff_id.hex
            if layer_name not in written:
                written.add(layer_name)
                _add_layer(tar, layer_name, storage, desc, diff_id)
            if legacy not in written:
                written.add(legacy)
                _add_dir(tar, legacy)
                _add_bytes(tar, f"{legacy}/VERSION", b"1.0")
                doc: dict[str, object] = {"id": legacy, "created": config.created or "1970-01-01T00:00:00Z"}
                if parent:
                    doc["parent"] = parent
                doc["os"], doc["architecture"] = config.os, config.architecture
                _add_bytes(tar, f"{legacy}/json", jsonfast.dumps(doc).encode())
                link = tarfile.TarInfo(f"{legacy}/layer.tar")
                link.type, link.linkname, link.mode, link.mtime = (
                    tarfile.SYMTYPE,
                    f"../{layer_name}",
                    0o777,
                    0,
                )
                tar.addfile(link)
            parent = legacy
        tags = _names(name, image)
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = parent
        entries.append({"Config": config_name, "RepoTags": tags or None, "Layers": layer_names})
    if repositories:
        _add_bytes(tar, "repositories", jsonfast.dumps(repositories).encode())
    _add_bytes(tar, "manifest.json", jsonfast.dumps(entries).encode())


def _add_layer(
    tar: tarfile.TarFile, name: str, storage: Storage, desc: _manifest.Descriptor, diff_id: _digest.Digest
) -> None:
    """Add the layer uncompressed (a docker-archive holds tars), checked against its diff_id."""
    from hutch.image import layers as _layers

    with storage.blobs.open(desc.digest) as f:
        head = f.read(4)
        f.seek(0)
        if not head.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd")):
            _add_file(tar, name, storage.blobs.path(desc.digest))
            return
        # The tar header needs the size first: decompress to a temp file.
        with tempfile.TemporaryFile(dir=storage.root) as tmp:
            src = _layers._Uncompressed(f, _layers.MEDIA_TYPES.get(desc.media_type, "gzip"), desc.media_type)
            while chunk := src.read(_CHUNK):
                tmp.write(chunk)
            if src.diff_id() != str(diff_id):
                raise ArchiveError(f"layer {desc.digest}: uncompressed it is {src.diff_id()}, not {diff_id}")
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = tmp.tell(), 0o644, 0
            tmp.seek(0)
            tar.addfile(info, tmp)


# --- load ---------------------------------------------------------------------------------------------------


class _Member:
    __slots__ = ("path", "digest", "size")

    def __init__(self, path: str, digest: _digest.Digest, size: int) -> None:
        self.path = path
        self.digest = digest
        self.size = size


class _Unpacked:
    """An archive's members copied to `directory`: regular files by name, links as aliases."""

    def __init__(self, directory: str, label: str) -> None:
        self.directory = directory
        self.label = label
        self.files: dict[str, _Member] = {}
        self.links: dict[str, str] = {}

    def refuse(self, name: str, why: str) -> ArchiveError:
        return ArchiveError(f"{self.label}: member {name!r}: refused: {why}")

    def read(self, stream: BinaryIO) -> None:
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tar:
                for m in tar:
                    self._member(tar, m)
        except tarfile.TarError as e:
            raise ArchiveError(f"{self.label}: not a readable tar archive: {e}") from None
        except EOFError as e:
            raise ArchiveError(f"{self.label}: the archive ends early: {e}") from None

    def _member(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        name = _clean(m.name)
        if name is None:
            raise self.refuse(m.name, "an absolute name or one with `..` leads outside the archive")
        if not name:
            return
        if m.isdir():
            return
        if name in self.files or name in self.links:
            raise self.refuse(m.name, "it appears twice")
        if m.issym() or m.islnk():
            base = posixpath.dirname(name) if m.issym() else ""
            if m.linkname.startswith("/"):
                raise self.refuse(m.name, f"a link to the absolute path {m.linkname!r}")
            target = posixpath.normpath(posixpath.join(base, m.linkname))
            if target in (".", "..") or target.startswith("../"):
                raise self.refuse(m.name, f"a link to {m.linkname!r} leads outside the archive")
            self.links[name] = target
            return
        if not m.isreg():
            raise self.refuse(m.name, "not a regular file, directory or link")
        src = tar.extractfile(m)
        if src is None:  # pragma: no cover - a regular file always has data
            raise self.refuse(m.name, "no data")
        path = os.path.join(self.directory, str(len(self.files)))
        h = hashlib.sha256()
        size = 0
        with open(path, "wb") as out:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
        self.files[name] = _Member(path, _digest.Digest("sha256", h.hexdigest()), size)

    def get(self, name: str, what: str) -> _Member:
        current = _clean(name)
        for _ in range(_LINK_DEPTH):
            if not current:
                break
            found = self.files.get(current)
            if found is not None:
                return found
            if current not in self.links:
                break
            current = self.links[current]
        raise ArchiveError(f"{self.label}: {what} {name!r} is not in the archive")

    def has(self, name: str) -> bool:
        return name in self.files or name in self.links

    def json(self, name: str, what: str) -> object:
        member = self.get(name, what)
        if member.size > _JSON_MAX:
            raise ArchiveError(f"{self.label}: {what} {name!r} is too large ({member.size} bytes)")
        with open(member.path, "rb") as f:
            data = f.read()
        try:
            return jsonfast.loads(data.decode())
        except (jsonfast.DecodeError, UnicodeDecodeError) as e:
            raise ArchiveError(f"{self.label}: {what} {name!r}: invalid JSON: {e}") from None

    def blob(self, d: _manifest.Descriptor, what: str) -> _Member:
        """The blob of descriptor `d` in an OCI layout, checked against its digest and size."""
        member = self.get(f"blobs/{d.digest.algorithm}/{d.digest.hex}", what)
        sha256 = d.digest.algorithm == "sha256"
        actual = member.digest if sha256 else _file_digest(member.path, d.digest)
        if actual != d.digest:
            raise ArchiveError(f"{self.label}: {what}: digest mismatch: expected {d.digest}, got {actual}")
        if member.size != d.size:
            raise ArchiveError(f"{self.label}: {what}: {member.size} bytes, its descriptor says {d.size}")
        return member


def _clean(name: str) -> str | None:
    """A member name made relative and normal; None if it is absolute or climbs out with `..`."""
    if name.startswith("/"):
        return None
    parts: list[str] = []
    for p in name.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            return None
        parts.append(p)
    return "/".join(parts)


def _file_digest(path: str, like: _digest.Digest) -> _digest.Digest:
    h = like.hasher()
    for chunk in _chunks(path):
        h.update(chunk)
    return _digest.Digest(like.algorithm, h.hexdigest())


def _chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(4)


class _Plan:
    """One image of an archive, ready to store: its manifest and config, and where each blob is."""

    def __init__(
        self,
        manifest_data: bytes,
        manifest: _manifest.Manifest,
        config: _image.ImageConfig,
        blobs: dict[_digest.Digest, str],
        tags: list[str],
    ) -> None:
        self.manifest_data = manifest_data
        self.manifest = manifest
        self.config = config
        self.blobs = blobs
        self.tags = tags
        self.manifest_digest = _digest.of_bytes(manifest_data)


def load(
    stream: BinaryIO, *, storage: Storage, label: str = "archive", progress: Progress | None = None
) -> list[str]:
    """Store every image of the archive read from `stream`; returns podman's names for what was loaded (the
    tags, or `sha256:<id>` for an image without one)."""
    say = progress or _quiet
    tmp_root = os.path.join(storage.root, "tmp")
    os.makedirs(tmp_root, mode=0o700, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="load-", dir=tmp_root)
    try:
        archive = _Unpacked(directory, label)
        archive.read(stream)
        if archive.has("manifest.json"):
            plans = _docker_plans(archive)
        elif archive.has("index.json"):
            plans = _oci_plans(archive)
        else:
            raise ArchiveError(
                f"{label}: neither a docker-archive (manifest.json) nor an oci-archive (index.json)"
            )
        if not plans:
            raise ArchiveError(f"{label}: the archive holds no image")
        say("Getting image source signatures")
        loaded: list[str] = []
        lock = storage.pull_lock()
        try:
            with lock:
                for plan in plans:
                    image = _store(plan, storage, label, say)
                    loaded.extend(plan.tags or [f"sha256:{image.id.hex}"])
        except BaseException:
            clean_up(storage)
            raise
        return loaded
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _store(plan: _Plan, storage: Storage, label: str, say: Progress) -> _db.Image:
    m = plan.manifest
    db = storage.db
    db.claim_blob(plan.manifest_digest, len(plan.manifest_data))
    for d in [m.config, *m.layers]:
        db.claim_blob(d.digest, d.size)
    for d in m.layers:
        existed = storage.blobs.has(d.digest)
        storage.blobs.ingest(d.digest, d.size, _chunks(plan.blobs[d.digest]), f"{label}: layer {d.digest}")
        say(f"Copying blob {d.digest.short} {'skipped: already exists' if existed else 'done'}")
    c = m.config
    storage.blobs.ingest(c.digest, c.size, _chunks(plan.blobs[c.digest]), f"{label}: config {c.digest}")
    say(f"Copying config {c.digest.short} done")
    refs = [
        install_layer(storage, diff_id, d, f"{label}: layer {d.digest}")
        for diff_id, d in zip(plan.config.diff_ids, m.layers, strict=True)
    ]
    say("Writing manifest to image destination")
    storage.blobs.ingest_bytes(plan.manifest_data, plan.manifest_digest, f"{label}: manifest")
    return record_image(
        storage, plan.manifest_digest, len(plan.manifest_data), m.media_type, m, plan.config, refs, plan.tags
    )


def _config(archive: _Unpacked, member: _Member, where: str, layers: int) -> _image.ImageConfig:
    if member.size > _JSON_MAX:
        raise ArchiveError(f"{where}: too large ({member.size} bytes)")
    with open(member.path, "rb") as f:
        config = _image.parse_config(f.read(), where)
    if len(config.diff_ids) != layers:
        raise ArchiveError(f"{where}: lists {len(config.diff_ids)} diff_ids for {layers} layers")
    return config


def _docker_plans(archive: _Unpacked) -> list[_Plan]:
    doc = archive.json("manifest.json", "manifest")
    where = f"{archive.label}: manifest.json"
    if not isinstance(doc, list):
        raise ArchiveError(f"{where}: expected a JSON array")
    plans: list[_Plan] = []
    for i, entry in enumerate(doc):
        at = f"{where}: [{i}]"
        if not isinstance(entry, dict):
            raise ArchiveError(f"{at}: expected an object")
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        tags = entry.get("RepoTags") or []
        if (
            not isinstance(config_name, str)
            or not isinstance(layer_names, list)
            or not isinstance(tags, list)
        ):
            raise ArchiveError(f"{at}: needs Config (a string), Layers and RepoTags (arrays)")
        if not layer_names or not all(isinstance(n, str) for n in layer_names):
            raise ArchiveError(f"{at}.Layers: expected file names")
        config_member = archive.get(config_name, "config")
        _named_digest(archive, config_name, config_member.digest, "config")
        config = _config(archive, config_member, f"{at}: config {config_name}", len(layer_names))
        blobs = {config_member.digest: config_member.path}
        descriptors: list[_manifest.Descriptor] = []
        for name, diff_id in zip(layer_names, config.diff_ids, strict=True):
            member = archive.get(name, "layer")
            head = _head(member.path)
            if head.startswith(b"\x1f\x8b"):
                media_type = _image.OCI_LAYER_GZIP
            elif head.startswith(b"\x28\xb5\x2f\xfd"):
                media_type = _image.OCI_LAYER_ZSTD
            else:
                media_type = _image.OCI_LAYER
                if member.digest != diff_id:
                    raise ArchiveError(
                        f"{at}: layer {name!r}: digest mismatch: the config says {diff_id}, got {member.digest}"
                    )
            _named_digest(archive, name, member.digest, "layer")
            blobs[member.digest] = member.path
            descriptors.append(_manifest.Descriptor(media_type, member.digest, member.size))
        config_desc = _manifest.Descriptor(_image.OCI_CONFIG, config_member.digest, config_member.size)
        manifest_doc = {
            "schemaVersion": 2,
            "mediaType": _image.OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [d.to_json() for d in descriptors],
        }
        data = jsonfast.dumps(manifest_doc).encode()
        manifest = _manifest.Manifest(_image.OCI_MANIFEST, config_desc, descriptors)
        names = [_docker_name(archive, t, at) for t in tags]
        plans.append(_Plan(data, manifest, config, blobs, names))
    return plans


def _named_digest(archive: _Unpacked, name: str, actual: _digest.Digest, what: str) -> None:
    """A docker-archive file named by a digest (`<hex>.json`, `<hex>.tar`, `sha256:<hex>`, `blobs/sha256/<hex>`)
    must have that digest."""
    real = _clean(name) or name
    for _ in range(_LINK_DEPTH):
        if real not in archive.links:
            break
        real = archive.links[real]
    base = posixpath.basename(real)
    stem = base.removeprefix("sha256:").partition(".")[0]
    named = posixpath.dirname(real) == "blobs/sha256" or base.endswith((".json", ".tar")) or ":" in base
    if named and len(stem) == 64 and all(c in "0123456789abcdef" for c in stem) and stem != actual.hex:
        raise ArchiveError(f"{archive.label}: {what} {name!r}: digest mismatch: the file holds {actual}")


def _docker_name(archive: _Unpacked, tag: object, where: str) -> str:
    if not isinstance(tag, str):
        raise ArchiveError(f"{where}.RepoTags: expected strings")
    try:
        ref = _reference.parse(tag)
    except _reference.ImageReferenceError as e:
        raise ArchiveError(f"{where}.RepoTags: {e}") from None
    if ref.digest is not None:
        raise ArchiveError(f"{where}.RepoTags: {tag!r} is not a tag")
    return str(ref.with_default_tag())


def _oci_name(text: str) -> str:
    """podman's name for an OCI ref.name: a short name goes under localhost/ (c/common NormalizeName)."""
    try:
        ref = _reference.parse(text, normalize=False)
    except _reference.ImageReferenceError:
        return ""
    if not ref.domain:
        ref = _reference.parse("localhost/" + text, normalize=False)
    if ref.digest is not None and not ref.tag:
        return ""
    return str(ref.with_default_tag())


def _oci_plans(archive: _Unpacked) -> list[_Plan]:
    label = archive.label
    member = archive.get("index.json", "index")
    if member.size > _JSON_MAX:
        raise ArchiveError(f"{label}: index.json is too large")
    with open(member.path, "rb") as f:
        index = _manifest.parse_index(f.read(), f"{label}: index.json")
    if archive.has("oci-layout"):
        layout = archive.json("oci-layout", "oci-layout")
        if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != "1.0.0":
            raise ArchiveError(f"{label}: oci-layout: imageLayoutVersion must be 1.0.0")
    plans: dict[_digest.Digest, _Plan] = {}
    for i, desc in enumerate(index.manifests):
        at = f"{label}: index.json manifests[{i}]"
        name = desc.annotations.get(CONTAINERD_NAME) or desc.annotations.get(REF_NAME, "")
        if desc.media_type in _image.INDEX_TYPES:
            inner_member = archive.blob(desc, f"{at} (index)")
            with open(inner_member.path, "rb") as f:
                inner = _manifest.parse_index(f.read(), f"{at} (index {desc.digest})", desc.media_type)
            desc = _platforms.select_platform(inner, None)
        if desc.media_type not in _image.MANIFEST_TYPES:
            continue  # not an image (an attestation, a signature)
        mm = archive.blob(desc, f"{at} manifest {desc.digest}")
        if mm.size > _JSON_MAX:
            raise ArchiveError(f"{at}: manifest is too large")
        with open(mm.path, "rb") as f:
            data = f.read()
        manifest = _manifest.parse_manifest(data, f"{at} manifest {desc.digest}", desc.media_type)
        if not manifest.layers:
            raise ArchiveError(f"{at}: the manifest has no layers")
        cm = archive.blob(manifest.config, f"{at} config {manifest.config.digest}")
        config = _config(archive, cm, f"{at} config {manifest.config.digest}", len(manifest.layers))
        blobs = {manifest.config.digest: cm.path}
        for d in manifest.layers:
            blobs[d.digest] = archive.blob(d, f"{at} layer {d.digest}").path
        tag = _oci_name(name) if name else ""
        plan = plans.get(desc.digest)
        if plan is None:
            plans[desc.digest] = plan = _Plan(data, manifest, config, blobs, [])
            plan.manifest_digest = desc.digest
        if tag and tag not in plan.tags:
            plan.tags.append(tag)
    return list(plans.values())
