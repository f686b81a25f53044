"""A detached run (`run -d`, `start`) under conmon (hutch.engine.conmon): conmon holds the container's stdio
(the log, a pty with -t), and its exit command, `hutch container cleanup ID`, records the exit, finishes the
container (hutch.engine.monitor.finish) and applies the restart policy."""

from __future__ import annotations

import contextlib
import os
import time

from hutch.engine.containers import invoke_error
from hutch.engine.db import NoSuchContainer
from hutch.engine.monitor import config_of, failed_launch, finish, runtime_of, start_health_timer, unmount
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.engine.runtimes import Runtime


def run_detached(
    engine: Engine, rec: Record, restore: str | None = None, on_created: Callable[[], None] | None = None
) -> None:
    """Start `rec` under conmon (see hutch.engine.conmon): it holds the container's stdio (the log, a pty
    with -t), and its exit command records the exit. Returns once the container runs. A failed launch
    removes the container, or with `restore` (a `start`) puts it back in that state."""
    from hutch.engine import conmon

    cfg = config_of(rec)
    runtime = runtime_of(rec)
    userdata = engine.path(rec, "userdata")
    try:
        conmon_pid, pid = conmon.spawn(
            container_id=rec.id,
            name=rec.name,
            userdata=userdata,
            runtime=runtime,
            cleanup=cleanup_command(engine, rec.id),
            tty=bool(cfg.get("Tty")),
            stdin=bool(cfg.get("OpenStdin")),
            log_driver=str(cfg.get("LogDriver") or "k8s-file"),
            log_size_max=int(cfg.get("LogSizeMax") or 0),
        )
    except BaseException as e:
        _undo(engine, rec, runtime, restore)
        if isinstance(e, conmon.CreateError):
            raise invoke_error(HutchError(str(e))) from None
        raise
    # From here conmon is the monitor: a `ps` that finds the container's init gone leaves it to conmon.
    engine.db.update(rec.id, monitor_pid=conmon_pid)
    try:
        if on_created is not None:  # run -it: attach before the container can write anything
            on_created()
        from hutch.engine.network.setup import ready

        ready(engine, rec)  # the networks' plugins ran while conmon had the runtime create the container
        runtime.start(rec.id)
    except BaseException as e:
        # conmon sees init die and calls cleanup, which leaves a container that no longer runs alone.
        _undo(engine, rec, runtime, restore)
        if isinstance(e, HutchError):
            raise invoke_error(e) from None
        raise
    engine.db.update(rec.id, state="running", started=time.time())
    start_health_timer(engine, rec)


def _undo(engine: Engine, rec: Record, runtime: Runtime, restore: str | None) -> None:
    with contextlib.suppress(HutchError):
        runtime.delete(rec.id)
    failed_launch(engine, rec.id, restore)


def cleanup_command(engine: Engine, container_id: str) -> list[str]:
    """conmon's exit command: `hutch --root ROOT [--db-path DB] container cleanup ID`."""
    from hutch.engine import conmon

    argv = [*conmon.exit_command(), "--root", engine.root]
    if engine.image_db_path != os.path.join(engine.root, "hutch.db"):
        argv += ["--db-path", engine.image_db_path]
    return [*argv, "container", "cleanup", container_id]


def cleanup(engine: Engine, container_id: str) -> None:
    """conmon's exit command: record the exit code conmon wrote, delete the runtime state, unmount the
    rootfs (or with --rm remove the container), then apply the restart policy."""
    from hutch.engine import restart

    try:
        rec = engine.db.get(container_id)
    except NoSuchContainer:
        return
    userdata = engine.path(rec, "userdata")
    if runtime_of(rec).status(rec.id) in ("running", "paused"):
        return  # not this container's exit (conmon was asked to clean up early)
    policy = config_of(rec).get("RestartPolicy")
    if isinstance(policy, dict) and policy.get("Name"):
        from hutch.engine.containers import prepare_launch

        prepare_launch()  # before anything is changed: it may re-exec us
    code = recorded_exit(engine, rec)
    finish(engine, rec.id, code, if_running=True)
    if rec.remove or not isinstance(policy, dict) or not restart.wanted(policy, code, userdata):
        return
    try:
        now = engine.db.get(rec.id)
    except NoSuchContainer:
        return
    if now.state != "exited":
        return
    restart.save(userdata, RestartCount=restart.count(userdata) + 1)
    claimed, previous = engine.claim_start(rec.id)
    if previous is None:
        return
    if restart.load(userdata).get("StoppedByUser"):  # a stop came in meanwhile: it wins
        with engine.lock(rec.id):
            unmount(engine, claimed)
            engine.db.update(rec.id, state=previous, monitor_pid=None)
        return
    engine.start_detached(claimed, previous)


def recorded_exit(engine: Engine, rec: Record) -> int:
    """The exit code conmon wrote for `rec`'s last run; -1 when it wrote none (its monitor died first)."""
    from hutch.engine import conmon

    code = conmon.exit_code(engine.path(rec, "userdata"), rec.id)
    return code if code is not None else -1
