"""Ending a container from outside its monitor: `stop` (its stop signal, SIGKILL after a timeout), `kill` (a
signal to its init) and `rm` (killed first with --force), for the cli, pods, prune and volume and network
removals. The signal goes through the container's runtime; a paused container is thawed so that it gets it;
stop and rm -f then wait until its monitor has recorded the exit (and finish it here if the monitor is gone).
"""

from __future__ import annotations

import time

from hutch.engine.containers import LIVE, _alive
from hutch.engine.db import NoSuchContainer
from hutch.errors import HutchError, NotFoundError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.containers import Engine
    from hutch.engine.db import Record

STOP_TIMEOUT = 10


class RunningError(StateError):
    """The container runs and the operation needs it stopped (podman rm exits 2)."""


def stop(engine: Engine, name_or_id: str, timeout: int | None = None) -> Record:
    """The image's stop signal (SIGTERM by default), SIGKILL after `timeout` seconds (by default the
    container's --stop-timeout, else 10); waits until the exit is recorded."""
    from hutch.engine import monitor
    from hutch.runtime import lifecycle

    rec = engine.find(name_or_id)
    monitor.stopped_by_user(engine, rec)  # no restart policy restarts it, even one on its way
    rec = monitor.settled(engine, rec)  # a restart under way has started the container, or given up
    if rec.state not in LIVE:
        return rec
    if timeout is None:  # the container's --stop-timeout (inspect's Config.StopTimeout)
        from hutch import jsonfast

        configured = jsonfast.loads(rec.config or "{}").get("StopTimeout")
        timeout = STOP_TIMEOUT if configured is None else int(configured)
    runtime = monitor.runtime_of(rec)
    if not monitor.alive(runtime, rec.id):
        return engine.refresh(rec)
    try:
        sig = lifecycle.parse_signal(rec.stop_signal or "TERM")
    except HutchError:
        sig = 15  # an image's unknown StopSignal: podman's default
    try:
        runtime.kill(rec.id, sig)
    except (StateError, NotFoundError):
        pass
    _thaw(engine, rec)  # a paused container gets the signal once thawed, as podman stops it
    deadline = time.monotonic() + timeout
    while monitor.alive(runtime, rec.id) and time.monotonic() < deadline:
        time.sleep(0.02)
    if monitor.alive(runtime, rec.id):
        try:
            runtime.kill(rec.id, 9, all_processes=True)
        except (StateError, NotFoundError):
            pass
    return _wait_recorded(engine, rec)


def kill(engine: Engine, name_or_id: str, sig: int) -> Record:
    """podman kill: the signal to the container's init."""
    from hutch.engine import monitor

    rec = engine.find(name_or_id)
    try:
        if rec.state not in LIVE:
            raise StateError("not running")
        monitor.runtime_of(rec).kill(rec.id, sig)
        if sig == 9:
            _thaw(engine, rec)  # SIGKILL kills a frozen v1 cgroup's processes only once thawed
    except (NotFoundError, StateError):
        raise StateError(
            f"can only kill running containers. {rec.id} is in state {engine.find(rec.id).state}: "
            "container state improper"
        ) from None
    return rec


def remove(engine: Engine, name_or_id: str, force: bool = False, volumes: bool = False) -> Record:
    """podman rm: a running container only with `force` (killed first); `volumes` (rm -v) removes its
    anonymous volumes too."""
    from hutch.engine import monitor

    rec = engine.find(name_or_id)
    if not force:
        # Checked and removed under the lock under which a start claims it: a start in between would
        # lose its container.
        with engine.lock(rec.id):
            rec = engine.db.get(rec.id)
            if rec.state in LIVE:
                raise RunningError(
                    f"cannot remove container {rec.id} as it is running - running or paused containers "
                    "cannot be removed without force: container state improper"
                )
            engine.finish(rec.id, None, remove=True)
        _remove_volumes(engine, rec, volumes)
        return rec
    if rec.state in LIVE:
        monitor.stopped_by_user(engine, rec)
        rec = monitor.settled(engine, rec)
        try:
            monitor.runtime_of(rec).kill(rec.id, 9, all_processes=True)
        except (NotFoundError, StateError):
            pass
        _thaw(engine, rec)
        _wait_recorded(engine, rec)
    engine.finish(rec.id, None, remove=True)
    _remove_volumes(engine, rec, volumes)
    return rec


def _wait_recorded(engine: Engine, rec: Record, timeout: float = 10.0) -> Record:
    """Wait for the monitor to record the exit; finish here if it is gone."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            now = engine.db.get(rec.id)
        except NoSuchContainer:
            return rec
        if now.state != "running":
            return now
        if not (now.monitor_pid and _alive(now.monitor_pid)) or time.monotonic() > deadline:
            return engine.refresh(now)
        time.sleep(0.01)


def _thaw(engine: Engine, rec: Record) -> None:
    if rec.state == "paused":
        from hutch.engine import pause

        pause.thaw(engine, rec)


def _remove_volumes(engine: Engine, rec: Record, volumes: bool) -> None:
    if volumes:
        from hutch import jsonfast
        from hutch.engine import volumes as _volumes

        _volumes.remove_anonymous(engine, jsonfast.loads(rec.config or "{}").get("Mounts") or [])
