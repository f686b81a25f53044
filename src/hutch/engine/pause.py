"""podman pause and unpause: the container's cgroup frozen and thawed through the runtime library's freezer
(v1's freezer.state on hybrid hosts, cgroup.freeze on v2), or another runtime's `pause`/`resume`. The
record says `paused` while it is frozen, so ps and inspect show it without asking the kernel; stop, kill -9
and rm -f thaw it (see hutch.engine.stopping).
"""

from __future__ import annotations

from hutch.engine.db import Record
from hutch.errors import NotFoundError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.containers import Engine
    from hutch.runtime.container import Container


def _runtime(engine: Engine, rec: Record) -> Container:
    from hutch.runtime import container

    try:
        return container.load(engine.runtime_root, rec.id)
    except NotFoundError:
        raise StateError(f'"{rec.id}" is not running: container state improper') from None


def pause(engine: Engine, rec: Record) -> Record:
    from hutch.engine import foreign_ops
    from hutch.runtime.cgroups import freezer

    with engine.lock(rec.id):
        rec = engine.db.get(rec.id)
        if rec.state == "paused":
            raise StateError(f'"{rec.id}" is already paused: container state improper')
        if rec.state != "running":
            raise StateError(f'"{rec.id}" is not running, can\'t pause: container state improper')
        other = foreign_ops.cli_runtime(rec)
        if other is not None:
            foreign_ops.pause(other, rec.id)
        else:
            c = _runtime(engine, rec)
            if c.status() != "running":
                raise StateError(f'"{rec.id}" is not running, can\'t pause: container state improper')
            freezer.pause(c.cgroup)
        engine.db.update(rec.id, state="paused")
    return engine.db.get(rec.id)


def unpause(engine: Engine, rec: Record) -> Record:
    with engine.lock(rec.id):
        rec = engine.db.get(rec.id)
        if rec.state != "paused":
            raise StateError(f'"{rec.id}" is not paused, can\'t unpause: container state improper')
        thaw(engine, rec)
    return engine.db.get(rec.id)


def thaw(engine: Engine, rec: Record) -> None:
    """Thaw the container's cgroup (if it still has one) and record it `running` again."""
    from hutch.engine import foreign_ops
    from hutch.runtime import cgroups, container

    other = foreign_ops.cli_runtime(rec)
    if other is not None:
        engine.db.update(rec.id, state="running")  # first, as below
        if other.status(rec.id) == "paused":
            foreign_ops.resume(other, rec.id)
        return
    try:
        c = container.load(engine.runtime_root, rec.id)
    except NotFoundError:
        c = None
    # Recorded first: once thawed the container may exit at once, and its monitor's `exited` must win.
    engine.db.update(rec.id, state="running")
    if c is not None and cgroups.is_frozen(c.cgroup, strict=False):
        from hutch.runtime.cgroups import freezer

        freezer.resume(c.cgroup)
