"""cgroup v2: one directory per container, holding every controller the v2 hierarchy has.

The spec's values are v1's; they are converted as runc converts them (cpu shares to cpu.weight, blkio weight
to io.weight, memory+swap to swap alone). Knobs that v2 does not have are an error when they ask for
something, or runc's silence turned into a warning where runc ignores them.
"""

from __future__ import annotations

import os

from hutch.runtime.cgroups import files, v1
from hutch.runtime.cgroups.files import field_error, write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.oci.resources import CPU, BlockIO, HugepageLimit, Memory


def enable_controllers(directory: str, top: str) -> None:
    """Hand every available controller down from `top` to `directory` (each level's cgroup.subtree_control).

    As runc does on v2. A level that refuses (it has processes of its own, or is threaded) keeps what it has:
    a resource that then lacks its file in the container's cgroup fails with an error naming it.
    """
    levels = []
    d = os.path.dirname(directory)
    while d.startswith(top) and len(d) >= len(top):
        levels.append(d)
        if d == top:
            break
        d = os.path.dirname(d)
    for level in reversed(levels):
        available = files.read_or(level, "cgroup.controllers").split()
        enabled = set(files.read_or(level, "cgroup.subtree_control").split())
        missing = [c for c in available if c not in enabled]
        if not missing:
            continue
        try:
            files.write_raw(level, "cgroup.subtree_control", " ".join("+" + c for c in missing))
        except OSError:
            for c in missing:  # one at a time: enable what can be
                try:
                    files.write_raw(level, "cgroup.subtree_control", "+" + c)
                except OSError:
                    pass


def _num(value: int) -> str:
    return "max" if value < 0 else str(value)


# --- memory ---


def swap_value(swap: int, limit: int) -> int:
    """runc's ConvertMemorySwapToCgroupV2Value: v1's memory+swap (0 unset, -1 unlimited) to v2's swap alone."""
    if limit == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if limit in (0, -1):
        raise field_error("memory.swap", "a swap limit needs a memory limit on cgroup v2")
    if limit < 0:
        raise field_error("memory.limit", f"{limit} is not a valid limit")
    if swap < limit:
        raise field_error("memory.swap", f"{swap} is below memory.limit {limit} (swap is memory plus swap)")
    return swap - limit


def memory(d: str, m: Memory, update: bool) -> None:
    limit = m.limit or 0
    swap = m.swap or 0
    if swap > 0 and not limit and update:
        limit = files.read_int(d, "memory.max")
    if limit or swap:
        if update and m.check_before_update and limit > 0:
            usage = files.read_int(d, "memory.current")
            if limit < usage:
                raise field_error(
                    "memory.limit", f"{limit} is below the current usage {usage} (checkBeforeUpdate)"
                )
        v2swap = swap_value(swap, limit)
        if v2swap != 0 or swap > 0:  # swap equal to the limit: no swap at all ("0")
            if not files.exists(d, "memory.swap.max"):
                raise field_error("memory.swap", "swap accounting is off on this host (no memory.swap.max)")
            write(d, "memory.swap.max", _num(v2swap), "memory.swap")
        if m.limit:
            try:
                write(d, "memory.max", _num(m.limit), "memory.limit")
            except Exception as e:
                if files.is_busy(e):
                    usage = files.read_int(d, "memory.current")
                    raise field_error(
                        "memory.limit", f"cannot set {m.limit}: below the current usage {usage}"
                    ) from None
                raise
    if m.reservation:
        write(d, "memory.low", _num(m.reservation), "memory.reservation")
    if m.kernel is not None or m.kernel_tcp is not None:
        v1.warn("linux.resources.memory.kernel/kernelTCP: kernel memory settings are ignored (deprecated)")
    if m.swappiness is not None:
        v1.warn("linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness; ignored")
    if m.disable_oom_killer:
        v1.warn("linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer; ignored")


# --- cpu ---


