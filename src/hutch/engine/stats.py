"""podman stats: a container's usage from its cgroups (the runtime's cgroup stats, v1, v2 or hybrid) and its
network namespace's /proc/net/dev. CPU % is the share of one CPU used since the previous sample (since the
container started, for the first); MEM USAGE is the cgroup's usage less its inactive file cache, as podman
and docker count it, against the cgroup's limit or, without one, the host's memory.
"""

from __future__ import annotations

import time

from hutch.errors import HutchError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
else:
    from hutch.record import dataclass


@dataclass(slots=True)
class Sample:
    """One container's usage at one moment (byte counts; cpu in nanoseconds)."""

    id: str
    name: str
    running: bool
    at: float = 0.0
    cpu_ns: int = 0
    cpu_percent: float = 0.0
    mem_usage: int = 0
    mem_limit: int = 0
    net_rx: int = 0
    net_tx: int = 0
    block_read: int = 0
    block_write: int = 0
    pids: int = 0


def sample(engine: Engine, rec: Record, previous: Sample | None = None) -> Sample:
    """The usage of `rec` now; CPU % against `previous` (a sample of the same container), else its start."""
    out = Sample(rec.id, rec.name, False, at=time.time())
    if rec.state not in ("running", "paused"):
        return out
    try:
        data, pid = _read(engine, rec)
    except (NotFoundError, HutchError, OSError):
        return out
    out.running = True
    cpu = data.get("cpu") or {}
    out.cpu_ns = int((cpu.get("usage") or {}).get("total", 0))
    if previous is not None and previous.running and out.at > previous.at:
        out.cpu_percent = 100 * (out.cpu_ns - previous.cpu_ns) / 1e9 / (out.at - previous.at)
    elif rec.started and out.at > rec.started:
        out.cpu_percent = 100 * out.cpu_ns / 1e9 / (out.at - rec.started)
    _memory(out, data.get("memory") or {})
    pids = data.get("pids") or {}
    out.pids = int(pids.get("current", 0))
    _blkio(out, data.get("blkio") or {})
    out.net_rx, out.net_tx = _net(pid)
    return out


def _read(engine: Engine, rec: Record) -> tuple[dict[str, Any], int]:
    """The container's stats (runc's events shape) and its init's host pid, from its runtime."""
    from hutch.engine import foreign_ops
    from hutch.runtime import container
    from hutch.runtime.cgroups import stats

    other = foreign_ops.cli_runtime(rec)
    if other is not None:
        return foreign_ops.stats(other, rec.id), other.pid(rec.id)
    c = container.load(engine.runtime_root, rec.id)
    return stats.read(c.cgroup), c.pid


def _memory(out: Sample, mem: dict[str, Any]) -> None:
    usage = mem.get("usage") or {}
    raw = mem.get("raw") or {}
    inactive = int(raw.get("total_inactive_file", raw.get("inactive_file", 0)))
    used = int(usage.get("usage", 0))
    out.mem_usage = max(0, used - inactive) if inactive < used else used
    limit = int(usage.get("limit", 0))
    host = _host_memory()
    out.mem_limit = host if limit <= 0 or limit >= host else limit


def _host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _blkio(out: Sample, blkio: dict[str, Any]) -> None:
    for entry in blkio.get("ioServiceBytesRecursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            out.block_read += int(entry.get("value", 0))
        elif op == "write":
            out.block_write += int(entry.get("value", 0))


def _net(pid: int) -> tuple[int, int]:
    """Bytes received and sent by the interfaces of the container's network namespace, but loopback."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, values = line.partition(":")
        fields = values.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx
