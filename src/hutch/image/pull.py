"""Pull an image from a registry into the storage: manifest, config and layers, verified, unpacked once.

`pull(reference, storage=..., platform=..., tls_verify=..., progress=...)` resolves the reference (a short
name tries each search registry in turn), fetches the manifest (an index is resolved to the platform's
manifest), then the config and every layer in parallel threads into the blob store, each verified while it
streams. Each layer is unpacked under layers/<diff_id hex>/ under its layer lock, once: a layer some image
already has is neither unpacked nor, when its blob is stored, downloaded again. Each unpacked layer's diff_id
is checked against the config's rootfs.diff_ids. Only then is the image recorded, with its tag, in one
transaction.

Crash safety: blobs reach blobs/ only whole and verified; a layer is `pulling` in the database until its
directory is complete and synced, and a later pull clears and unpacks it again; the image record is one
transaction at the end. Concurrent pulls of the same image share blobs (the store's renames are atomic) and
serialize on each layer's lock.
"""

from __future__ import annotations

import os
import shutil
import threading

from hutch.errors import HutchError, NotFoundError
from hutch.image import db as _db
from hutch.image import layers as _layers
from hutch.image import reference as _reference
from hutch.image.storage import Storage
from hutch.oci import image as _image
from hutch.oci import manifest as _manifest
from hutch.oci.digest import Digest, MismatchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any, BinaryIO

    from hutch.image.auth import Login
    from hutch.image.pipe import Pipe
    from hutch.image.progress import Progress
    from hutch.image.registries import Endpoint
    from hutch.image.registry import Registry, Resolved

MAX_WORKERS = 6


class PullError(HutchError):
    """A pull failed: no candidate of a short name had the image, or a layer does not match its config."""


def pull(
    reference: str,
    *,
    storage: Storage,
    platform: _image.Platform | None = None,
    tls_verify: bool = True,
    progress: Progress | Callable[[str], None] | None = None,
    search_registries: Iterable[str] | None = None,
    registries_conf: str | None = None,
    login: Login | None = None,
) -> _db.Image:
    """Pull `reference` into `storage` and return its image record (podman pull's steps, as lines to
    `progress`). registries.conf (`registries_conf`, else the usual files) gives the search registries, the
    mirrors tried before a registry, and the registries that are insecure or blocked. `progress` is a
    hutch.image.progress.Progress (bars on a terminal) or a callable that takes podman's lines. `login`:
    --creds and --authfile (default: the usual auth files)."""
    from hutch.image import progress as _progress

    report = _progress.of(progress)
    try:
        return _pull(
            reference, storage, platform, tls_verify, report, search_registries, registries_conf, login
        )
    finally:
        report.close()


def _pull(
    reference: str,
    storage: Storage,
    platform: _image.Platform | None,
    tls_verify: bool,
    report: Progress,
    search_registries: Iterable[str] | None,
    registries_conf: str | None,
    login: Login | None,
) -> _db.Image:
    from hutch.image import registries as _registries
    from hutch.image.registry import RegistryError

    conf = _registries.load(explicit=registries_conf)
    candidates = _reference.resolve(
        reference, conf.search if search_registries is None else search_registries
    )
    errors: list[str] = []
    for ref in candidates:
        ref = ref.with_default_tag()
        report.line(f"Trying to pull {ref}...")
        try:
            try:
                return _pull_from(conf.endpoints(ref), ref, storage, platform, tls_verify, report, login)
            except BaseException:
                clean_up(storage)
                raise
        except (RegistryError, NotFoundError) as e:
            if len(candidates) == 1:
                raise
            errors.append(f"{ref}: {e}")
    raise PullError(f"{reference}: no search registry has the image: {'; '.join(errors)}")


def _pull_from(
    endpoints: list[Endpoint],
    ref: _reference.Reference,
    storage: Storage,
    platform: _image.Platform | None,
    tls_verify: bool,
    report: Progress,
    login: Login | None,
) -> _db.Image:
    """Pull `ref` from the first endpoint that has it (mirrors, then the registry); the last one's error is
    the one raised."""
    for i, ep in enumerate(endpoints):
        try:
            return _pull_one(ep.ref, ref, storage, platform, tls_verify and not ep.insecure, report, login)
        except HutchError:
            if i == len(endpoints) - 1:
                raise
    raise PullError(f"{ref}: no registry to pull from")  # endpoints always ends with the registry itself


def clean_up(storage: Storage) -> None:
    """After a failed pull, load or import: remove what it stored and no image references (unless another pull
    runs, which may still record it; then the next rmi or prune does). Errors here are dropped: the first error
    is the one to report."""
    try:
        storage.collect()
    except (HutchError, OSError):
        pass


def _registry(host: str, tls_verify: bool, login: Login | None) -> Registry:
    from hutch.image.auth import Login
    from hutch.image.registry import Registry

    login = login or Login()
    return Registry(host, tls_verify=tls_verify, credentials=login.credentials, auth_file=login.auth_file)


