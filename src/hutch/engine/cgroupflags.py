"""The cgroup flags of `run`/`create` beyond memory/cpu/pids, as podman reads them: --device-cgroup-rule
(hutch.engine.devices), --blkio-weight[-device] and --device-read/write-bps/iops (hutch.engine.blkioflags),
--memory-swappiness, --cpu-rt-runtime/period, --cgroup-parent and --cgroups; into linux.resources and
linux.cgroupsPath, which the runtime writes."""

from __future__ import annotations

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
    from typing import Any
else:
    from hutch.record import dataclass, field

CGROUPS_MODES = ("enabled", "disabled", "no-conmon", "split")
FLAGS = (
    "blkio_weight", "blkio_weight_device", "device_read_bps", "device_write_bps",
    "device_read_iops", "device_write_iops", "memory_swappiness", "cpu_rt_runtime", "cpu_rt_period",
)  # fmt: skip


@dataclass(slots=True)
class CgroupFlags:
    """The flags as given (empty or None when absent)."""

    blkio_weight: str | None = None
    blkio_weight_device: list[str] = field(default_factory=list)
    device_read_bps: list[str] = field(default_factory=list)
    device_write_bps: list[str] = field(default_factory=list)
    device_read_iops: list[str] = field(default_factory=list)
    device_write_iops: list[str] = field(default_factory=list)
    memory_swappiness: int | None = None
    cpu_rt_runtime: int | None = None
    cpu_rt_period: int | None = None


def resources(f: CgroupFlags) -> dict[str, Any]:
    """The linux.resources sections these flags set (blockIO, memory.swappiness, cpu.realtime*)."""
    out: dict[str, Any] = {}
    blkio_lists = (
        f.blkio_weight_device,
        f.device_read_bps,
        f.device_write_bps,
        f.device_read_iops,
        f.device_write_iops,
    )
    if f.blkio_weight is not None or any(blkio_lists):
        from hutch.engine import blkioflags

        out["blockIO"] = blkioflags.block_io(f)
    if f.memory_swappiness is not None:
        if not 0 <= f.memory_swappiness <= 100:
            raise ConfigError(f"--memory-swappiness {f.memory_swappiness}: must be between 0 and 100")
        out["memory"] = {"swappiness": f.memory_swappiness}
    cpu: dict[str, Any] = {}
    if f.cpu_rt_period is not None:
        if f.cpu_rt_period <= 0:
            raise ConfigError(f"--cpu-rt-period {f.cpu_rt_period}: must be more than 0")
        cpu["realtimePeriod"] = f.cpu_rt_period
    if f.cpu_rt_runtime is not None:
        if f.cpu_rt_runtime < -1:
            raise ConfigError(f"--cpu-rt-runtime {f.cpu_rt_runtime}: must be -1 or more")
        if f.cpu_rt_period is not None and f.cpu_rt_runtime > f.cpu_rt_period:
            raise ConfigError(f"--cpu-rt-runtime {f.cpu_rt_runtime}: must not exceed --cpu-rt-period")
        cpu["realtimeRuntime"] = f.cpu_rt_runtime
    if cpu:
        out["cpu"] = cpu
    return out


def merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    """Merge linux.resources sections (`more` wins key by key)."""
    for section, values in more.items():
        into.setdefault(section, {}).update(values)


def cgroup_parent(text: str) -> str:
    """--cgroup-parent: an absolute cgroup path (a relative one is taken from the root, as podman's cgroupfs
    manager takes it); the container's cgroup is PARENT/ID."""
    path = "/" + text.strip().strip("/")
    if path == "/" or any(p in (".", "..") for p in path.split("/")):
        raise ConfigError(f"--cgroup-parent {text!r}: expected a cgroup path such as /mygroup")
    return path


def cgroups_mode(text: str) -> str:
    """--cgroups: enabled (the default), or no-conmon, which is what hutch does anyway (conmon is never
    given a cgroup of its own: it stays in the caller's). disabled and split are refused: hutch's runtime
    always gives the container a cgroup, and split needs systemd."""
    if text not in CGROUPS_MODES:
        raise ConfigError(f"--cgroups {text!r}: expected one of {', '.join(CGROUPS_MODES)}")
    if text == "disabled":
        raise ConfigError("--cgroups 'disabled': hutch's runtime always gives a container its own cgroups")
    if text == "split":
        raise ConfigError("--cgroups 'split': needs systemd's cgroup manager, which hutch does not use")
    return text
