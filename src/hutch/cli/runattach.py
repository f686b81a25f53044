"""`run -t` in the foreground, as podman runs it: the container goes under conmon (which holds the pty and
writes the log), and we attach to conmon's socket before it starts; the detach keys (ctrl-p,ctrl-q) leave
it running under conmon, otherwise we return its exit code. `run --rm` without -t keeps the in-process
monitor (nothing to detach from, and no process more).

With --rm the record is kept until we have read the exit code (cleanup would remove it first); a detach
hands the removal back to cleanup, or does it at once if the container has exited meanwhile.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


def run(
    engine: Engine,
    rec: Record,
    *,
    interactive: bool,
    detach_keys: str,
    restore: str | None = None,
    sig_proxy: bool = True,
) -> int:
    """Run `rec` (created with -t) attached; its exit code, or 0 once detached. `restore`: a `start -a`
    of a container claimed from that state, to which a failed launch puts it back. `sig_proxy`: the
    signals we get go to the container's init while we are attached (podman's --sig-proxy)."""
    from hutch.cli.monitor import relay
    from hutch.engine import attach, monitor
    from hutch.engine.detached import run_detached

    try:
        keys = attach.parse_detach_keys(detach_keys)  # run checked them before create; start here
    except BaseException:
        if restore is not None:
            monitor.put_back(engine, rec.id, restore)
        raise
    remove = rec.remove
    if remove:
        engine.db.update(rec.id, remove=False)
    held: list[socket.socket] = []

    def connect() -> None:
        held.append(attach.connect(rec.id))

    try:
        from hutch.engine.network.setup import before_launch

        before_launch(engine, rec, restore, background=True, any_runtime=True)  # as Engine.run_detached
        run_detached(engine, rec, restore, on_created=connect)
    except BaseException:  # a failed run removed the container; a failed start put it back
        for sock in held:
            sock.close()
        if restore is not None:
            monitor.put_back(engine, rec.id, restore)
        raise
    try:
        detached = relay(engine, rec, held[0], stdin=interactive, keys=keys, raw=interactive, proxy=sig_proxy)
    except BaseException:  # interrupted (^C without -i): the container runs on; cleanup removes it
        if remove:
            _hand_back_removal(engine, rec.id)
        raise
    if detached:
        if remove:
            _hand_back_removal(engine, rec.id)
        return 0
    code = attach.exit_code(engine, rec.id)
    if remove:
        _remove(engine, rec.id)
    return code


def _remove(engine: Engine, container_id: str) -> None:
    """What --rm does: the container, and its anonymous volumes with it."""
    from hutch.engine import monitor, volumes
    from hutch.engine.db import NoSuchContainer

    try:
        mounts = monitor.config_of(engine.db.get(container_id)).get("Mounts") or []
    except NoSuchContainer:
        return
    monitor.finish(engine, container_id, None, remove=True)
    volumes.remove_anonymous(engine, mounts)


def _hand_back_removal(engine: Engine, container_id: str) -> None:
    """--rm after a detach: cleanup removes the container when it exits; if it already has, we do."""
    from hutch.engine.db import NoSuchContainer

    with engine.lock(container_id):
        try:
            rec = engine.db.get(container_id)
        except NoSuchContainer:
            return
        engine.db.update(container_id, remove=True)
        exited = rec.state == "exited"
    if exited:
        _remove(engine, container_id)