def _pull_one(
    source: _reference.Reference,
    ref: _reference.Reference,
    storage: Storage,
    platform: _image.Platform | None,
    tls_verify: bool,
    report: Progress,
    login: Login | None,
) -> _db.Image:
    """Pull from `source` (the registry, or a mirror of it); the image is recorded under `ref`'s name."""
    with _registry(source.domain, tls_verify, login) as reg:
        resolved = reg.resolve(source.repository, source.object, platform)
        if ref.digest is not None and resolved.index_digest is None and resolved.digest != ref.digest:
            raise MismatchError(f"{source}: the registry sent manifest {resolved.digest}")
        lock = storage.pull_lock()
        with lock:
            return _fetch(ref, source, reg, resolved, storage, report)


def _fetch(
    ref: _reference.Reference,
    source: _reference.Reference,
    reg: Registry,
    resolved: Resolved,
    storage: Storage,
    report: Progress,
) -> _db.Image:
    from concurrent.futures import Future, ThreadPoolExecutor

    manifest = resolved.manifest
    repo = source.repository
    where = str(source)
    if not manifest.layers:
        raise PullError(f"{where}: the manifest has no layers")
    db = storage.db
    db.claim_blob(resolved.digest, len(resolved.data))
    db.claim_blob(manifest.config.digest, manifest.config.size)
    for layer in manifest.layers:
        db.claim_blob(layer.digest, layer.size)
    from hutch.image.progress import counting

    report.line("Getting image source signatures")
    storage.blobs.ingest_bytes(resolved.data, resolved.digest, f"{where} (manifest)")

    config_ready = threading.Event()
    state: dict[str, _image.ImageConfig] = {}
    failed = threading.Event()

    def fetch_config() -> _image.ImageConfig:
        try:
            c = manifest.config
            report.blob_start("config", c.digest, c.size)
            chunks = counting(reg.iter_blob(repo, c.digest, c.size), report, c.digest)
            storage.blobs.ingest(c.digest, c.size, chunks, f"{where}: config {c.digest}")
            config = _image.parse_config(storage.blobs.read(c.digest), f"{where}: config {c.digest}")
            if len(config.diff_ids) != len(manifest.layers):
                raise PullError(
                    f"{where}: the config lists {len(config.diff_ids)} diff_ids for {len(manifest.layers)} layers"
                )
            state["config"] = config
            report.blob_done("config", c.digest)
            return config
        finally:
            config_ready.set()

    def fetch_layer(index: int) -> _db.LayerRef:
        desc = manifest.layers[index]
        label = f"{where}: layer {desc.digest}"
        # A stored blob is not downloaded again (ingest does not read the stream); its diff_id comes with the
        # config, which downloads beside the layers.
        existed = storage.blobs.has(desc.digest)
        config_ready.wait()  # the config is small: its diff_ids come before the layers' bytes do
        config = state.get("config")
        if config is None or failed.is_set():
            raise PullError(f"{label}: abandoned")
        diff_id = config.diff_ids[index]
        if not existed:
            report.blob_start("blob", desc.digest, desc.size)
        chunks = counting(reg.iter_blob(repo, desc.digest, desc.size), report, desc.digest)
        if existed or _unpacked(storage, diff_id):
            storage.blobs.ingest(desc.digest, desc.size, chunks, label, verified=True)
            ref = install_layer(storage, diff_id, desc, label)
        else:
            ref = _download_and_unpack(storage, diff_id, desc, label, chunks)
        report.blob_done("blob", desc.digest, "skipped: already exists" if existed else "done")
        return ref

    workers = min(MAX_WORKERS, len(manifest.layers) + 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hutch-pull") as pool:
        config_future = pool.submit(fetch_config)
        futures: list[Future[_db.LayerRef]] = [
            pool.submit(fetch_layer, i) for i in range(len(manifest.layers))
        ]
        try:
            config = config_future.result()
            refs = [f.result() for f in futures]
        except BaseException:
            failed.set()
            for f in futures:
                f.cancel()
            raise

    report.line("Writing manifest to image destination")
    tags = [str(ref)] if ref.digest is None else [f"{ref.name}@{ref.digest}"]
    return record_image(
        storage,
        resolved.digest,
        len(resolved.data),
        resolved.media_type,
        manifest,
        config,
        refs,
        tags,
        index_digest=resolved.index_digest,
    )


def _unpacked(storage: Storage, diff_id: Digest) -> bool:
    db = storage.open_db()  # called from a download thread: its own connection
    try:
        layer = db.layer(diff_id)
    finally:
        db.close()
    return layer is not None and layer.state == "unpacked"


def _download_and_unpack(
    storage: Storage, diff_id: Digest, desc: _manifest.Descriptor, label: str, chunks: Iterator[bytes]
) -> _db.LayerRef:
    """Store the layer's blob and unpack it at once: each chunk goes to the blob store and, through a pipe,
    to the unpacker in a second thread, so the unpacking does not wait for the download.

    The unpacker sees the end of the stream only once the blob is verified and stored (the registry client
    yields its last chunk after verifying it, and the pipe is closed after ingest returns), so a layer is
    never finished from bytes that did not verify; on a download error the unpacker fails and clears its
    directory. When ingest finds the blob stored by another pull, it does not read the stream: then the
    layer is unpacked from the stored blob."""
    from hutch.image.pipe import Pipe

    pipe = Pipe()
    outcome: dict[str, Any] = {}

    def unpack() -> None:
        try:
            outcome["ref"] = install_layer(storage, diff_id, desc, label, stream=pipe)
        except BaseException as e:
            outcome["error"] = e
        finally:
            pipe.abandon()

    thread = threading.Thread(target=unpack, name="hutch-unpack", daemon=True)
    thread.start()
    try:
        storage.blobs.ingest(desc.digest, desc.size, _tee(chunks, pipe), label, verified=True)
        pipe.close()
    except BaseException as e:
        pipe.fail(e)
        raise
    finally:
        thread.join()
    if "error" in outcome:
        if pipe.fed < desc.size and storage.blobs.has(desc.digest):
            return install_layer(storage, diff_id, desc, label)
        raise outcome["error"]
    ref: _db.LayerRef = outcome["ref"]
    return ref


def _tee(chunks: Iterator[bytes], pipe: Pipe) -> Iterator[bytes]:
    for chunk in chunks:
        pipe.write(chunk)
        yield chunk


def install_layer(
    storage: Storage,
    diff_id: Digest,
    desc: _manifest.Descriptor,
    label: str,
    stream: BinaryIO | Pipe | None = None,
) -> _db.LayerRef:
    """Unpack the stored blob of `desc` (or what `stream` gives) as the layer `diff_id`, under its lock,
    once: a layer already unpacked is kept, one left `pulling` by a killed process is unpacked again. The
    unpacked tar must hash to `diff_id`. Safe from several threads (each uses its own database connection).
    Shared by pull, load and import."""
    path = storage.layer_path(diff_id)
    layer_db = storage.open_db()
    try:
        with storage.layer_lock(diff_id):
            row = layer_db.begin_layer(diff_id, path, desc.digest, desc.size)
            if row.state == "unpacked" and os.path.isdir(row.path):
                return _db.LayerRef(diff_id, desc.digest)
            # Left `pulling` by a killed pull, or never unpacked: start from an empty directory.
            shutil.rmtree(path, ignore_errors=True)
            if stream is not None:
                stats = _layers.unpack(stream, desc.media_type, path, layer=str(desc.digest))  # type: ignore[arg-type]
            else:
                with storage.blobs.open(desc.digest) as f:
                    stats = _layers.unpack(f, desc.media_type, path, layer=str(desc.digest))
            if stats.diff_id != str(diff_id):
                shutil.rmtree(path, ignore_errors=True)
                raise MismatchError(
                    f"{label}: diff_id mismatch: the config says {diff_id}, the layer unpacks to {stats.diff_id}"
                )
            _syncfs(path)
            layer_db.finish_layer(diff_id, stats.size)
        return _db.LayerRef(diff_id, desc.digest)
    finally:
        layer_db.close()


def record_image(
    storage: Storage,
    manifest_digest: Digest,
    manifest_size: int,
    media_type: str,
    manifest: _manifest.Manifest,
    config: _image.ImageConfig,
    refs: list[_db.LayerRef],
    tags: list[str],
    index_digest: Digest | None = None,
) -> _db.Image:
    """Record an image whose manifest, config and layer blobs are stored and whose layers are installed, with
    `tags`, in one transaction; return its record. Its size is podman's: manifest, config and unpacked layers."""
    size = manifest_size + manifest.config.size + sum(_unpacked_size(storage, r) for r in refs)
    image = _db.Image(
        id=manifest.config.digest,
        manifest_digest=manifest_digest,
        media_type=media_type,
        size=size,
        os=config.os,
        architecture=config.architecture,
        variant=config.variant,
        created=config.created or None,
        index_digest=index_digest,
    )
    blobs: list[tuple[Digest, int]] = [
        (manifest_digest, manifest_size),
        (manifest.config.digest, manifest.config.size),
    ] + [(d.digest, d.size) for d in manifest.layers]
    storage.db.record_image(image, refs, blobs, tags)
    return storage.db.get(image.id)


def _unpacked_size(storage: Storage, ref: _db.LayerRef) -> int:
    layer = storage.db.layer(ref.diff_id)
    if layer is None:
        return 0
    return layer.unpacked_size if layer.unpacked_size is not None else layer.size or 0


def _syncfs(path: str) -> None:
    """Flush the file system holding `path`, so the layer is on disk before it is marked unpacked."""
    from hutch.linux.libc import libc

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        libc.syncfs(fd)
    finally:
        os.close(fd)
