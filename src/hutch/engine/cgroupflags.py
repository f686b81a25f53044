"""The cgroup flags of `run`/`create` beyond memory/cpu/pids, as podman reads them: --device-cgroup-rule,
--blkio-weight[-device], --device-read/write-bps/iops, --memory-swappiness, --cpu-rt-runtime/period and
--cgroup-parent, --cgroups; into linux.resources and linux.cgroupsPath, which the runtime writes."""

from __future__ import annotations

import os
import stat

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


def device_rule(text: str) -> dict[str, Any]:
    """--device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS' (c 1:3 rwm, b 8:* r, a *:* m): an allow rule."""
    parts = text.split()
    if len(parts) != 3 or parts[0] not in ("a", "b", "c") or not set(parts[2]) <= set("rwm") or not parts[2]:
        raise ConfigError(f"--device-cgroup-rule {text!r}: expected 'TYPE MAJOR:MINOR ACCESS' (c 1:3 rwm)")
    major, sep, minor = parts[1].partition(":")
    rule: dict[str, Any] = {"allow": True, "type": parts[0], "access": parts[2]}
    for key, value in (("major", major), ("minor", minor)):
        if value == "*":
            continue
        if not sep or not value.isdigit():
            raise ConfigError(f"--device-cgroup-rule {text!r}: {key} must be a number or *")
        rule[key] = int(value)
    return rule


def _device_numbers(path: str, flag: str, text: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise ConfigError(f"{flag} {text!r}: {path}: {e.strerror}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise ConfigError(f"{flag} {text!r}: {path} is not a block device")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def _weight(text: str, flag: str, whole: str) -> int:
    if not text.isdigit() or not 10 <= int(text) <= 1000:
        raise ConfigError(f"{flag} {whole!r}: the weight must be between 10 and 1000")
    return int(text)


def _throttle(text: str, flag: str, iops: bool) -> dict[str, int]:
    """DEVICE:RATE, the rate in bytes per second (512kb, 1mb) or I/O operations per second."""
    from hutch.engine.resources import parse_bytes

    path, sep, rate_text = text.rpartition(":")
    if not sep or not path:
        raise ConfigError(f"{flag} {text!r}: expected DEVICE:RATE")
    major, minor = _device_numbers(path, flag, text)
    if iops:
        if not rate_text.isdigit():
            raise ConfigError(f"{flag} {text!r}: the rate must be a number of I/O operations per second")
        rate = int(rate_text)
    else:
        rate = parse_bytes(rate_text, flag)
    return {"major": major, "minor": minor, "rate": rate}


def resources(f: CgroupFlags) -> dict[str, Any]:
    """The linux.resources sections these flags set (blockIO, memory.swappiness, cpu.realtime*)."""
    out: dict[str, Any] = {}
    blkio: dict[str, Any] = {}
    if f.blkio_weight is not None:
        blkio["weight"] = _weight(f.blkio_weight, "--blkio-weight", f.blkio_weight)
    for text in f.blkio_weight_device:
        path, sep, weight = text.rpartition(":")
        if not sep or not path:
            raise ConfigError(f"--blkio-weight-device {text!r}: expected DEVICE:WEIGHT")
        major, minor = _device_numbers(path, "--blkio-weight-device", text)
        w = _weight(weight, "--blkio-weight-device", text)
        blkio.setdefault("weightDevice", []).append({"major": major, "minor": minor, "weight": w})
    for flag, key, texts, iops in (
        ("--device-read-bps", "throttleReadBpsDevice", f.device_read_bps, False),
        ("--device-write-bps", "throttleWriteBpsDevice", f.device_write_bps, False),
        ("--device-read-iops", "throttleReadIOPSDevice", f.device_read_iops, True),
        ("--device-write-iops", "throttleWriteIOPSDevice", f.device_write_iops, True),
    ):
        for text in texts:
            blkio.setdefault(key, []).append(_throttle(text, flag, iops))
    if blkio:
        out["blockIO"] = blkio
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
