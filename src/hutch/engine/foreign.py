"""A foreground run through another OCI runtime's CLI (runc, crun, runsc): `create` with our stdio (or a pty
through a console socket), `start`, then we wait for init as its subreaper, as for hutch's own runtime.
Errors come from the runtime's json log (`--log`), since its stderr is the container's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time

from hutch.engine.containers import invoke_error
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.cliruntime import CliRuntime
    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.engine.runtimes import Runtime


class ConsoleSocket:
    """A listening console socket (--console-socket PATH): the runtime sends the pty master through it."""

    def __init__(self) -> None:
        import socket

        os.makedirs("/run/hutch", exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="console-", dir="/run/hutch")
        self.path = os.path.join(self.dir, "sock")
        try:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        except BaseException:
            self._remove_dir()
            raise
        try:
            self._sock.bind(self.path)
            self._sock.listen(1)
        except BaseException:
            self._sock.close()
            self._remove_dir()
            raise

    def _remove_dir(self) -> None:
        """The dir and the socket's file, by name: rmtree needs fds, and their lack (EMFILE) may be why the
        socket could not be made."""
        with contextlib.suppress(OSError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            os.rmdir(self.dir)

    def receive(self, timeout: float = 10.0) -> int:
        import socket

        self._sock.settimeout(timeout)
        try:
            conn, _ = self._sock.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        except OSError as e:
            raise HutchError(f"console socket {self.path}: the runtime sent no terminal: {e}") from None
        if not fds:
            raise HutchError(f"console socket {self.path}: the runtime sent no terminal")
        return fds[0]

    def close(self) -> None:
        self._sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_foreground(
    engine: Engine,
    rec: Record,
    runtime: Runtime,
    *,
    tty: bool,
    interactive: bool,
    restore: str | None,
    sig_proxy: bool = True,
) -> int:
    """Run `rec` through `runtime`'s CLI with our stdio; the container's exit code."""
    from hutch.engine import monitor
    from hutch.engine.cliruntime import CliRuntime
    from hutch.runtime import foreground

    if not isinstance(runtime, CliRuntime):
        raise HutchError(f"runtime {runtime.name}: not a runtime CLI")
    foreground.become_subreaper()
    if not interactive:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    console = ConsoleSocket() if tty else None
    master: int | None = None
    try:
        try:
            pid = create(engine, rec, runtime, console.path if console else None)
            master = console.receive() if console else None
            runtime.start(rec.id)
        except HutchError as e:
            raise invoke_error(e) from None
        finally:
            if console is not None:
                console.close()
    except BaseException:
        if master is not None:  # the terminal came, then start failed
            os.close(master)
        monitor.failed_launch(engine, rec.id, restore)
        raise
    engine.db.update(rec.id, state="running", started=time.time(), monitor_pid=os.getpid())
    from hutch.engine import health

    health.start_timer(engine, rec)
    code = foreground.wait(pid, master, sig_proxy)
    monitor.finish(engine, rec.id, code)
    return code


def create(engine: Engine, rec: Record, runtime: CliRuntime, console_socket: str | None) -> int:
    """`RUNTIME create` of `rec` with our stdio; init's pid."""
    userdata = engine.path(rec, "userdata")
    log = os.path.join(userdata, "runtime.log")
    pid_file = os.path.join(userdata, "pidfile")
    for path in (log, pid_file):
        if os.path.exists(path):
            os.unlink(path)
    args = ["--log", log, "--log-format", "json", "create", "--bundle", userdata, "--pid-file", pid_file]
    if console_socket:
        args += ["--console-socket", console_socket]
    code = subprocess.run([runtime.binary, *runtime.conmon_args(), *args, rec.id], check=False).returncode
    if code != 0:
        raise HutchError(last_error(log) or f"{runtime.name} create exited {code}")
    with open(pid_file) as f:
        return int(f.read().strip())


def last_error(log: str) -> str:
    """The last error line of a runc-style json log."""
    from hutch import jsonfast

    message = ""
    try:
        with open(log) as f:
            for line in f:
                try:
                    doc = jsonfast.loads(line)
                except ValueError:
                    continue
                if isinstance(doc, dict) and doc.get("level") in ("error", "fatal"):
                    message = str(doc.get("msg", ""))
    except OSError:
        return ""
    return message
