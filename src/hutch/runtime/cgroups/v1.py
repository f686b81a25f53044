"""cgroup v1: each controller in its own hierarchy, one directory per controller for a container.

Each function applies one part of linux.resources to the container's directory of one controller; the facade
decides which controller lives where. The order of writes follows what the kernel will accept (runc's).
"""

from __future__ import annotations

import os

from hutch.errors import HostError
from hutch.runtime.cgroups import files
from hutch.runtime.cgroups.files import field_error, write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.oci.resources import CPU, BlockIO, HugepageLimit, Memory, Network, ThrottleDevice

MEMSW = "memory.memsw.limit_in_bytes"


def warn(message: str) -> None:
    from hutch.runtime import log

    log.warning(message)


# --- memory ---


def memory(d: str, m: Memory, update: bool) -> None:
    limit = m.limit or None  # 0 is "not set", as in runc
    swap = m.swap or None
    if limit == -1 and swap is None and files.exists(d, MEMSW):
        swap = -1  # unlimited memory with swap left alone: unlimited swap too
    if swap is not None and not files.exists(d, MEMSW):
        raise field_error(
            "memory.swap", f"swap accounting is off on this host (no {MEMSW}; boot with swapaccount=1)"
        )
    if limit is not None and swap is not None and swap != -1 and 0 < swap < limit:
        raise field_error("memory.swap", f"{swap} is below memory.limit {limit} (swap is memory plus swap)")
    if update and m.check_before_update and limit is not None and limit > 0:
        usage = files.read_int(d, "memory.usage_in_bytes")
        if limit < usage:
            raise field_error(
                "memory.limit", f"{limit} is below the current usage {usage} (checkBeforeUpdate)"
            )
    if limit is not None and swap is not None:
        current = files.read_int(d, "memory.limit_in_bytes")
        if swap == -1 or current < swap:  # raise memsw first, or the new limit may not fit under the old one
            write(d, MEMSW, str(swap), "memory.swap")
            _limit(d, limit)
        else:
            _limit(d, limit)
            write(d, MEMSW, str(swap), "memory.swap")
    elif limit is not None:
        _limit(d, limit)
    elif swap is not None:
        write(d, MEMSW, str(swap), "memory.swap")
    if m.reservation:
        write(d, "memory.soft_limit_in_bytes", str(m.reservation), "memory.reservation")
    if m.kernel is not None or m.kernel_tcp is not None:
        warn("linux.resources.memory.kernel/kernelTCP: kernel memory settings are ignored (deprecated)")
    if m.swappiness is not None:
        if m.swappiness > 100:
            raise field_error("memory.swappiness", f"{m.swappiness} is out of range (0..100)")
        write(d, "memory.swappiness", str(m.swappiness), "memory.swappiness")
    if m.disable_oom_killer is not None and (m.disable_oom_killer or update):
        write(d, "memory.oom_control", "1" if m.disable_oom_killer else "0", "memory.disableOOMKiller")
    if m.use_hierarchy is False:
        warn("linux.resources.memory.useHierarchy: ignored; this kernel's memory hierarchy is always on")


def _limit(d: str, limit: int) -> None:
    try:
        write(d, "memory.limit_in_bytes", str(limit), "memory.limit")
    except Exception as e:
        if files.is_busy(e):
            usage = files.read_int(d, "memory.usage_in_bytes")
            peak = files.read_int(d, "memory.max_usage_in_bytes")
            raise field_error(
                "memory.limit", f"cannot set {limit}: below the current usage {usage} (peak {peak})"
            ) from None
        raise


# --- cpu ---


def cpu(d: str, c: CPU, update: bool) -> None:
    if c.shares:
        write(d, "cpu.shares", str(c.shares), "cpu.shares")
        got = files.read_int(d, "cpu.shares")
        if got != c.shares:
            raise field_error(
                "cpu.shares", f"{c.shares} is out of the range the kernel accepts (it took {got})"
            )
    period_pending = False
    if c.period:
        try:
            write(d, "cpu.cfs_period_us", str(c.period), "cpu.period")
        except Exception:
            # A shorter period can be refused while the old quota is in force; retry after the quota.
            if not c.quota:
                raise
            period_pending = True
    if c.quota:
        write(d, "cpu.cfs_quota_us", str(c.quota if c.quota > 0 else -1), "cpu.quota")
        if period_pending:
            write(d, "cpu.cfs_period_us", str(c.period), "cpu.period")
    if c.burst is not None:
        write(d, "cpu.cfs_burst_us", str(c.burst), "cpu.burst")
    realtime(d, c)
    if c.idle is not None:
        write(d, "cpu.idle", str(c.idle), "cpu.idle")


