"""podman commit: a new image of the container's image plus a layer of what the container changed (its
overlay upper dir, whiteouts made OCI's), with the container's command as CMD/ENTRYPOINT and the `--change`
instructions applied. `-p` freezes a running container while its upper dir is read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.image.db import Image


def commit(
    engine: Engine,
    rec: Record,
    image_name: str = "",
    *,
    changes: list[str] | None = None,
    message: str = "",
    author: str = "",
    pause: bool = False,
    docker: bool = False,
    say: Callable[[str], None] | None = None,
) -> Image:
    """The new image, tagged `image_name` (podman's `localhost/NAME:latest` for a bare name) if given; an OCI
    image, or with `docker` one with a Docker schema 2 manifest."""
    from hutch.engine.changes import image_layers, layer_entries, mountpoints
    from hutch.engine.copy import write_tar
    from hutch.image.commit import commit_image, local_tag
    from hutch.image.importer import apply_changes

    tag = local_tag(image_name) if image_name else ""
    storage = engine.storage()
    base = storage.find(rec.image_id)
    config = _config(storage.config_document(base).get("config") or {}, rec)
    apply_changes(config, list(changes or []))
    tmp_root = os.path.join(storage.root, "tmp")
    os.makedirs(tmp_root, mode=0o700, exist_ok=True)
    with tempfile.TemporaryFile(dir=tmp_root) as layer:
        with _paused(engine, rec, pause):
            skip = mountpoints(engine, rec, image_layers(engine, rec))
            write_tar(layer_entries(engine.path(rec, "upper"), skip), layer)
        layer.seek(0)
        history: dict[str, Any] = {"created_by": rec.command}
        if message:
            history["comment"] = message
        if author:
            history["author"] = author
        return commit_image(
            storage,
            base,
            layer,
            config=config,
            tag=tag,
            history=history,
            author=author,
            docker=docker,
            say=say,
        )


def _config(image_config: dict[str, Any], rec: Record) -> dict[str, Any]:
    """The image's container config with the container's command, environment (its -e and --env-file
    too; HOSTNAME is the container's own, not kept), user, working directory and labels, as podman commit
    keeps them."""
    from hutch import jsonfast

    config = dict(image_config)
    created = jsonfast.loads(rec.config or "{}")
    for key in ("Cmd", "Entrypoint"):
        if created.get(key) is not None:
            config[key] = list(created[key])
    if created.get("Env") is not None:
        config["Env"] = [e for e in created["Env"] if not e.startswith("HOSTNAME=")]
    for key in ("User", "WorkingDir"):
        if created.get(key):
            config[key] = created[key]
    if created.get("Labels"):
        config["Labels"] = {**(config.get("Labels") or {}), **created["Labels"]}
    return config


@contextlib.contextmanager
def _paused(engine: Engine, rec: Record, pause: bool) -> Iterator[None]:
    now = engine.find(rec.id)
    if not pause or now.state != "running":
        yield
        return
    engine.pause(rec.id)
    try:
        yield
    finally:
        with contextlib.suppress(HutchError):
            engine.unpause(rec.id)
