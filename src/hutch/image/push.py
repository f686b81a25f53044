"""Push a stored image to a registry: its blobs (skipped when there, mounted across repositories of the
same registry when the image came from one), then its manifest, byte for byte, so the digest is kept.

Blobs go up in parallel threads (the registry client is thread-safe); the manifest goes last, once every blob
it names is in place, as the distribution spec requires. Progress is pull's (hutch.image.progress): a bar per
blob as its bytes go up on a terminal, podman's `Copying blob ID done` lines otherwise.
"""

from __future__ import annotations

from hutch.errors import ConfigError, HutchError
from hutch.image import reference as _reference
from hutch.image.auth import Login
from hutch.image.storage import Storage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from hutch.image.progress import Progress
    from hutch.oci.digest import Digest

MAX_WORKERS = 4


class PushError(HutchError):
    """A stored image cannot be pushed (a blob of it is missing from the store)."""


def destination(text: str) -> _reference.Reference:
    """A push destination: a reference, or `docker://` and a reference (podman's transport syntax)."""
    if text.startswith("docker://"):
        text = text[len("docker://") :]
    elif "://" in text or text.startswith(("oci:", "docker-archive:", "oci-archive:", "dir:")):
        raise ConfigError(f"push destination {text!r}: only registry destinations (docker://) are supported")
    ref = _reference.parse(text)
    if ref.digest is not None:
        raise ConfigError(f"push destination {text!r}: cannot push to a digest")
    return ref.with_default_tag()


def push(
    source: str,
    dest: str | None = None,
    *,
    storage: Storage,
    tls_verify: bool = True,
    progress: Progress | Callable[[str], None] | None = None,
    registries_conf: str | None = None,
    login: Login | None = None,
) -> Digest:
    """Push the stored image `source` to `dest` (default: the name `source` gives); returns the manifest
    digest the registry now has. registries.conf may block the registry or make it insecure (its mirrors
    are for pulls only). `progress` is a hutch.image.progress.Progress or a callable taking podman's lines.
    `login`: --creds and --authfile (default: the usual auth files)."""
    from hutch.image import progress as _progress

    report = _progress.of(progress)
    try:
        return _push(source, dest, storage, tls_verify, report, registries_conf, login or Login())
    finally:
        report.close()


def _push(
    source: str,
    dest: str | None,
    storage: Storage,
    tls_verify: bool,
    report: Progress,
    registries_conf: str | None,
    login: Login,
) -> Digest:
    from concurrent.futures import ThreadPoolExecutor

    from hutch.image import registries, upload
    from hutch.image.registry import Registry

    image = storage.find(source)
    target = destination(dest if dest is not None else source)
    insecure = registries.load(explicit=registries_conf).insecure(target)
    manifest = storage.manifest(image)
    data = storage.blobs.read(image.manifest_digest)
    descriptors = [manifest.config, *manifest.layers]
    for d in descriptors:
        if not storage.blobs.has(d.digest):
            raise PushError(f"{source}: blob {d.digest} is not in the store {storage.root}")
    # Repositories of the same registry that had the image: a blob may be mounted from them.
    mount_from = ""
    for t in image.tags:
        try:
            ref = _reference.parse(t)
        except _reference.ImageReferenceError:
            continue
        if ref.domain == target.domain and ref.repository != target.repository:
            mount_from = ref.repository
            break
    report.line("Getting image source signatures")
    verify = tls_verify and not insecure
    with Registry(
        target.domain, tls_verify=verify, credentials=login.credentials, auth_file=login.auth_file
    ) as reg:
        reg.ping()  # auth challenge and scheme settled once, before the blob threads start

        def send(index: int) -> None:
            d = descriptors[index]
            what = "config" if index == 0 else "blob"
            report.blob_start(what, d.digest, d.size)
            done = upload.push_blob(
                reg,
                target.repository,
                d.digest,
                d.size,
                storage.blobs.path(d.digest),
                mount_from=mount_from or None,
                progress=lambda n: report.blob_advance(d.digest, n),
            )
            note = {"exists": "skipped: already exists", "mounted": "skipped: mounted"}.get(done, "done")
            report.blob_done(what, d.digest, note)

        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(descriptors))) as pool:
            for f in [pool.submit(send, i) for i in range(len(descriptors))]:
                f.result()
        report.line("Writing manifest to image destination")
        return upload.put_manifest(reg, target.repository, target.tag, data, image.media_type)