def realtime(d: str, c: CPU) -> None:
    if not c.realtime_period and c.realtime_runtime is None:
        return
    if not files.exists(d, "cpu.rt_runtime_us"):
        raise field_error(
            "cpu.realtimeRuntime", "this kernel has no real-time group scheduling (CONFIG_RT_GROUP_SCHED)"
        )
    if c.realtime_period:
        write(d, "cpu.rt_period_us", str(c.realtime_period), "cpu.realtimePeriod")
    if c.realtime_runtime is not None:
        try:
            write(d, "cpu.rt_runtime_us", str(c.realtime_runtime), "cpu.realtimeRuntime")
        except HostError as e:
            parent = os.path.dirname(d)
            budget = files.read_or(parent, "cpu.rt_runtime_us", "?")
            raise HostError(f"{e} (the parent {parent} has cpu.rt_runtime_us {budget})") from None


# --- the real-time budget of the parents we made ---

RT_RUNTIME = "cpu.rt_runtime_us"


def cpu_in_budget(d: str, c: CPU, update: bool, owned: list[str]) -> None:
    """cpu(), with the parents we made (hutch/ of default paths) holding the container's real-time budget.

    A cgroup's real-time runtime must fit in its parent's, and a new cgroup has none: so each parent of ours
    holds what the containers below it take (scaled to its period). It grows top-down before the
    container's own write and shrinks bottom-up after it; give_back() returns the rest at delete. Parents
    made by others are left as they are: a request beyond their budget fails with an error naming it. The
    topmost parent's flock serialises the containers that share it (their read-modify-writes).
    """
    chain = owned_chain(d, owned)
    if not chain or c.realtime_runtime is None or c.realtime_runtime < 0 or not files.exists(d, RT_RUNTIME):
        cpu(d, c, update)
        return
    lock = _lock(chain[-1])
    try:
        runtime, period = held(d)
        new_period = c.realtime_period or period
        steps = [(p, _share(c.realtime_runtime, new_period, p) - _share(runtime, period, p)) for p in chain]
        grown: list[tuple[str, int]] = []
        try:
            for level, delta in reversed(steps):  # top-down: each fits in its parent
                if delta > 0:
                    _add(level, delta)
                    grown.append((level, delta))
            cpu(d, c, update)
        except BaseException:
            for level, delta in reversed(grown):
                _add_quietly(level, -delta)
            raise
        for level, delta in steps:  # bottom-up: a parent stays above its children
            if delta < 0:
                _add_quietly(level, delta)
    finally:
        os.close(lock)


def owned_chain(d: str, owned: list[str]) -> list[str]:
    """The parents of `d` that we made, nearest first."""
    chain = []
    parent = os.path.dirname(d)
    while parent in owned:
        chain.append(parent)
        parent = os.path.dirname(parent)
    return chain


def held(d: str) -> tuple[int, int]:
    """(real-time runtime, period) of a container's cgroup; a runtime of -1 (unlimited) counts as none."""
    return max(files.read_int(d, RT_RUNTIME), 0), files.read_int(d, "cpu.rt_period_us") or 1_000_000


def give_back(d: str, owned: list[str]) -> None:
    """Return a container's real-time runtime to the parents we made, at delete once its processes are gone.

    Its own runtime goes to 0 first: the kernel counts a removed cgroup in its parent's sum until it is
    released, some time after the rmdir, and would refuse the parent's smaller budget until then.
    """
    chain = owned_chain(d, owned)
    runtime, period = held(d) if chain else (0, 0)
    if runtime <= 0:
        return
    try:
        lock = _lock(chain[-1])
    except OSError:
        return  # removed with the container's cgroup (by a delete beside ours): its budget went with it
    try:
        write(d, RT_RUNTIME, "0", "cpu.realtimeRuntime")
        for level in chain:
            _add_quietly(level, -_share(runtime, period, level))
    except HostError:
        pass  # the container's cgroup is gone: its runtime went nowhere we can take it from
    finally:
        os.close(lock)


def _share(runtime: int, period: int, level: str) -> int:
    level_period = files.read_int(level, "cpu.rt_period_us", 1_000_000) or 1_000_000
    return runtime * level_period // period


def _add(level: str, delta: int) -> None:
    runtime = max(files.read_int(level, RT_RUNTIME), 0) + delta
    write(level, RT_RUNTIME, str(max(runtime, 0)), "cpu.realtimeRuntime")


def _add_quietly(level: str, delta: int) -> None:
    try:
        _add(level, delta)
    except HostError:
        pass  # below what its other children hold: leave it to them


def _lock(d: str) -> int:
    import fcntl

    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def cpuset(d: str, c: CPU, update: bool) -> None:
    if c.cpus:
        write(d, "cpuset.cpus", c.cpus, "cpu.cpus")
    if c.mems:
        write(d, "cpuset.mems", c.mems, "cpu.mems")


def cpuset_inherit(d: str) -> None:
    """A new v1 cpuset starts with no cpus and no mems (unless clone_children): copy the parent's.

    A task cannot join an empty cpuset, so every level we create gets its parent's sets.
    """
    parent = os.path.dirname(d)
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not files.read_or(d, name):
            write(d, name, files.read(parent, name), "cpu.cpus" if name.endswith("cpus") else "cpu.mems")


# --- pids ---


