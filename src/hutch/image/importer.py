"""`hutch import`: a root filesystem tarball (plain or compressed) becomes a one-layer image, as podman import
makes it: the layer stored uncompressed (its digest is its diff_id), a config with the host platform, the
`--change` instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL) and one
history entry (`/bin/sh -c #(nop) ADD file:<diff_id> in /`, the message or `imported from tarball`).

The layer is unpacked by pull's machinery (hostile tars refused as on a pull) and the image recorded with
its manifest in one transaction.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import tarfile
import tempfile

from hutch import jsonfast
from hutch.errors import ConfigError
from hutch.image import db as _db
from hutch.image import reference as _reference
from hutch.image.pull import clean_up, install_layer, record_image
from hutch.image.storage import Storage
from hutch.oci import digest as _digest
from hutch.oci import image as _image
from hutch.oci import manifest as _manifest
from hutch.oci import platforms as _platforms

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, BinaryIO

    Progress = Callable[[str], None]

_CHUNK = 1 << 20
CHANGES = ("CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "LABEL", "EXPOSE", "VOLUME", "STOPSIGNAL")


def _quiet(_line: str) -> None:
    pass


def _command(value: str) -> list[str]:
    """A CMD or ENTRYPOINT value: a JSON array (exec form), else a shell command (`/bin/sh -c ...`)."""
    text = value.strip()
    if text.startswith("["):
        try:
            doc = jsonfast.loads(text)
        except jsonfast.DecodeError:
            doc = None
        if isinstance(doc, list) and all(isinstance(x, str) for x in doc):
            return list(doc)
    return ["/bin/sh", "-c", text]


def _pairs(value: str, what: str) -> list[tuple[str, str]]:
    """`K=V K2=V2` or `K V` (ENV and LABEL)."""
    import shlex

    words = shlex.split(value)
    if not words:
        raise ConfigError(f"--change {what}: a value is needed")
    if "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    out = []
    for w in words:
        key, eq, val = w.partition("=")
        if not eq or not key:
            raise ConfigError(f"--change {what}: {w!r} is not KEY=VALUE")
        out.append((key, val))
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> None:
    """Apply podman's `--change` instructions (`CMD=...`, `ENV KEY=VALUE`, ...) to a config's `config`."""
    for change in changes:
        text = change.strip()
        i = 0
        while i < len(text) and text[i] not in "= ":
            i += 1
        kind, value = text[:i].upper(), text[i + 1 :].strip() if i < len(text) else ""
        if kind not in CHANGES:
            raise ConfigError(
                f"--change {change!r}: unsupported instruction (expected one of {', '.join(CHANGES)})"
            )
        if kind in ("CMD", "ENTRYPOINT"):
            config["Cmd" if kind == "CMD" else "Entrypoint"] = _command(value)
        elif kind == "ENV":
            env = [e for e in config.get("Env") or []]
            for key, val in _pairs(value, kind):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={val}"]
            config["Env"] = env
        elif kind == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_pairs(value, kind))
            config["Labels"] = labels
        elif kind == "WORKDIR":
            config["WorkingDir"] = value
        elif kind == "USER":
            config["User"] = value
        elif kind == "STOPSIGNAL":
            config["StopSignal"] = value
        elif kind in ("EXPOSE", "VOLUME"):
            key = "ExposedPorts" if kind == "EXPOSE" else "Volumes"
            items = dict(config.get(key) or {})
            words = _command(value) if value.startswith("[") else value.split()
            for w in words:
                items[w if kind == "VOLUME" or "/" in w else f"{w}/tcp"] = {}
            config[key] = items


def _tar_stream(stream: BinaryIO, label: str) -> Iterator[bytes]:
    """The uncompressed tar read from `stream` (plain, gzip, bzip2 or xz), checked to be a tar as it goes."""
    import bz2
    import lzma
    import zlib

    head = stream.read(6)
    dec: Any = None
    gzipped = head.startswith(b"\x1f\x8b")
    if gzipped:
        dec = zlib.decompressobj(wbits=31)
    elif head.startswith(b"BZh"):
        dec = bz2.BZ2Decompressor()
    elif head.startswith(b"\xfd7zXZ\x00"):
        dec = lzma.LZMADecompressor()
    data = head
    while True:
        if dec is None:
            out = data
        else:
            try:
                out = dec.decompress(data)
            except (zlib.error, OSError, EOFError, lzma.LZMAError) as e:
                raise ConfigError(f"{label}: cannot decompress: {e}") from None
            if gzipped and dec.eof and dec.unused_data:
                rest = dec.unused_data
                dec = zlib.decompressobj(wbits=31)
                out += dec.decompress(rest)
        if out:
            yield out
        data = stream.read(_CHUNK)
        if not data:
            break


def import_tarball(
    stream: BinaryIO,
    reference: str | None,
    *,
    storage: Storage,
    changes: list[str] | None = None,
    message: str = "",
    label: str = "tarball",
    platform: _image.Platform | None = None,
    progress: Progress | None = None,
) -> _db.Image:
    """Make an image of the rootfs tarball read from `stream`, tagged `reference` if given."""
    say = progress or _quiet
    tag = ""
    if reference:
        ref = _reference.parse(reference, normalize=False)
        if not ref.domain:
            ref = _reference.parse("localhost/" + reference, normalize=False)
        if ref.digest is not None:
            raise ConfigError(f"{reference}: an imported image cannot be named by a digest")
        tag = str(ref.with_default_tag())
    plat = platform or _platforms.host_platform()
    say("Getting image source signatures")
    # Into a temp file first: the digest is known only at the end.
    tmp_root = os.path.join(storage.root, "tmp")
    os.makedirs(tmp_root, mode=0o700, exist_ok=True)
    try:
        return _import(stream, tag, storage, changes or [], message, label, plat, say, tmp_root)
    except BaseException:
        clean_up(storage)
        raise


def _import(
    stream: BinaryIO,
    tag: str,
    storage: Storage,
    changes: list[str],
    message: str,
    label: str,
    plat: _image.Platform,
    say: Progress,
    tmp_root: str,
) -> _db.Image:
    lock = storage.pull_lock()
    with tempfile.TemporaryFile(dir=tmp_root) as tmp, lock:
        h = hashlib.sha256()
        size = 0
        for chunk in _tar_stream(stream, label):
            h.update(chunk)
            tmp.write(chunk)
            size += len(chunk)
        if size == 0:
            raise ConfigError(f"{label}: empty input, not a tar archive")
        tmp.seek(0)
        try:
            with tarfile.open(fileobj=tmp, mode="r:") as probe:
                probe.next()
        except tarfile.TarError as e:
            raise ConfigError(f"{label}: not a tar archive: {e}") from None
        diff_id = _digest.Digest("sha256", h.hexdigest())
        db = storage.db
        db.claim_blob(diff_id, size)
        tmp.seek(0)
        storage.blobs.ingest(diff_id, size, iter(lambda: tmp.read(_CHUNK), b""), f"{label}: layer")
        say(f"Copying blob {diff_id.short} done")
        layer = _manifest.Descriptor(_image.OCI_LAYER, diff_id, size)
        ref_ = install_layer(storage, diff_id, layer, f"{label}: layer")
        now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        container: dict[str, Any] = {}
        apply_changes(container, changes)
        doc: dict[str, Any] = {
            "created": now,
            "architecture": plat.architecture,
            "os": plat.os,
            **({"variant": plat.variant} if plat.variant else {}),
            "config": container,
            "rootfs": {"type": "layers", "diff_ids": [str(diff_id)]},
            "history": [
                {
                    "created": now,
                    "created_by": f"/bin/sh -c #(nop) ADD file:{diff_id.hex} in /",
                    "comment": message or "imported from tarball",
                }
            ],
        }
        config_data = jsonfast.dumps(doc).encode()
        config_digest = _digest.of_bytes(config_data)
        db.claim_blob(config_digest, len(config_data))
        storage.blobs.ingest_bytes(config_data, config_digest, f"{label}: config")
        say(f"Copying config {config_digest.short} done")
        config_desc = _manifest.Descriptor(_image.OCI_CONFIG, config_digest, len(config_data))
        manifest_doc = {
            "schemaVersion": 2,
            "mediaType": _image.OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [layer.to_json()],
        }
        manifest_data = jsonfast.dumps(manifest_doc).encode()
        manifest_digest = _digest.of_bytes(manifest_data)
        db.claim_blob(manifest_digest, len(manifest_data))
        say("Writing manifest to image destination")
        storage.blobs.ingest_bytes(manifest_data, manifest_digest, f"{label}: manifest")
        manifest = _manifest.Manifest(_image.OCI_MANIFEST, config_desc, [layer])
        config = _image.parse_config(config_data, f"{label}: config")
        return record_image(
            storage,
            manifest_digest,
            len(manifest_data),
            _image.OCI_MANIFEST,
            manifest,
            config,
            [ref_],
            [tag] if tag else [],
        )
