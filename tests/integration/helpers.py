"""Small helpers the integration tests share, on top of the fixtures of tests/conftest.py.

sh(bundle, script, **fields)      a bundle whose process is `sh -c script`
run_ok(runtime, bundle, id)       `run` it, check exit 0, return its stdout
RW_ROOT                           root={...} for a writable rootfs
add_namespace(spec, type, path)   add (or replace) a namespace entry in a spec dict
ConsoleSocket                     a --console-socket server that receives the pty master (SCM_RIGHTS)
mountinfo_lines(needle)           the host's mountinfo lines that mention `needle`
wait_for(predicate)               poll until true, or fail
traversable(path)                 let a user namespace's root reach a bundle under pytest's 0700 dirs
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

RW_ROOT = {"path": "rootfs", "readonly": False}


def sh(bundle: Any, script: str, **fields: Any) -> Path:
    """A bundle running `sh -c script`."""
    path: Path = bundle(["sh", "-c", script], **fields)
    return path


def run_ok(runtime: Any, bundle: Path, container_id: str = "c1") -> str:
    """`run` the bundle in the foreground; it must exit 0. Returns what the container printed."""
    result = runtime.run("run", "--bundle", bundle, container_id)
    out: str = result.stdout
    return out


def add_namespace(spec: dict[str, Any], kind: str, path: str | None = None) -> None:
    namespaces = [n for n in spec["linux"]["namespaces"] if n["type"] != kind]
    entry: dict[str, Any] = {"type": kind}
    if path:
        entry["path"] = path
    namespaces.append(entry)
    spec["linux"]["namespaces"] = namespaces


def remove_namespace(spec: dict[str, Any], kind: str) -> None:
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != kind]


def userns(spec: dict[str, Any], host_id: int = 100000, size: int = 65536) -> None:
    """A new user namespace mapping container ids 0..size-1 to host_id.., with devpts's gid=5 kept mapped."""
    add_namespace(spec, "user")
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]


def mountinfo_lines(needle: str, pid: str = "self") -> list[str]:
    with open(f"/proc/{pid}/mountinfo") as f:
        return [line for line in f if needle in line]


def status_field(text: str, name: str) -> str:
    """The value of `Name:` in a /proc/PID/status text."""
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name}: line in\n{text}")


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def fifo_path(runtime: Any, container_id: str) -> Path:
    return Path(runtime.root) / container_id / "exec.fifo"


class ConsoleSocket:
    """A unix socket server for --console-socket: accepts one connection and receives the pty master.

    Use as a context manager; `path` is the socket, `master()` waits for the fd (and owns closing it).
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / f"console-{os.getpid()}-{id(self)}.sock"
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(1)
        self._fd: int | None = None
        self._name = b""
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        try:
            self._server.settimeout(30)
            conn, _ = self._server.accept()
            with conn:
                msg, fds, _, _ = socket.recv_fds(conn, 4096, 1)
                self._name = msg
                if fds:
                    self._fd = fds[0]
        except BaseException as e:  # reported by master()
            self._error = e

    def master(self, timeout: float = 10) -> int:
        self._thread.join(timeout)
        if self._error is not None:
            raise AssertionError(f"console socket: {self._error}")
        if self._fd is None:
            raise AssertionError("console socket: no fd received")
        return self._fd

    @property
    def name(self) -> bytes:
        return self._name

    def __enter__(self) -> ConsoleSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.path.unlink(missing_ok=True)


def read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    """Read from a pty master until `needle` shows up (or EOF/EIO); returns all that was read."""
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {needle!r}; read {data!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def traversable(path: Path) -> Iterator[None]:
    """Let other users search `path` and its parents (not list or write them) for the duration.

    A container in a user namespace is not the host's root: its root (host uid 100000, say) must be able to
    reach the bundle, which runc requires too, and pytest makes its temporary directories mode 0700.
    """
    changed: list[tuple[Path, int]] = []
    current = path.resolve()
    try:
        while current != current.parent:
            mode = current.stat().st_mode & 0o7777
            if not mode & 0o001:
                current.chmod(mode | 0o001)
                changed.append((current, mode))
            current = current.parent
        yield
    finally:
        for where, mode in changed:
            with contextlib.suppress(OSError):
                where.chmod(mode)


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def pids_with_token(token: str) -> set[int]:
    """Live processes whose environment holds the test's HUTCH_TEST_TOKEN (the bundle factory puts it in
    every container's process.env): the container's processes, wherever they are."""
    marker = f"HUTCH_TEST_TOKEN={token}".encode()
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in Path(entry.path, "environ").read_bytes().split(b"\0") and alive(int(entry.name)):
                found.add(int(entry.name))
        except OSError:
            pass
    return found


def children_of(pid: int) -> list[tuple[int, bytes]]:
    """(pid, command line) of the live processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry), cmdline))
    return found
