"""The resource flags of `run`/`create`/`update`, as podman reads them: linux.resources (memory, cpu, pids),
rlimits (--ulimit, hutch.engine.ulimits), /dev/shm's size; `update` of a container is hutch.engine.update."""

from __future__ import annotations

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
    from typing import Any
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


def shm_size(text: str) -> str:
    """--shm-size as /dev/shm's tmpfs size option."""
    size = parse_bytes(text, "--shm-size")
    if size <= 0:
        raise ConfigError(f"--shm-size {text!r}: must be more than 0")
    return f"size={size // 1024}k" if size % 1024 == 0 else f"size={size}"


# The cli's entry points of what moved out (hutch.engine.ulimits, hutch.engine.update).
