"""The monitor of an engine container: launch it through the runtime library (in this process), wait for its
init as its subreaper, and finish it once init is gone. A foreground run is its own monitor; a detached run
forks one (setsid, stdio to userdata/ctr.log) that reports `ok` or the launch error over a pipe.

Finish deletes the runtime state, unmounts the rootfs and records the exit code, or with --rm removes the
container altogether.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time

from hutch.engine.containers import InvokeError, invoke_error
from hutch.engine.db import ContainerDB, NoSuchContainer, Record
from hutch.errors import HutchError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.containers import Engine
    from hutch.runtime.container import Container


def launch_container(engine: Engine, rec: Record, console_fd: int | None = None) -> Container:
    """Runtime create and start of `rec` (in this process); errors as podman reports them."""
    from hutch.oci import config
    from hutch.runtime import launch, lifecycle

    userdata = engine.path(rec, "userdata")
    spec = config.load(userdata)
    try:
        c = launch.create(engine.runtime_root, rec.id, userdata, spec, console_fd=console_fd)
    except HutchError as e:
        raise invoke_error(e) from None
    try:
        lifecycle.start(c)
    except BaseException:
        lifecycle.delete(c, force=True)
        raise
    engine.db.update(rec.id, state="running", started=time.time(), monitor_pid=os.getpid())
    return c


def run_foreground(
    engine: Engine, rec: Record, *, tty: bool = False, interactive: bool = False, restore: str | None = None
) -> int:
    """Run `rec` with our stdio, as its monitor; the container's exit code. A failed launch removes the
    container, or with `restore` (a `start`) puts it back in that state."""
    from hutch.runtime import foreground

    foreground.become_subreaper()
    if not interactive:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    receiver = foreground.ConsoleReceiver() if tty else None
    try:
        try:
            c = launch_container(engine, rec, receiver.their_fd if receiver else None)
        finally:
            if receiver is not None:
                os.close(receiver.their_fd)
        master = receiver.receive() if receiver else None
    except BaseException:
        finish(engine, rec.id, None, remove=restore is None, restore=restore)
        raise
    code = foreground.wait(c.pid, master)
    finish(engine, rec.id, code)
    return code


def run_detached(engine: Engine, rec: Record, restore: str | None = None) -> None:
    """Start `rec` under a monitor process forked from this one: it holds the container's stdio (to
    userdata/ctr.log), waits for it and records its exit code. Returns once the container runs. A failed
    launch removes the container, or with `restore` (a `start`) puts it back in that state."""
    r, w = os.pipe()
    # An SQLite connection must not cross fork (its locks and WAL index are per process): both sides open
    # their own after it.
    engine.db.close()
    if engine._storage is not None:
        engine._storage.close()
        engine._storage = None
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _monitor(engine, rec, w, restore)  # never returns
    engine.db = ContainerDB(engine.db.path)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        report = f.read().decode(errors="replace")
    os.waitpid(pid, os.WNOHANG)
    if report.startswith("ok"):
        return
    kind, _, message = report.partition("\n")
    if not kind:
        raise HutchError(f"container {rec.id[:12]}: its monitor died before the container started")
    if kind.isdigit():
        raise InvokeError(message, int(kind))
    raise HutchError(message)


def _monitor(engine: Engine, rec: Record, report: int, restore: str | None) -> None:
    code = 0
    try:
        os.setsid()
        os.chdir("/")  # keep no directory of the caller busy
        log = os.open(engine.path(rec, "userdata/ctr.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        engine.db = ContainerDB(engine.db.path)
        from hutch.runtime import foreground

        foreground.become_subreaper()
        try:
            c = launch_container(engine, rec)
        except BaseException as e:
            kind = str(e.exit_code) if isinstance(e, InvokeError) else "error"
            try:  # cleaned up before the caller hears of it: its next command sees the outcome
                finish(engine, rec.id, None, remove=restore is None, restore=restore)
            finally:
                os.write(report, f"{kind}\n{_lines(str(e)) or type(e).__name__}".encode())
                os.close(report)
            os._exit(1)
        os.write(report, b"ok")
        os.close(report)
        status = foreground.wait(c.pid)
        finish(engine, rec.id, status)
    except BaseException as e:
        code = 1
        with contextlib.suppress(BaseException):
            os.write(2, f"hutch monitor: {e}\n".encode())
    os._exit(code)


def finish(
    engine: Engine,
    container_id: str,
    exit_code: int | None,
    *,
    remove: bool = False,
    restore: str | None = None,
) -> None:
    """After the container's init is gone: delete its runtime state, unmount its rootfs, record the exit
    code; with `remove` (or --rm) remove it altogether. With `restore` (a failed start) the container
    goes back to that state and keeps its exit code."""
    with engine.lock(container_id):
        try:
            rec = engine.db.get(container_id)
        except NoSuchContainer:
            return
        runtime_delete(engine, rec.id)
        from hutch.engine.network.setup import teardown

        teardown(engine, rec)  # CNI DEL, the netns: nothing of the network outlives init
        unmount(engine, rec)
        if remove or rec.remove:
            remove_files(engine, rec)
            engine.db.remove(rec.id)
            _unlink(os.path.join(engine.containers_dir, f"{rec.id}.lock"))
            return
        if restore is not None:
            engine.db.update(rec.id, state=restore, monitor_pid=None)
            return
        engine.db.update(rec.id, state="exited", exit_code=exit_code, finished=time.time(), monitor_pid=None)


def runtime_delete(engine: Engine, container_id: str) -> None:
    from hutch.runtime import container, lifecycle

    try:
        c = container.load(engine.runtime_root, container_id)
    except NotFoundError:
        with contextlib.suppress(NotFoundError):
            lifecycle.delete_leftover(engine.runtime_root, container_id)
        return
    lifecycle.delete(c, force=True)


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
        shutil.rmtree(rec.dir, ignore_errors=True)


def _lines(text: str) -> str:
    return " ".join(text.split())


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
