"""The resource flags of `run`/`create`/`update`, as podman reads them: linux.resources (memory, cpu, pids),
rlimits (--ulimit), /dev/shm's size; and `update` of a running container, through the runtime library."""

from __future__ import annotations

import resource

from hutch.errors import ConfigError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
else:
    from hutch.record import dataclass

CPU_PERIOD = 100000
MIN_MEMORY = 6 * 1024 * 1024  # podman refuses less: the container could not even start

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(slots=True)
class ResourceFlags:
    """The resource flags as given (None when absent); `resources` turns them into linux.resources."""

    memory: str | None = None
    memory_swap: str | None = None
    memory_reservation: str | None = None
    cpus: str | None = None
    cpu_shares: str | None = None
    cpu_quota: str | None = None
    cpu_period: str | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: str | None = None


def parse_bytes(text: str, flag: str) -> int:
    """A size as podman takes it: 1024, 512k, 100m, 1.5g (b, kb, KiB... accepted)."""
    s = text.strip().lower()
    i = 0
    while i < len(s) and (s[i].isdigit() or s[i] == "."):
        i += 1
    number, unit = s[:i], s[i:].removesuffix("ib").removesuffix("b")
    if not number or number.count(".") > 1 or number == "." or unit not in _UNITS:
        raise ConfigError(f"{flag} {text!r}: invalid size, expected a number with a unit b, k, m or g")
    return int(float(number) * _UNITS[unit])


def _int(text: str, flag: str, minimum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected an integer") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{flag} {text!r}: must be at least {minimum}")
    return value


def resources(f: ResourceFlags, *, create: bool = True) -> dict[str, Any]:
    """linux.resources (without devices) from the flags; `create` adds podman's default swap (the default pids
    limit is hutch.engine.spec.Options's, which a --pids-limit replaces)."""
    out: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if f.memory is not None:
        memory["limit"] = parse_bytes(f.memory, "--memory")
        if memory["limit"] < MIN_MEMORY:
            raise ConfigError(f"--memory {f.memory!r}: the minimum memory limit allowed is 6MB")
    if f.memory_reservation is not None:
        memory["reservation"] = parse_bytes(f.memory_reservation, "--memory-reservation")
        if memory["reservation"] > memory.get("limit", memory["reservation"]):
            raise ConfigError(
                f"--memory-reservation {f.memory_reservation!r}: must not be above --memory {f.memory!r}"
            )
    if f.memory_swap is not None:
        if "limit" not in memory:
            raise ConfigError(f"--memory-swap {f.memory_swap!r}: needs --memory to be set too")
        swap = -1 if f.memory_swap.strip() == "-1" else parse_bytes(f.memory_swap, "--memory-swap")
        if swap != -1 and swap < memory["limit"]:
            raise ConfigError(
                f"--memory-swap {f.memory_swap!r}: must be at least --memory (memory plus swap)"
            )
        memory["swap"] = swap
    elif "limit" in memory and create:
        memory["swap"] = 2 * memory["limit"]  # podman: as much swap as memory
    if memory:
        out["memory"] = memory
    cpu = _cpu(f)
    if cpu:
        out["cpu"] = cpu
    if f.pids_limit is not None:
        limit = _int(f.pids_limit, "--pids-limit", -1)
        if limit > 0:
            out["pids"] = {"limit": limit}
        elif not create:
            out["pids"] = {"limit": -1}
    return out


def _cpu(f: ResourceFlags) -> dict[str, Any]:
    cpu: dict[str, Any] = {}
    if f.cpus is not None:
        if f.cpu_quota is not None or f.cpu_period is not None:
            raise ConfigError("--cpus: cannot be set together with --cpu-period or --cpu-quota")
        try:
            cpus = float(f.cpus)
        except ValueError:
            raise ConfigError(f"--cpus {f.cpus!r}: expected a number of CPUs such as 1.5") from None
        if cpus <= 0:
            raise ConfigError(f"--cpus {f.cpus!r}: must be more than 0")
        cpu["period"], cpu["quota"] = CPU_PERIOD, int(cpus * CPU_PERIOD)
    if f.cpu_period is not None:
        cpu["period"] = _int(f.cpu_period, "--cpu-period", 1000)
    if f.cpu_quota is not None:
        cpu["quota"] = _int(f.cpu_quota, "--cpu-quota", -1)
    if f.cpu_shares is not None:
        cpu["shares"] = _int(f.cpu_shares, "--cpu-shares", 2)
    for flag, key, text in (
        ("--cpuset-cpus", "cpus", f.cpuset_cpus),
        ("--cpuset-mems", "mems", f.cpuset_mems),
    ):
        if text is not None:
            if not text or not all(ch.isdigit() or ch in ",-" for ch in text):
                raise ConfigError(f"{flag} {text!r}: expected a list such as 0-2,4")
            cpu[key] = text
    return cpu


