"""Starting a created or exited container again (`start`, `restart`, a restart policy, a pod's start): it is
claimed (recorded as running under this process), its rootfs mounted again, and started under a monitor."""

from __future__ import annotations

import os

from hutch.engine.containers import LIVE
from hutch.errors import NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


def claim(engine: Engine, name_or_id: str) -> tuple[Record, str | None]:
    """Mark a created or exited container as starting (running, under this process) and mount its rootfs;
    returns it and the state it had, None when it already runs (podman start is then a no-op)."""
    rec = engine.find(name_or_id)
    with engine.lock(rec.id):
        rec = engine.db.get(rec.id)
        if rec.state in LIVE:
            return rec, None
        engine.db.update(rec.id, state="running", monitor_pid=os.getpid())
    try:
        mount(engine, rec)
    except BaseException:
        engine.db.update(rec.id, state=rec.state, monitor_pid=None)
        raise
    return rec, rec.state


def start_detached(engine: Engine, rec: Record, previous: str) -> None:
    """Start a container `claim` claimed, under a monitor; on failure it is back in `previous`."""
    try:
        engine.run_detached(rec, restore=previous)
    except BaseException:
        from hutch.engine import monitor

        monitor.put_back(engine, rec.id, previous)
        raise


def mount(engine: Engine, rec: Record) -> None:
    """The container's rootfs, mounted again after an exit unmounted it (its upper dir kept)."""
    from hutch.image import snapshot
    from hutch.oci import digest

    merged = engine.path(rec, "merged")
    if os.path.ismount(merged):
        return
    layers = engine.storage().db.image_layers(digest.parse(f"sha256:{rec.image_id}", "container image"))
    if not layers:
        raise NotFoundError(f"container {rec.id[:12]}: its image {rec.image_id[:12]} is not known")
    paths = [layer.path for layer in reversed(layers)]
    if rec.remove:  # mounted volatile before (see hutch.image.snapshot)
        snapshot.clear_volatile(engine.path(rec, "work"))
    upper, work = engine.path(rec, "upper"), engine.path(rec, "work")
    snapshot.mount_rootfs(paths, upper, work, merged, volatile=rec.remove)
