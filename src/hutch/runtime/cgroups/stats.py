"""A container's resource usage, in the shape `runc events --stats` prints (runc's events/types.go).

Fields runc omits when empty are omitted here too, so consumers that decode runc's output decode ours. The
OOM kill count is what `events` watches between two stats.
"""

from __future__ import annotations

import os

from hutch.errors import HutchError
from hutch.runtime import cgroups
from hutch.runtime.cgroups import files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.runtime.cgroups import Record

_U64_MAX = (1 << 64) - 1
_NS = 1_000_000_000


def _where(paths: dict[str, str], v2: str, controller: str) -> tuple[str, str] | None:
    if controller in paths:
        return "v1", paths[controller]
    if v2:
        return "v2", v2
    return None


def read(record: Record) -> dict[str, object]:
    """Usage in `runc events --stats` form (the "data" of a stats event)."""
    if not cgroups.directories(record):
        raise HutchError("stats: the container has no cgroup")
    paths, v2 = cgroups.v1_dirs(record), cgroups.v2_dir(record)
    data: dict[str, object] = {}
    data["cpu"] = _cpu(paths, v2)
    if "cpuset" in paths:
        data["cpuset"] = _cpuset(paths["cpuset"])
    data["memory"] = _memory(paths, v2)
    data["pids"] = _pids(paths, v2)
    data["blkio"] = _blkio(paths, v2)
    data["hugetlb"] = _hugetlb(paths, v2)
    data["intel_rdt"] = {}
    data["network_interfaces"] = None
    return data


def oom_kills(record: Record) -> int:
    """How many processes of the container the OOM killer has killed."""
    found = cgroups.where(record, "memory")
    if found is None:
        return 0
    kind, d = found
    from hutch.runtime.cgroups import v1, v2

    return v1.oom_kills(d) if kind == "v1" else v2.oom_kills(d)


def _omit(d: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in d.items() if v not in (0, [], {}, None, "")}


# --- cpu ---


def _cpu(paths: dict[str, str], v2: str) -> dict[str, object]:
    usage: dict[str, object] = {}
    throttling: dict[str, object] = {}
    acct = paths.get("cpuacct")
    if acct:
        usage["total"] = files.read_int(acct, "cpuacct.usage")
        usage["percpu"] = [int(x) for x in files.read_or(acct, "cpuacct.usage_percpu").split()]
        kernel, user = [], []
        for line in files.read_or(acct, "cpuacct.usage_all").splitlines()[1:]:
            parts = line.split()
            if len(parts) == 3:
                user.append(int(parts[1]))
                kernel.append(int(parts[2]))
        usage["percpu_kernel"], usage["percpu_user"] = kernel, user
        ticks = os.sysconf("SC_CLK_TCK")
        stat = files.read_keyed(acct, "cpuacct.stat")
        usage["kernel"] = stat.get("system", 0) * _NS // ticks
        usage["user"] = stat.get("user", 0) * _NS // ticks
    elif v2:
        stat = files.read_keyed(v2, "cpu.stat")
        usage["total"] = stat.get("usage_usec", 0) * 1000
        usage["kernel"] = stat.get("system_usec", 0) * 1000
        usage["user"] = stat.get("user_usec", 0) * 1000
    cpu_dir = paths.get("cpu") or v2
    if cpu_dir:
        stat = files.read_keyed(cpu_dir, "cpu.stat")
        throttled = stat.get("throttled_time", stat.get("throttled_usec", 0) * 1000)
        throttling = {
            "periods": stat.get("nr_periods", 0),
            "throttled_periods": stat.get("nr_throttled", 0),
            "throttled_time": throttled,
        }
    out_usage = _omit(usage)
    out_usage.setdefault("kernel", 0)
    out_usage.setdefault("user", 0)
    return {"usage": out_usage, "throttling": _omit(throttling)}


def _cpu_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


def _cpuset(d: str) -> dict[str, object]:
    return {
        "cpus": _cpu_list(files.read_or(d, "cpuset.cpus")),
        "cpu_exclusive": files.read_int(d, "cpuset.cpu_exclusive"),
        "mems": _cpu_list(files.read_or(d, "cpuset.mems")),
        "mem_hardwall": files.read_int(d, "cpuset.mem_hardwall"),
        "mem_exclusive": files.read_int(d, "cpuset.mem_exclusive"),
        "memory_migrate": files.read_int(d, "cpuset.memory_migrate"),
        "memory_spread_page": files.read_int(d, "cpuset.memory_spread_page"),
        "memory_spread_slab": files.read_int(d, "cpuset.memory_spread_slab"),
        "memory_pressure": files.read_int(d, "cpuset.memory_pressure"),
        "sched_load_balance": files.read_int(d, "cpuset.sched_load_balance"),
        "sched_relax_domain_level": files.read_int(d, "cpuset.sched_relax_domain_level"),
    }


