"""conmon, the container monitor podman and CRI-O use, as the monitor of a detached engine container.

conmon runs the OCI runtime's `create` (its stdio, or a pty it holds through the console socket), reports the
init pid or the create error over `_OCI_SYNCPIPE`, then outlives us: it writes the container's output to
userdata/ctr.log in the k8s-file format, serves the attach socket, writes the exit code to userdata/exits/ID
and runs the exit command (`hutch container cleanup ID`), which records the exit. The engine starts the
container itself once conmon has reported the pid. `_OCI_STARTPIPE` holds conmon back until we let it go.

Files in userdata: conmon.pid, pidfile (init), ctl and winsz (fifos: resize), attach (the socket), exits/,
persist/; conmon links SOCKET_DIR/ID to userdata so the socket's path stays short.
"""

from __future__ import annotations

import contextlib
import os
import sys

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.runtimes import Runtime

CONMON = "conmon"
SOCKET_DIR = "/run/hutch/socket"
# What conmon, and the runtime and exit command it runs, keep of our environment: podman, too, passes little
# (a locale alone makes conmon load its tables: ~130 KiB more in every monitor). PYTHONPATH is for an exit
# command that runs hutch as a module from a source tree.
CONMON_ENV = ("PATH", "HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "TMPDIR", "LD_LIBRARY_PATH", "PYTHONPATH")


class CreateError(HutchError):
    """The runtime's create failed; `message` is what it said."""


def binary() -> str:
    import shutil

    found = shutil.which(CONMON, path=os.environ.get("PATH", "") + ":/usr/bin:/usr/libexec/podman")
    if not found:
        raise HutchError("conmon: not found on PATH (Debian package conmon)")
    return found


def exit_command() -> list[str]:
    """How conmon calls us back: the `hutch` launcher beside our interpreter, else `python -m hutch.cli.main`."""
    launcher = os.path.join(os.path.dirname(sys.executable), "hutch")
    if os.access(launcher, os.X_OK) and _is_hutch_launcher(launcher):
        return [launcher]
    return [sys.executable, "-m", "hutch.cli.main"]


def _is_hutch_launcher(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return b"hutch.cli.main" in f.read(4096)
    except OSError:
        return False


def spawn(
    *,
    container_id: str,
    name: str,
    userdata: str,
    runtime: Runtime,
    cleanup: list[str],
    tty: bool = False,
    stdin: bool = False,
    log_driver: str = "k8s-file",
    log_size_max: int = 0,
) -> tuple[int, int]:
    """Have conmon create the container; (conmon's pid, init's pid). CreateError carries the runtime's
    error; the runtime then has no state for the container, and conmon is gone."""
    for sub in ("exits", "persist"):
        os.makedirs(os.path.join(userdata, sub), mode=0o700, exist_ok=True)
    os.makedirs(SOCKET_DIR, mode=0o711, exist_ok=True)
    for stale in ("exits/" + container_id, "persist/exit", "conmon.pid", "pidfile", "attach", "ctl", "winsz"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(userdata, stale))
    argv = [binary(), "--api-version", "1", "-c", container_id, "-u", container_id, "-n", name]
    argv += ["-r", runtime.binary, "-b", userdata, "-p", os.path.join(userdata, "pidfile")]
    argv += [
        "--exit-dir",
        os.path.join(userdata, "exits"),
        "--persist-dir",
        os.path.join(userdata, "persist"),
    ]
    argv += [
        "-P",
        os.path.join(userdata, "conmon.pid"),
        "-l",
        "none:" if log_driver == "none" else "k8s-file:" + os.path.join(userdata, "ctr.log"),
    ]
    if log_size_max > 0:
        argv += ["--log-size-max", str(log_size_max)]
    argv += ["--socket-dir-path", SOCKET_DIR, "--leave-stdin-open"]
    for arg in runtime.conmon_args():
        argv += ["--runtime-arg", arg]
    if tty:
        argv.append("-t")
    if stdin:
        argv.append("-i")
    argv += ["--exit-command", cleanup[0]]
    for arg in cleanup[1:]:
        argv += ["--exit-command-arg", arg]
    import subprocess

    sync_r, sync_w = os.pipe()
    start_r, start_w = os.pipe()
    env = {key: os.environ[key] for key in CONMON_ENV if key in os.environ}
    # conmon forks its monitor first thing. The monitor's first getline() of a /proc/PID/cgroup line longer than
    # 120 bytes (ours under a nested cgroup) made libc resolve its own realloc lazily there, walking every
    # library's symbol tables: ~400 KiB of ld.so and symbol pages that stayed in each monitor for its life.
    # LD_BIND_NOW has conmon's first process, which exits, resolve everything before the fork.
    env.update(LD_BIND_NOW="1", _OCI_SYNCPIPE=str(sync_w), _OCI_STARTPIPE=str(start_r))
    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            pass_fds=(sync_w, start_r),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )
    finally:
        os.close(sync_w)
        os.close(start_r)
    try:
        os.write(start_w, b"0")  # nothing to do before it runs: let it go
    finally:
        os.close(start_w)
    with os.fdopen(sync_r, "rb") as f:
        report = f.readline()
    proc.wait()  # conmon's first process exits once it has forked the monitor
    pid = _parse_report(report, container_id)
    return _read_pid(os.path.join(userdata, "conmon.pid")), pid


def _parse_report(line: bytes, container_id: str) -> int:
    from hutch import jsonfast

    if not line:
        raise HutchError(
            f"container {container_id[:12]}: conmon exited without reporting the container's pid"
        )
    doc = jsonfast.loads(line.decode(errors="replace"))
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, int):
        raise HutchError(f"container {container_id[:12]}: conmon sent {line!r}")
    if data <= 0:
        message = str(doc.get("message") or "the runtime's create failed").strip()
        raise CreateError(" ".join(message.split()))
    return data


def _read_pid(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def exit_code(userdata: str, container_id: str) -> int | None:
    """The exit code conmon wrote when the container exited, None when it wrote none."""
    for path in (os.path.join(userdata, "exits", container_id), os.path.join(userdata, "persist", "exit")):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        with contextlib.suppress(ValueError):
            return int(text)
    return None


def attach_socket(container_id: str) -> str:
    return os.path.join(SOCKET_DIR, container_id, "attach")


def forget(userdata: str, container_id: str) -> None:
    """What conmon leaves once it is gone (its link in SOCKET_DIR, its pid files and fifos); the log and
    the exit file stay."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(SOCKET_DIR, container_id))
    for name in ("attach", "ctl", "winsz", "conmon.pid", "pidfile"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(userdata, name))
