"""podman attach through conmon's attach socket (a SOCK_SEQPACKET unix socket, SOCKET_DIR/ID/attach).

conmon sends each chunk of the container's output as one packet whose first byte names the stream (2
stdout, 3 stderr); what we send is the container's stdin, as it is. A terminal is resized by writing
`1 HEIGHT WIDTH` to the `ctl` fifo in userdata. The detach keys (ctrl-p,ctrl-q by default) end the attach
and leave the container running; so does the end of our stdin only when stdin is not attached. Once
conmon closes the socket, `exit_code` waits for the exit its cleanup records.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sys

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.containers import Engine

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_STDOUT, _STDERR = 2, 3
# podman's exit when it cannot get the container's exit code (define.ExecErrorCodeNotFound).
EXIT_UNKNOWN = 127


class Detached(Exception):
    """The user typed the detach keys."""


def parse_detach_keys(text: str) -> bytes:
    """podman's --detach-keys: comma-separated `ctrl-X` or single characters; empty disables detaching."""
    out = bytearray()
    for key in text.split(",") if text else []:
        if len(key) == 1:
            out.append(ord(key))
            continue
        name = key.lower().removeprefix("ctrl-")
        if not key.lower().startswith("ctrl-") or len(name) != 1:
            raise HutchError(f"--detach-keys {text!r}: invalid key {key!r}, expected ctrl-X or one character")
        if "a" <= name <= "z":
            out.append(ord(name) - ord("a") + 1)
        elif name == "@":
            out.append(0)
        elif name in "[\\]^_":
            out.append(27 + "[\\]^_".index(name))
        else:
            raise HutchError(f"--detach-keys {text!r}: invalid key {key!r}")
    return bytes(out)


class _KeyMatcher:
    """Finds the detach sequence in stdin, across reads; returns what is to be sent on."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> bytes:
        if not self.keys:
            return data
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes([byte])
            if self.keys.startswith(candidate):
                if candidate == self.keys:
                    raise Detached
                self.held = candidate
                continue
            out += candidate
            self.held = b""
        return bytes(out)


def connect(container_id: str) -> socket.socket:
    from hutch.engine import conmon

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(conmon.attach_socket(container_id))
    except OSError as e:
        sock.close()
        raise HutchError(f"container {container_id[:12]}: cannot connect to its attach socket: {e}") from None
    return sock


def resize(userdata: str, rows: int, cols: int) -> None:
    """Tell conmon the terminal's size (it sets the container's pty's)."""
    try:
        fd = os.open(os.path.join(userdata, "ctl"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.write(fd, f"1 {rows} {cols}\n".encode())
    os.close(fd)


def relay(sock: socket.socket, *, stdin: bool, detach_keys: bytes) -> bool:
    """Copy the container's output to our stdout/stderr and (with `stdin`) our stdin to it, until the
    container's side closes (False) or the user detaches (True)."""
    matcher = _KeyMatcher(detach_keys)
    watch = [sock.fileno()] + ([0] if stdin else [])
    while True:
        try:
            ready, _, _ = select.select(watch, [], [])
        except InterruptedError:
            continue
        if sock.fileno() in ready:
            data = sock.recv(65536)
            if not data:
                return False
            target = 2 if data[0] == _STDERR else 1
            _write_all(target, data[1:])
        if 0 in ready:
            chunk = os.read(0, 65536)
            if not chunk:
                watch.remove(0)  # our stdin ended: the container's stays open (conmon --leave-stdin-open)
                continue
            try:
                data = matcher.feed(chunk)
            except Detached:
                return True
            if data:
                sock.sendall(data)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def exit_code(engine: Engine, container_id: str, timeout: float = 10.0) -> int:
    """The exit code cleanup records once the attach socket closed (conmon closes it when init exits; 0 if
    the container is gone, removed by --rm). When none is recorded in `timeout` (conmon died, its init
    runs on), podman's answer: an error line and 127, not a success."""
    import time

    from hutch.engine.db import NoSuchContainer

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rec = engine.refresh(engine.db.get(container_id))
        except NoSuchContainer:
            return 0
        if rec.state == "exited":
            return rec.exit_code if rec.exit_code is not None and rec.exit_code >= 0 else 0
        time.sleep(0.05)
    sys.stderr.write(
        f"Error: cannot get exit code: container {container_id[:12]} recorded no exit {timeout:g}s after its "
        "output closed\n"
    )
    sys.stderr.flush()
    return EXIT_UNKNOWN