# --- memory ---


def _entry(limit: int, usage: int, peak: int, failcnt: int) -> dict[str, object]:
    return {
        "limit": _U64_MAX if limit < 0 else limit,
        **_omit({"usage": usage, "max": peak}),
        "failcnt": failcnt,
    }


def _memory(paths: dict[str, str], v2: str) -> dict[str, object]:
    where = _where(paths, v2, "memory")
    if where is None:
        return {}
    kind, d = where
    raw = files.read_keyed(d, "memory.stat")
    out: dict[str, object] = {}
    if kind == "v1":
        out["cache"] = raw.get("cache", 0)
        for key, prefix in (
            ("usage", "memory"),
            ("swap", "memory.memsw"),
            ("kernel", "memory.kmem"),
            ("kernelTCP", "memory.kmem.tcp"),
        ):
            if files.exists(d, prefix + ".limit_in_bytes"):
                out[key] = _entry(
                    files.read_int(d, prefix + ".limit_in_bytes"),
                    files.read_int(d, prefix + ".usage_in_bytes"),
                    files.read_int(d, prefix + ".max_usage_in_bytes"),
                    files.read_int(d, prefix + ".failcnt"),
                )
    else:
        out["cache"] = raw.get("file", 0)
        usage = files.read_int(d, "memory.current")
        limit = files.read_int(d, "memory.max")
        events = files.read_keyed(d, "memory.events")
        out["usage"] = _entry(limit, usage, files.read_int(d, "memory.peak"), events.get("max", 0))
        if files.exists(d, "memory.swap.current"):
            swap_limit = files.read_int(d, "memory.swap.max")
            combined = -1 if swap_limit < 0 or limit < 0 else swap_limit + limit
            out["swap"] = _entry(combined, usage + files.read_int(d, "memory.swap.current"), 0, 0)
    out["raw"] = raw
    return _omit(out)


# --- pids ---


def _pids(paths: dict[str, str], v2: str) -> dict[str, object]:
    where = _where(paths, v2, "pids")
    if where is None:
        return {}
    limit = files.read_int(where[1], "pids.max")
    return _omit({"current": files.read_int(where[1], "pids.current"), "limit": 0 if limit < 0 else limit})


# --- blkio ---


def _blkio(paths: dict[str, str], v2: str) -> dict[str, object]:
    where = _where(paths, v2, "blkio")
    if where is None:
        return {}
    kind, d = where
    if kind == "v1":
        return _omit(
            {
                "ioServiceBytesRecursive": _v1_entries(d, "blkio.throttle.io_service_bytes_recursive"),
                "ioServicedRecursive": _v1_entries(d, "blkio.throttle.io_serviced_recursive"),
            }
        )
    service_bytes: list[dict[str, object]] = []
    serviced: list[dict[str, object]] = []
    for line in files.read_or(d, "io.stat").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        values = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for key, op, target in (
            ("rbytes", "Read", service_bytes),
            ("wbytes", "Write", service_bytes),
            ("rios", "Read", serviced),
            ("wios", "Write", serviced),
        ):
            if key in values:
                target.append(_omit({"major": major, "minor": minor, "op": op, "value": int(values[key])}))
    return _omit({"ioServiceBytesRecursive": service_bytes, "ioServicedRecursive": serviced})


def _v1_entries(d: str, name: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for line in files.read_or(d, name).splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        out.append(_omit({"major": major, "minor": minor, "op": parts[1], "value": int(parts[2])}))
    return out


# --- hugetlb ---


def _hugetlb(paths: dict[str, str], v2: str) -> dict[str, object]:
    from hutch.runtime.cgroups.v1 import page_sizes

    out: dict[str, object] = {}
    if "hugetlb" in paths:
        d = paths["hugetlb"]
        for size in page_sizes():
            if files.exists(d, f"hugetlb.{size}.usage_in_bytes"):
                entry: dict[str, object] = {
                    "usage": files.read_int(d, f"hugetlb.{size}.usage_in_bytes"),
                    "max": files.read_int(d, f"hugetlb.{size}.max_usage_in_bytes"),
                }
                out[size] = {**_omit(entry), "failcnt": files.read_int(d, f"hugetlb.{size}.failcnt")}
    elif v2:
        for size in page_sizes():
            if files.exists(v2, f"hugetlb.{size}.current"):
                events = files.read_keyed(v2, f"hugetlb.{size}.events")
                usage = _omit({"usage": files.read_int(v2, f"hugetlb.{size}.current")})
                out[size] = {**usage, "failcnt": events.get("max", 0)}
    return out
