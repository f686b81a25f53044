"""The monitor of an engine container. A foreground run is its own monitor: it launches the container
(through the runtime library in this process, or another runtime's CLI), waits for its init as its subreaper,
and finishes it once init is gone. A detached run (`run -d`, `start`) goes under conmon (hutch.engine.detached),
whose exit command, `hutch container cleanup ID`, finishes it and applies the restart policy.

Finish deletes the runtime state, unmounts the rootfs and records the exit code, or with --rm removes the
container altogether.
"""

from __future__ import annotations

import os
import time

from hutch.engine.containers import invoke_error
from hutch.engine.db import NoSuchContainer, Record
from hutch.errors import HutchError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.logwriter import Tee
    from hutch.engine.runtimes import Runtime
    from hutch.runtime.container import Container


def launch_container(
    engine: Engine, rec: Record, console_fd: int | None = None, sig_proxy: bool = False
) -> Container:
    """Runtime create and start of `rec` (in this process); errors as podman reports them. With `sig_proxy`
    the signals we get go to its init from before it starts: one sent once the process is up must reach it."""
    from hutch.oci import config
    from hutch.runtime import foreground, launch, lifecycle

    userdata = engine.path(rec, "userdata")
    spec = config.load(userdata)
    try:
        c = launch.create(engine.runtime_root, rec.id, userdata, spec, console_fd=console_fd)
    except HutchError as e:
        raise invoke_error(e) from None
    try:
        from hutch.engine.network.setup import ready

        ready(engine, rec)  # the networks' plugins ran while the runtime created the container
        if sig_proxy:
            foreground.forward_signals(c.pid)
        lifecycle.start(c)
    except BaseException:
        lifecycle.delete(c, force=True)
        raise
    engine.db.update(rec.id, state="running", started=time.time(), monitor_pid=os.getpid())
    start_health_timer(engine, rec)
    return c


def start_health_timer(engine: Engine, rec: Record) -> None:
    """health.start_timer, imported only for a container created with a healthcheck (its config JSON names
    one; without, start_timer does nothing)."""
    if '"Healthcheck"' in rec.config:
        from hutch.engine import health

        health.start_timer(engine, rec)


def run_foreground(
    engine: Engine,
    rec: Record,
    *,
    tty: bool = False,
    interactive: bool = False,
    restore: str | None = None,
    sig_proxy: bool = True,
) -> int:
    """Run `rec` with our stdio, as its monitor; the container's exit code. A failed launch removes the
    container, or with `restore` (a `start`) puts it back in that state."""
    from hutch.runtime import foreground

    if _foreign(rec):
        from hutch.engine import foreign
        from hutch.runtime import prespawn

        prespawn.discard()  # the other runtime makes its own init
        runtime = runtime_of(rec)
        return foreign.run_foreground(
            engine, rec, runtime, tty=tty, interactive=interactive, restore=restore, sig_proxy=sig_proxy
        )
    foreground.become_subreaper()
    if not interactive:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    receiver = foreground.ConsoleReceiver() if tty else None
    tee = None if tty else _tee(engine, rec)  # the container's output to us and to its log
    try:
        try:
            c = launch_container(engine, rec, receiver.their_fd if receiver else None, sig_proxy)
        finally:
            if receiver is not None:
                os.close(receiver.their_fd)
            if tee is not None:
                tee.restore()
        master = receiver.receive() if receiver else None
    except BaseException:
        if tee is not None:
            tee.close()
        failed_launch(engine, rec.id, restore)
        raise
    if tee is not None:
        try:
            code = tee.wait(c.pid, proxy=False)  # forwarding since launch_container
        finally:
            tee.close()
    else:
        code = foreground.wait(c.pid, master, proxy=False)
    finish(engine, rec.id, code)
    return code


def _tee(engine: Engine, rec: Record) -> Tee | None:
    """A foreground run's log (hutch.engine.logwriter), as conmon keeps a detached one's; none with --rm
    (no one could read it: the hot path stays as it was) or another --log-driver."""
    if rec.remove or '"LogDriver"' in rec.config and config_of(rec).get("LogDriver") != "k8s-file":
        return None
    from hutch.engine import logwriter

    _, size = logwriter.log_options(config_of(rec))
    return logwriter.Tee(logwriter.LogWriter(engine.log_path(rec), size))


