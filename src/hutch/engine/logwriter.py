"""The k8s-file log of a foreground run, written by the in-process monitor as conmon writes it for a detached
one: the container's stdout and stderr come through pipes, each chunk goes to our own stdout/stderr and to
userdata/ctr.log (`TIME STREAM F|P CONTENT` lines), so `hutch logs` works after a foreground run too.

--log-opt max-size (conmon's --log-size-max): a write that would take the log past it starts the log
again from empty, as conmon does.
"""

from __future__ import annotations

import errno
import os
import select
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _timestamp() -> bytes:
    """Now as conmon writes it: RFC 3339 with nanoseconds and the local offset (UTC here: Z)."""
    ns = time.time_ns()
    seconds, nanos = divmod(ns, 1_000_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z").encode()


class LogWriter:
    """Appends k8s-file lines to `path`; `max_size` bytes at most (0: no limit)."""

    def __init__(self, path: str, max_size: int = 0) -> None:
        self.path = path
        self.max_size = max_size
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.size = os.fstat(self.fd).st_size

    def write(self, stream: str, data: bytes) -> None:
        """One chunk of a stream: full lines tagged F, a trailing part tagged P."""
        stamp = _timestamp() + b" " + stream.encode() + b" "
        out = []
        *full, rest = data.split(b"\n")
        out += [stamp + b"F " + line + b"\n" for line in full]
        if rest:
            out.append(stamp + b"P " + rest + b"\n")
        blob = b"".join(out)
        if self.max_size and self.size + len(blob) > self.max_size:
            os.ftruncate(self.fd, 0)  # as conmon: start again rather than grow past the limit
            self.size = 0
            if len(blob) > self.max_size:  # one read brought more than the limit: its last lines that fit
                kept, total = [], 0
                for line in reversed(out):
                    if total + len(line) > self.max_size:
                        break
                    kept.append(line)
                    total += len(line)
                blob = b"".join(reversed(kept))
        os.write(self.fd, blob)
        self.size += len(blob)

    def close(self) -> None:
        os.close(self.fd)


class Tee:
    """Pipes that stand in for our stdout and stderr while the runtime creates the container (so its
    process gets their write ends), and the relay that copies them to our own stdio and the log."""

    def __init__(self, writer: LogWriter) -> None:
        self.writer = writer
        self.saved = [os.dup(1), os.dup(2)]
        self.reads: dict[int, tuple[str, int]] = {}
        for fd, stream in ((1, "stdout"), (2, "stderr")):
            r, w = os.pipe()
            os.set_inheritable(r, False)
            self.reads[r] = (stream, self.saved[fd - 1])
            os.dup2(w, fd)
            os.close(w)

    def restore(self) -> None:
        """Our own stdio back (the container keeps the pipes' write ends)."""
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)

    def wait(self, pid: int, proxy: bool = True) -> int:
        """Relay until `pid` exits (reaping other orphans, forwarding signals) and drain; its status.
        A pidfd of init wakes the relay when it exits, even while an orphan holds the pipes open."""
        from hutch.runtime import foreground

        if proxy:
            foreground.forward_signals(pid)
        try:
            exited = os.pidfd_open(pid)
        except OSError:  # gone already (it is our child: reaped below) or no pidfds
            exited = -1
        try:
            status: int | None = None
            while status is None:
                self._pump(1.0 if exited >= 0 else 0.05, exited)
                status = foreground.reap(pid)
        finally:
            if exited >= 0:
                os.close(exited)
        self._pump(0)  # what init wrote last; an orphan holding a pipe open is not waited for
        return foreground.exit_code(status)

    def _pump(self, timeout: float, wake: int = -1) -> None:
        """Copy what the pipes have, waiting up to `timeout` for the first of it (or for `wake`)."""
        while True:
            watch = list(self.reads) + ([wake] if wake >= 0 else [])
            if not watch:
                return
            try:
                ready, _, _ = select.select(watch, [], [], timeout)
            except InterruptedError:
                continue
            if not ready or wake in ready:
                return
            for r in ready:
                stream, out = self.reads[r]
                data = os.read(r, 65536)
                if not data:
                    os.close(r)
                    del self.reads[r]
                    continue
                _write_all(out, data)
                self.writer.write(stream, data)
            timeout = 0

    def close(self) -> None:
        for r in self.reads:
            os.close(r)
        self.reads.clear()
        for fd in self.saved:
            os.close(fd)
        self.writer.close()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data) :]
        except OSError as e:
            if e.errno == errno.EPIPE:
                return  # our reader went away: the log still gets everything
            raise


def log_options(cfg: dict[str, Any]) -> tuple[str, int]:
    """(driver, max size) recorded in a container's config JSON (k8s-file, no limit by default)."""
    return str(cfg.get("LogDriver") or "k8s-file"), int(cfg.get("LogSizeMax") or 0)


DRIVERS = ("k8s-file", "none", "passthrough")


def parse_flags(driver: str, opts: list[str], detach: bool) -> dict[str, Any]:
    """--log-driver and --log-opt max-size=N: the config JSON fields (LogDriver, LogSizeMax)."""
    from hutch.engine.resources import parse_bytes
    from hutch.errors import ConfigError

    driver = driver or "k8s-file"
    if driver not in DRIVERS:
        raise ConfigError(f"--log-driver {driver!r}: expected one of {', '.join(DRIVERS)}")
    if driver == "passthrough" and detach:
        raise ConfigError("--log-driver passthrough: the container's stdio is ours; it cannot run detached")
    fields: dict[str, Any] = {"LogDriver": driver}
    for text in opts:
        key, sep, value = text.partition("=")
        if key == "max-size" and sep:
            size = -1 if value.strip() == "-1" else parse_bytes(value, "--log-opt max-size")
            if size != -1 and size < 8192:
                raise ConfigError(f"--log-opt {text!r}: max-size must be at least 8kb (or -1)")
            fields["LogSizeMax"] = max(size, 0)
        elif key in ("path", "tag") and sep:
            raise ConfigError(f"--log-opt {text!r}: not supported by hutch (max-size only)")
        else:
            raise ConfigError(f"--log-opt {text!r}: expected max-size=N")
    return fields