def cpu_weight(shares: int) -> int:
    """runc's ConvertCPUSharesToCgroupV2Value: shares 2..262144 onto weight 1..10000."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def cpu(d: str, c: CPU, update: bool) -> None:
    if c.idle is not None:
        write(d, "cpu.idle", str(c.idle), "cpu.idle")
    if c.shares and c.idle != 1:  # an idle cgroup has no weight
        write(d, "cpu.weight", str(cpu_weight(c.shares)), "cpu.shares")
    if c.quota or c.period:
        if c.quota:
            quota = "max" if c.quota < 0 else str(c.quota)
        else:
            quota = (files.read_or(d, "cpu.max", "max").split() or ["max"])[0]
        write(
            d,
            "cpu.max",
            f"{quota} {c.period}" if c.period else quota,
            "cpu.quota" if c.quota else "cpu.period",
        )
    if c.burst is not None:
        write(d, "cpu.max.burst", str(c.burst), "cpu.burst")
    if c.realtime_runtime or c.realtime_period:
        key = "cpu.realtimeRuntime" if c.realtime_runtime else "cpu.realtimePeriod"
        raise field_error(key, "cgroup v2 has no real-time CPU bandwidth control")


def cpuset(d: str, c: CPU, update: bool) -> None:
    if c.cpus:
        write(d, "cpuset.cpus", c.cpus, "cpu.cpus")
    if c.mems:
        write(d, "cpuset.mems", c.mems, "cpu.mems")


# --- pids ---


def pids(d: str, limit: int | None, update: bool) -> None:
    if limit:
        write(d, "pids.max", str(limit) if limit > 0 else "max", "pids.limit")


# --- io ---


def io_weight(weight: int) -> int:
    """runc's ConvertBlkIOToIOWeightValue: blkio 10..1000 onto io.weight 1..10000."""
    return 0 if weight == 0 else 1 + (weight - 10) * 9999 // 990


def io(d: str, b: BlockIO, update: bool) -> None:
    bfq = files.exists(d, "io.bfq.weight")
    if b.weight:
        if bfq:
            write(d, "io.bfq.weight", str(b.weight), "blockIO.weight")
        else:
            write(d, "io.weight", f"default {io_weight(b.weight)}", "blockIO.weight")
    if b.leaf_weight:
        raise field_error("blockIO.leafWeight", "cgroup v2 has no leaf weight")
    for i, wd in enumerate(b.weight_device):
        where = f"blockIO.weightDevice[{i}]"
        if wd.weight:
            if bfq:
                write(d, "io.bfq.weight", f"{wd.major}:{wd.minor} {wd.weight}", where + ".weight")
            else:
                write(d, "io.weight", f"{wd.major}:{wd.minor} {io_weight(wd.weight)}", where + ".weight")
        if wd.leaf_weight:
            raise field_error(where + ".leafWeight", "cgroup v2 has no leaf weight")
    for key, name, devs in (
        ("throttleReadBpsDevice", "rbps", b.throttle_read_bps_device),
        ("throttleWriteBpsDevice", "wbps", b.throttle_write_bps_device),
        ("throttleReadIOPSDevice", "riops", b.throttle_read_iops_device),
        ("throttleWriteIOPSDevice", "wiops", b.throttle_write_iops_device),
    ):
        for i, td in enumerate(devs):
            rate = str(td.rate) if td.rate else "max"
            write(d, "io.max", f"{td.major}:{td.minor} {name}={rate}", f"blockIO.{key}[{i}]")


# --- hugetlb ---


def hugetlb(d: str, limits: list[HugepageLimit], update: bool) -> None:
    for i, h in enumerate(limits):
        name = f"hugetlb.{h.page_size}.max"
        v1.check_page_size(d, name, h.page_size, i)
        write(d, name, str(h.limit), f"hugepageLimits[{i}].limit")
        if files.exists(d, f"hugetlb.{h.page_size}.rsvd.max"):
            write(d, f"hugetlb.{h.page_size}.rsvd.max", str(h.limit), f"hugepageLimits[{i}].limit")


# --- unified ---


def unified(d: str, values: dict[str, str], v1_controllers: set[str]) -> None:
    """Raw v2 files. `v1_controllers` are bound to v1 on this (hybrid) host: their keys cannot be set here."""
    available = set(files.read_or(d, "cgroup.controllers").split())
    for key, value in values.items():
        where = f"unified[{key!r}]"
        if "/" in key or key in (".", ".."):
            raise field_error(where, "must be a file name (no slashes)")
        controller = key.split(".", 1)[0]
        if controller in v1_controllers or (controller == "io" and "blkio" in v1_controllers):
            raise field_error(where, f"the {controller} controller is on cgroup v1 on this host, not v2")
        if not files.exists(d, key):
            if "." not in key:
                raise field_error(where, "must be CONTROLLER.PARAMETER")
            if controller != "cgroup" and controller not in available:
                raise field_error(where, f"the {controller} controller is not available in {d}")
        write(d, key, value, where)


# --- freezer ---


def freeze(d: str, frozen: bool) -> None:
    write(d, "cgroup.freeze", "1" if frozen else "0", "freezer")


def is_frozen(d: str) -> bool:
    return files.read_keyed(d, "cgroup.events").get("frozen") == 1


def oom_kills(d: str) -> int:
    return files.read_keyed(d, "memory.events").get("oom_kill", 0)