def config_of(rec: Record) -> dict[str, Any]:
    from hutch import jsonfast

    try:
        doc = jsonfast.loads(rec.config or "{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _foreign(rec: Record) -> bool:
    """Whether `rec` runs under another runtime's CLI (its config JSON names one)."""
    return '"OCIRuntime"' in rec.config and config_of(rec).get("OCIRuntime", "hutch") != "hutch"


def runtime_of(rec: Record) -> Runtime:
    from hutch.engine import runtimes

    return runtimes.of_config(config_of(rec))


def failed_launch(engine: Engine, container_id: str, restore: str | None) -> None:
    """A launch failed: a run's container goes, with its anonymous volumes (no one else could name them);
    a start's (`restore`) goes back to that state."""
    first_run = restore is None
    finish(engine, container_id, None, remove=first_run, restore=restore, volumes=first_run)


def finish(
    engine: Engine,
    container_id: str,
    exit_code: int | None,
    *,
    remove: bool = False,
    restore: str | None = None,
    if_running: bool = False,
    volumes: bool = False,
) -> None:
    """After the container's init is gone: delete its runtime state, unmount its rootfs, record the exit
    code; with `remove` (or --rm) remove it altogether, and with `volumes` (or --rm) its anonymous
    volumes. With `restore` (a failed start) the container goes back to that state and keeps its exit
    code. With `if_running`, only a container still recorded as running (cleanup and `ps` may both come
    to finish one)."""
    with engine.lock(container_id):
        try:
            rec = engine.db.get(container_id)
        except NoSuchContainer:
            # Removed meanwhile (an rm, another finish): the lock file is the one our lock just made again.
            _unlink(os.path.join(engine.containers_dir, f"{container_id}.lock"))
            return
        if if_running and rec.state not in ("running", "paused"):
            return
        if '"Healthcheck"' in rec.config:  # no check loop runs without one (see start_health_timer)
            from hutch.engine import health

            health.stop_timer(engine, rec)
        runtime_delete(engine, rec)
        from hutch.engine.network.setup import teardown

        teardown(engine, rec)  # CNI DEL, the netns: nothing of the network outlives init
        unmount(engine, rec)
        if os.path.exists(engine.path(rec, "userdata/conmon.pid")):  # it ran under conmon
            from hutch.engine import conmon

            conmon.forget(engine.path(rec, "userdata"), rec.id)  # conmon, if alive, is on its way out
        if remove or rec.remove:
            remove_files(engine, rec)
            engine.db.remove(rec.id)
            _unlink(os.path.join(engine.containers_dir, f"{rec.id}.lock"))
            mounts = config_of(rec).get("Mounts") if '"Mounts"' in rec.config else None
            if mounts and (rec.remove or volumes):  # --rm takes the anonymous volumes with it, as podman's
                from hutch.engine import volumes as _volumes

                _volumes.remove_anonymous(engine, mounts)
            return
        if restore is not None:
            engine.db.update(rec.id, state=restore, monitor_pid=None)
            return
        engine.db.update(rec.id, state="exited", exit_code=exit_code, finished=time.time(), monitor_pid=None)


def alive(runtime: Runtime, container_id: str) -> bool:
    """Whether the container's init lives (created, running or paused)."""
    return runtime.status(container_id) in ("created", "running", "paused")


def settled(engine: Engine, rec: Record, timeout: float = 10.0) -> Record:
    """`rec` once no start is under way: a record that says running while the runtime has no live init and
    its claimer lives (a restart policy's cleanup, a `start`) is waited for."""
    from hutch.engine.containers import LIVE, _alive

    deadline = time.monotonic() + timeout
    while rec.state in LIVE and time.monotonic() < deadline:
        if alive(runtime_of(rec), rec.id) or not (rec.monitor_pid and _alive(rec.monitor_pid)):
            break
        time.sleep(0.02)
        try:
            rec = engine.db.get(rec.id)
        except NoSuchContainer:
            break
    return rec


def put_back(engine: Engine, container_id: str, previous: str) -> None:
    """A start that failed before its monitor could put the container back: it is `previous` again (the
    monitor does this itself once it has the container; this is for a failure before)."""
    import contextlib

    with contextlib.suppress(NoSuchContainer):
        now = engine.db.get(container_id)
        if now.state == "running" and now.monitor_pid == os.getpid():
            unmount(engine, now)
            engine.db.update(container_id, state=previous, monitor_pid=None)


def started_by_user(engine: Engine, rec: Record) -> None:
    """`start`: the restart count starts again and a stop no longer holds back the policy (as podman)."""
    from hutch.engine import restart

    restart.save(engine.path(rec, "userdata"), StoppedByUser=False, RestartCount=0)


def stopped_by_user(engine: Engine, rec: Record) -> None:
    """`stop` or `rm`: no restart policy brings the container back after this exit."""
    from hutch.engine import restart

    restart.save(engine.path(rec, "userdata"), StoppedByUser=True)


def runtime_delete(engine: Engine, rec: Record) -> None:
    """The runtime's state of `rec`; another runtime's failure is reported, and the rest of finish goes on."""
    if not _foreign(rec):  # the library in this process, without the interface (the hot path of run --rm)
        from hutch.runtime import container, lifecycle

        try:
            c = container.load(engine.runtime_root, rec.id)
        except NotFoundError:
            try:
                lifecycle.delete_leftover(engine.runtime_root, rec.id)
            except NotFoundError:
                pass
            return
        lifecycle.delete(c, force=True)
        return
    runtime = runtime_of(rec)
    try:
        runtime.delete(rec.id)
    except HutchError as e:
        import sys

        sys.stderr.write(f"hutch: container {rec.id[:12]}: {e}\n")


def unmount(engine: Engine, rec: Record) -> None:
    from hutch.image import snapshot

    merged = engine.path(rec, "merged")
    while os.path.ismount(merged):
        try:
            snapshot.unmount(merged)
        except HutchError:
            snapshot.unmount(merged, detach=True)


def remove_files(engine: Engine, rec: Record) -> None:
    unmount(engine, rec)
    if os.path.dirname(rec.dir) == engine.containers_dir:
        remove_tree(rec.dir)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: str) -> None:
    """`rm -rf path`, through directory fds that never follow a symlink (the container wrote the upper dir):
    shutil.rmtree's way, without its imports (bz2, lzma: ~1.5 ms of `run --rm`). What cannot be removed is
    left to shutil, which goes on past errors."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return
    try:
        try:
            _empty(fd)
        finally:
            os.close(fd)
        os.rmdir(path)
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def _empty(fd: int) -> None:
    with os.scandir(fd) as entries:
        names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    for name, is_dir in names:
        if is_dir:
            sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                _empty(sub)
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=fd)
        else:
            os.unlink(name, dir_fd=fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