_RLIMITS = {
    "as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}  # fmt: skip
_UNLIMITED = 2**64 - 1


def ulimit(text: str) -> dict[str, Any]:
    """--ulimit NAME=SOFT[:HARD] (-1 for unlimited): an rlimit; above the host's hard limit is an error."""
    name, sep, value = text.partition("=")
    kind = _RLIMITS.get(name.strip().lower())
    if not sep or kind is None:
        raise ConfigError(f"--ulimit {text!r}: expected NAME=SOFT[:HARD] with a name such as nofile or nproc")
    soft_text, _, hard_text = value.partition(":")
    soft = _limit(soft_text, text)
    hard = _limit(hard_text, text) if hard_text else soft
    if soft > hard:
        raise ConfigError(f"--ulimit {text!r}: the soft limit {soft} is above the hard limit {hard}")
    host = resource.getrlimit(getattr(resource, kind))[1]
    if host != resource.RLIM_INFINITY and hard > host:
        raise ConfigError(f"--ulimit {text!r}: the hard limit is above the host's ({host})")
    return {"type": kind, "soft": soft, "hard": hard}


def _limit(text: str, whole: str) -> int:
    if text.strip() == "-1":
        return _UNLIMITED
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--ulimit {whole!r}: {text!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"--ulimit {whole!r}: {text!r} must not be negative")
    return value


def shm_size(text: str) -> str:
    """--shm-size as /dev/shm's tmpfs size option."""
    size = parse_bytes(text, "--shm-size")
    if size <= 0:
        raise ConfigError(f"--shm-size {text!r}: must be more than 0")
    return f"size={size // 1024}k" if size % 1024 == 0 else f"size={size}"


def update(engine: Engine, name_or_id: str, flags: ResourceFlags) -> Record:
    """podman update: new limits applied to the running container's cgroups through the runtime library,
    and kept in its config.json (merged), so a restart keeps them."""
    import os

    from hutch import jsonfast
    from hutch.engine.containers import _write_json

    rec = engine.find(name_or_id)
    doc = resources(flags, create=False)
    if not doc:
        raise ConfigError("update: no resource flag given (such as --memory, --cpus or --pids-limit)")
    if "memory" in doc and "swap" not in doc["memory"] and "limit" in doc["memory"]:
        doc["memory"]["swap"] = 2 * doc["memory"]["limit"]
    with engine.lock(rec.id):
        rec = engine.db.get(rec.id)
        if rec.state in ("running", "paused"):
            _apply_live(rec, doc)
        path = os.path.join(engine.path(rec, "userdata"), "config.json")
        with open(path) as f:
            spec = jsonfast.loads(f.read())
        current = spec.setdefault("linux", {}).setdefault("resources", {})
        for section, values in doc.items():
            current.setdefault(section, {}).update(values)
        _write_json(path, spec)
    return rec


def _apply_live(rec: Record, doc: dict[str, Any]) -> None:
    """New limits on a live container: through the runtime library for hutch's own runtime, or `RUNTIME
    update --resources -` for another one (runc, crun; runsc runs without cgroups here)."""
    from hutch.engine import monitor, runtimes

    runtime = monitor.runtime_of(rec)
    if isinstance(runtime, runtimes.CliRuntime):
        import subprocess

        from hutch import jsonfast

        proc = subprocess.run(
            runtime.command("update", "--resources", "-", rec.id),
            input=jsonfast.dumps(doc), capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise StateError(f"update: {runtime.name}: {last}")
        return
    from hutch.oci.config import Reader
    from hutch.oci.resources import parse_resources
    from hutch.runtime import cgroups, container

    root = runtime.root if isinstance(runtime, runtimes.HutchRuntime) else runtimes.HUTCH_ROOT
    c = container.load(root, rec.id)
    if c.status() == "stopped":
        raise StateError(f"container {rec.id} is not running: cannot update it")
    cgroups.update(c.cgroup, parse_resources(Reader(doc, "linux.resources", "update flags")))