def pids(d: str, limit: int | None, update: bool) -> None:
    if limit:  # 0 is "not set", as in runc; negative is unlimited
        write(d, "pids.max", str(limit) if limit > 0 else "max", "pids.limit")


# --- blkio ---


def blkio(d: str, b: BlockIO, update: bool) -> None:
    bfq = files.exists(d, "blkio.bfq.weight")
    weight_file = "blkio.bfq.weight" if bfq else "blkio.weight"
    weight_device_file = "blkio.bfq.weight_device" if bfq else "blkio.weight_device"
    if b.weight:
        if not files.exists(d, weight_file):
            raise field_error(
                "blockIO.weight", "this kernel has no blkio.weight (no CFQ or BFQ I/O scheduler)"
            )
        write(d, weight_file, str(b.weight), "blockIO.weight")
    if b.leaf_weight:
        if not files.exists(d, "blkio.leaf_weight"):
            raise field_error("blockIO.leafWeight", "this kernel has no blkio.leaf_weight (it went with CFQ)")
        write(d, "blkio.leaf_weight", str(b.leaf_weight), "blockIO.leafWeight")
    for i, wd in enumerate(b.weight_device):
        where = f"blockIO.weightDevice[{i}]"
        if wd.weight:
            write(d, weight_device_file, f"{wd.major}:{wd.minor} {wd.weight}", where + ".weight")
        if wd.leaf_weight:
            if not files.exists(d, "blkio.leaf_weight_device"):
                raise field_error(where + ".leafWeight", "this kernel has no blkio.leaf_weight_device")
            write(
                d,
                "blkio.leaf_weight_device",
                f"{wd.major}:{wd.minor} {wd.leaf_weight}",
                where + ".leafWeight",
            )
    for key, name, devs in _throttles(b):
        for i, td in enumerate(devs):
            write(d, name, f"{td.major}:{td.minor} {td.rate}", f"blockIO.{key}[{i}]")


def _throttles(b: BlockIO) -> list[tuple[str, str, list[ThrottleDevice]]]:
    return [
        ("throttleReadBpsDevice", "blkio.throttle.read_bps_device", b.throttle_read_bps_device),
        ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", b.throttle_write_bps_device),
        ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", b.throttle_read_iops_device),
        ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", b.throttle_write_iops_device),
    ]


# --- hugetlb ---


def hugetlb(d: str, limits: list[HugepageLimit], update: bool) -> None:
    for i, h in enumerate(limits):
        name = f"hugetlb.{h.page_size}.limit_in_bytes"
        check_page_size(d, name, h.page_size, i)
        write(d, name, str(h.limit), f"hugepageLimits[{i}].limit")
        if files.exists(d, f"hugetlb.{h.page_size}.rsvd.limit_in_bytes"):
            write(d, f"hugetlb.{h.page_size}.rsvd.limit_in_bytes", str(h.limit), f"hugepageLimits[{i}].limit")


def page_sizes() -> list[str]:
    """The huge page sizes of this host, as cgroup files name them ("2MB", "1GB")."""
    out: list[str] = []
    try:
        entries = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return out
    for entry in sorted(entries):
        kb = int(entry.removeprefix("hugepages-").removesuffix("kB"))
        for unit, size in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
            if kb % size == 0:
                out.append(f"{kb // size}{unit}")
                break
    return out


def check_page_size(d: str, name: str, size: str, index: int) -> None:
    if not files.exists(d, name):
        sizes = ", ".join(page_sizes()) or "none"
        raise field_error(
            f"hugepageLimits[{index}].pageSize", f"{size!r} is not a huge page size of this host ({sizes})"
        )


# --- network ---


def net_cls(d: str, n: Network, update: bool) -> None:
    if n.class_id is not None:
        write(d, "net_cls.classid", str(n.class_id), "network.classID")


def net_prio(d: str, n: Network, update: bool) -> None:
    for i, p in enumerate(n.priorities):
        write(d, "net_prio.ifpriomap", f"{p.name} {p.priority}", f"network.priorities[{i}]")


# --- rdma (same file format on v1 and v2) ---


def rdma(d: str, rdma: dict[str, object], update: bool) -> None:
    for device, limits in rdma.items():
        if not isinstance(limits, dict):
            raise field_error(f"rdma.{device}", "expected an object")
        parts = [device]
        if limits.get("hcaHandles") is not None:
            parts.append(f"hca_handle={limits['hcaHandles']}")
        if limits.get("hcaObjects") is not None:
            parts.append(f"hca_object={limits['hcaObjects']}")
        if len(parts) > 1:
            write(d, "rdma.max", " ".join(parts), f"rdma.{device}")


# --- freezer ---


def freeze(d: str, frozen: bool) -> None:
    write(d, "freezer.state", "FROZEN" if frozen else "THAWED", "freezer")


def freezer_state(d: str) -> str:
    """ "FROZEN", "FREEZING" or "THAWED"."""
    return files.read_or(d, "freezer.state", "THAWED")


def oom_kills(d: str) -> int:
    return files.read_keyed(d, "memory.oom_control").get("oom_kill", 0)
