"""Name resolution on user networks through aardvark-dns (Debian's, the server podman's netavark uses).

One aardvark-dns serves the whole host: its config dir holds a file per network (named by the bridge, which
is unique on the host, where network names are unique only per --root). The first line lists the addresses to
listen on (the bridge's gateways); each further line is `ID IPV4S IPV6S NAMES` (comma-separated). It
answers A/AAAA for those names on port 53 of the gateway and forwards the rest to the host's resolvers; it
rereads the files on SIGHUP. It is started with the first entry and stopped when the last one goes, so
nothing of it outlives the containers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator

from hutch.engine.network import locks
from hutch.errors import HostError

AARDVARK = "/usr/lib/podman/aardvark-dns"
CONFIG_DIR = "/run/hutch/aardvark"
LOCK = "/run/hutch/aardvark.lock"
PID_FILE = os.path.join(CONFIG_DIR, "aardvark.pid")


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    os.makedirs(CONFIG_DIR, mode=0o755, exist_ok=True)
    with locks.held(LOCK):
        yield


def _read(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def _write(path: str, lines: list[str]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    os.rename(tmp, path)


def add(bridge: str, gateways: list[str], container_id: str, addresses: list[str], names: list[str]) -> None:
    """Serve `names` as the container's addresses on the network of `bridge`."""
    v4 = [a for a in addresses if ":" not in a]
    v6 = [a for a in addresses if ":" in a]
    entry = f"{container_id} {','.join(v4)} {','.join(v6)} {','.join(dict.fromkeys(names))}"
    with _locked():
        path = os.path.join(CONFIG_DIR, bridge)
        lines = [x for x in _read(path)[1:] if x.split(" ", 1)[0] != container_id]
        _write(path, [",".join(gateways), *lines, entry])
        _reload(gateways)


def remove(container_id: str) -> None:
    """Drop the container's entries everywhere; stop the server when nothing is left to serve."""
    with _locked():
        left = 0
        for name in _files():
            path = os.path.join(CONFIG_DIR, name)
            lines = _read(path)
            keep = [x for x in lines[1:] if x.split(" ", 1)[0] != container_id]
            if not keep:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            elif len(keep) != len(lines) - 1:
                _write(path, [lines[0], *keep])
            left += len(keep)
        pid = _pid()
        if pid and not left:
            _stop(pid)
        elif pid:
            os.kill(pid, signal.SIGHUP)


def _files() -> list[str]:
    try:
        return [n for n in os.listdir(CONFIG_DIR) if n != "aardvark.pid" and not n.endswith(".tmp")]
    except FileNotFoundError:
        return []


def _pid() -> int:
    try:
        with open(PID_FILE) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            alive = b"aardvark-dns" in f.read()
    except OSError:
        alive = False
    return pid if alive else 0


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.005)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(PID_FILE)


def _running(pid: int) -> bool:
    """Whether `pid` has not exited. The daemon is re-parented to the nearest subreaper, which may be this
    process (a foreground run): then it is reaped here, else its zombie counts as gone."""
    from hutch.runtime.container import process_start_time

    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return process_start_time(pid) is not None


def _reload(gateways: list[str]) -> None:
    pid = _pid()
    if pid:
        os.kill(pid, signal.SIGHUP)
    else:
        if not os.access(AARDVARK, os.X_OK):
            raise HostError(f"{AARDVARK}: not found (Debian's aardvark-dns serves container names)")
        # It daemonizes itself and writes aardvark.pid into its config dir.
        proc = subprocess.run(
            [AARDVARK, "--config", CONFIG_DIR, "-p", "53", "run"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # the daemon would hold a pipe open
            start_new_session=True,
            cwd="/",  # the daemon outlives this command: keep none of its directories busy
            check=False,
        )
        if proc.returncode != 0:
            raise HostError(f"aardvark-dns --config {CONFIG_DIR}: exit status {proc.returncode}")
    _wait_listening(gateways)


def _wait_listening(gateways: list[str], timeout: float = 2.0) -> None:
    """Until the server's UDP sockets on the gateways are bound (so a container's first query is answered)."""
    want = {_hex_addr(g) for g in gateways if ":" not in g}
    deadline = time.monotonic() + timeout
    while want and time.monotonic() < deadline:
        with open("/proc/net/udp") as f:
            bound = {line.split()[1] for line in f.read().splitlines()[1:]}
        if all(f"{w}:0035" in bound for w in want):
            return
        time.sleep(0.005)


def _hex_addr(ip: str) -> str:
    return "".join(f"{int(x):02X}" for x in reversed(ip.split(".")))


def wait_answering(netns_path: str, server: str, name: str, timeout: float = 2.0) -> bool:
    """Until the server answers `name` to a query from inside the container's netns (aardvark-dns answers a
    container only once its reload has read that container's entry; SIGHUP has no acknowledgement)."""
    import struct

    child = os.fork()
    if child == 0:
        code = 1
        try:
            import socket

            from hutch.linux import ns

            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            ns.setns(fd, ns.CLONE_NEWNET)
            labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
            query = struct.pack("!HHHHHH", 0x6875, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", 1, 1)
            deadline = time.monotonic() + timeout
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.05)
                while time.monotonic() < deadline and code:
                    try:
                        s.sendto(query, (server, 53))
                        reply = s.recv(512)
                    except OSError:
                        time.sleep(0.01)
                        continue
                    if answered(reply):
                        code = 0
                    else:
                        time.sleep(0.01)
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) == 0


def answered(reply: bytes) -> bool:
    """Whether a DNS reply is a whole header (12 bytes) with no error and some answer; a shorter datagram
    is no answer (its fields are not read)."""
    if len(reply) < 12:
        return False
    return reply[3] & 0xF == 0 and (reply[6] << 8 | reply[7]) > 0
