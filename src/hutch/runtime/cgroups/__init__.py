"""Control groups of a container: the interface the runtime calls, over cgroup v1, v2 and hybrid hosts.

The layout is found at run time (layout.py). A container gets one directory in each v1 hierarchy and one in
the v2 hierarchy, when the host has them; each part of linux.resources goes where its controller lives
(v1.py or v2.py). Devices: v1's devices.allow/deny, or on v2 a BPF program (devices_bpf.py). Pausing and
resuming are in freezer.py, usage (`events`, `stats`) in stats.py.

The record `setup` returns is what state.json keeps, plain JSON:

    {"path": "hutch/c1",                                   the cleaned cgroupsPath used (informational)
     "v1": {"memory": "/sys/fs/cgroup/memory/hutch/c1", ...},   v1 directory by controller (co-mounted
                                                                controllers share one; "name=systemd" too)
     "v2": "/sys/fs/cgroup/unified/hutch/c1",              the v2 directory, or ""
     "owned": ["/sys/fs/cgroup/memory/x", ...],            parents of a cgroupsPath we made, removed with the
                                                          last container below them
     "shared": ["/sys/fs/cgroup/cpu/hutch", ...]}          hutch/ of default paths: it stays, as podman's parent
                                                          does (no mkdir and rmdir of it in every hierarchy for
                                                          every container); kept for the real-time budget

An empty record means the container has no cgroup (rootless without permission, as runc allows).
"""

from __future__ import annotations

import os
import time

from hutch.errors import HostError, HutchError
from hutch.runtime.cgroups import files
from hutch.runtime.cgroups.files import field_error

TYPE_CHECKING = False
if TYPE_CHECKING:  # delete, kill and pause need no config types (oci.config is ~1 ms to import)
    from collections.abc import Callable

    from hutch.oci.config import Device, Linux
    from hutch.oci.resources import Resources
    from hutch.runtime.cgroups import layout

# layout, v1 and v2 are imported where used: state and delete need little of them (~0.4 ms of imports).

Record = dict[str, object]

DEFAULT_PARENT = "hutch"


# --- the record ---


def v1_dirs(record: Record) -> dict[str, str]:
    """The container's v1 directory by controller."""
    paths = record.get("v1")
    return paths if isinstance(paths, dict) else {}


def v2_dir(record: Record) -> str:
    """The container's v2 directory, or "" on a host without the v2 hierarchy."""
    path = record.get("v2")
    return path if isinstance(path, str) else ""


def _owned(record: Record, key: str = "owned") -> list[str]:
    owned = record.get(key)
    return [p for p in owned if isinstance(p, str)] if isinstance(owned, list) else []


def _budget_parents(record: Record) -> list[str]:
    """The parents of ours that hold the container's real-time budget (v1.cpu_in_budget)."""
    return _owned(record) + _owned(record, "shared")


def directories(record: Record) -> list[str]:
    """The container's cgroup directories, each once: v1 hierarchies first, then v2."""
    out: list[str] = []
    for d in v1_dirs(record).values():
        if d not in out:
            out.append(d)
    if v2_dir(record):
        out.append(v2_dir(record))
    return out


def where(record: Record, controller: str) -> tuple[str, str] | None:
    """("v1" or "v2", directory) of a controller (named as on v1) for this container, or None."""
    paths = v1_dirs(record)
    if controller in paths:
        return "v1", paths[controller]
    d = v2_dir(record)
    if not d:
        return None
    from hutch.runtime.cgroups import layout

    if (
        controller in layout.V2_BUILTIN
        or layout.V2_NAMES.get(controller, controller) in files.read_or(d, "cgroup.controllers").split()
    ):
        return "v2", d
    return None


# --- setup and teardown ---


def setup(
    container_id: str,
    linux: Linux,
    pid: int,
    *,
    host: layout.Layout | None = None,
    remember: Callable[[Record], None] | None = None,
) -> Record:
    """Create the container's cgroup(s), apply linux.resources, move `pid` in; returns what to remember.

    Limits are in place before `pid` joins, so nothing of the container ever runs unlimited.
    """
    record = prepare(container_id, linux, host=host, remember=remember)
    join(record, pid)
    return record


def join(record: Record, pid: int) -> None:
    """Move `pid` into the cgroup(s) that prepare() made; on failure they are removed."""
    try:
        add(record, pid)
    except BaseException:
        destroy(record)
        raise


def prepare(
    container_id: str,
    linux: Linux,
    *,
    host: layout.Layout | None = None,
    remember: Callable[[Record], None] | None = None,
) -> Record:
    """Create the container's cgroup(s) and apply linux.resources; returns what to remember ({}: none).

    Without a cgroupsPath the container gets hutch/<id> below our own cgroup (runc's relative default, in a
    parent of our own); should that name be taken (the same id under another --root), hutch/<id>-1 and so
    on. `remember` gets the record as soon as the directories exist, before the limits and the move (whose
    RCU grace period is the long part): a runtime killed from then on leaves cgroups `delete --force` finds.
    """
    from hutch.runtime.cgroups import layout, v2

    if linux.resources is None:
        from hutch.oci.resources import Resources

        resources = Resources()
    else:
        resources = linux.resources
    privileged = os.geteuid() == 0
    host = host or layout.detect()
    path = layout.clean(linux.cgroups_path)
    default = not path
    if host.mode == "none":
        if not privileged and default and not _wants(resources):
            return {}
        raise HostError("cgroups: no cgroup filesystem is mounted on this host")
    record: Record = {}
    created: list[str] = []
    leaves: list[str] = []
    for attempt in range(100):
        if default:
            path = f"{DEFAULT_PARENT}/{container_id}" + (f"-{attempt}" if attempt else "")
        record = {"path": path, "v1": {}, "v2": "", "owned": []}
        created, leaves = [], []
        try:
            for h in host.hierarchies():
                d = layout.cgroup_dir(h, path, v2=False)
                _make(d, h.mountpoint, created, cpuset="cpuset" in h.controllers, fresh=default)
                leaves.append(d)
                for c in h.controllers:
                    v1_dirs(record)[c] = d
            if host.v2 is not None:
                d = layout.cgroup_dir(host.v2, path, v2=True)
                _make(d, host.v2.mountpoint, created, fresh=default)
                leaves.append(d)
                record["v2"] = d
            break
        except BaseException as e:
            for d in reversed(created):
                _rmdir_quietly(d)
            if isinstance(e, FileExistsError) and default:
                continue  # the name is taken: the next one
            if isinstance(e, OSError):
                if not privileged and default and not _wants(resources):
                    return {}  # rootless without a delegated cgroup: run without one, as runc does
                raise HostError(f"cgroups: cannot create {e.filename}: {e.strerror}") from None
            raise
    else:
        raise HostError(f"cgroups: no free cgroup name for {DEFAULT_PARENT}/{container_id}")
    if default:
        record["shared"] = [os.path.dirname(d) for d in leaves]
    else:
        owned = [d for d in created if d not in leaves]
        record["owned"] = sorted(owned, key=lambda p: p.count("/"), reverse=True)
    busy = [d for d in leaves if d not in created and files.procs(d)]
    if busy:  # someone else's processes: leave them and their cgroup be
        for d in reversed(created):
            _rmdir_quietly(d)
        raise HostError(
            f"linux.cgroupsPath: {linux.cgroups_path!r}: the cgroup {busy[0]} is not empty; "
            "a container needs a cgroup of its own"
        )
    try:
        if remember is not None:
            remember(record)
        # A change to cgroup.subtree_control waits for the same RCU grace period as the move (see
        # cgroup_warmup.py): when no limit needs v2's files, the v1 writes go first, in that wait's shadow.
        top = host.v2.mountpoint if host.v2 is not None else ""
        v2_first = bool(top) and _on_v2(host, resources)
        if v2_first:
            v2.enable_controllers(v2_dir(record), top)
        apply(record, resources, update=False, devices=privileged, spec_devices=linux.devices)
        if top and not v2_first:
            v2.enable_controllers(v2_dir(record), top)
    except BaseException:
        destroy(record)
        raise
    return record


def _wants(resources: Resources) -> bool:
    """Whether the resources ask for anything a controller must do (devices aside)."""
    return any(
        (
            resources.memory,
            resources.cpu,
            resources.pids,
            resources.block_io,
            resources.hugepage_limits,
            resources.network,
            resources.rdma,
            resources.unified,
        )
    )


def _on_v2(host: layout.Layout, r: Resources) -> bool:
    """Whether applying `r` writes files of the v2 hierarchy (or reads which controllers it offers)."""
    wanted = ["devices"]
    for controllers, field in (
        (("memory",), r.memory),
        (("cpu", "cpuset"), r.cpu),
        (("pids",), r.pids),
        (("blkio",), r.block_io),
        (("hugetlb",), r.hugepage_limits),
        (("rdma",), r.rdma),
    ):
        if field:
            wanted += controllers
    return bool(r.unified) or any(host.where(c) != "v1" for c in wanted)


def _make(d: str, top: str, created: list[str], cpuset: bool = False, fresh: bool = False) -> None:
    """mkdir -p `d` below the mount `top`, noting what we made; a v1 cpuset level gets its parent's sets.

    With `fresh`, `d` itself must not exist yet (FileExistsError): nobody else may be using it.
    """
    try:
        os.mkdir(d, 0o755)  # the usual case, the parents exist (hutch/ stays): one mkdir
    except FileNotFoundError:
        pass
    except FileExistsError:
        if fresh:
            raise
    else:
        created.append(d)
        if cpuset:
            _cpuset_inherit(d)
        return
    levels = []
    p = d
    while p != top and p.startswith(top + "/"):
        levels.append(p)
        p = os.path.dirname(p)
    for attempt in range(3):
        try:
            for level in reversed(levels):
                try:
                    os.mkdir(level, 0o755)
                    created.append(level)
                except FileExistsError:
                    if fresh and level == d:
                        raise
                if cpuset:
                    _cpuset_inherit(level)
            return
        except FileNotFoundError:  # another container removed a parent of ours under us: again
            if attempt == 2:
                raise


def _cpuset_inherit(level: str) -> None:
    from hutch.runtime.cgroups import v1

    try:
        v1.cpuset_inherit(level)
    except HutchError:
        if os.path.isdir(level):
            raise
        raise FileNotFoundError(level) from None  # removed meanwhile: made again by _make


def add(record: Record, pid: int) -> None:
    """Move `pid` (init's parent at create, an exec'd process later) into the container's cgroup(s)."""
    for d in directories(record):
        try:
            files.write_raw(d, "cgroup.procs", str(pid))
        except OSError as e:
            raise HostError(f"cgroups: cannot move process {pid} into {d}: {e.strerror}") from None


def pids(record: Record) -> list[int]:
    """Every process in the container's cgroup(s), sub-cgroups included."""
    found: set[int] = set()
    for d in directories(record):
        found.update(files.procs(d))
    return sorted(found)


def destroy(record: Record, timeout: float = 5.0) -> None:
    """Remove the container's cgroup(s), and the parents only it used.

    Its processes should be gone; any left (a runtime killed half-way) are killed, thawed first if frozen.
    """
    if _remove_empty(record):
        _remove_owned(record)
        return
    dirs = [d for d in directories(record) if os.path.isdir(d)]
    deadline = time.monotonic() + timeout
    while True:
        left = pids(record)
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if is_frozen(record, strict=False):
            from hutch.runtime.cgroups import freezer

            freezer.set_frozen(record, False)
        if time.monotonic() > deadline:
            raise HostError(f"cgroups: processes {left} in {dirs[0]} did not die")
        time.sleep(0.005)
    _give_back(record)
    for d in dirs:
        for sub in files.subtree(d):
            _rmdir(sub, deadline)
    _remove_owned(record)


def _remove_empty(record: Record) -> bool:
    """The usual case, one rmdir per cgroup: its processes are gone and it has no sub-cgroup. False when
    one is busy (the slow path then finds and kills what is left, and walks the sub-cgroups)."""
    _give_back(record)
    for d in directories(record):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return True


def _give_back(record: Record) -> None:
    """Return a real-time budget to the parents that hold it (it would pile up there); read first, as almost
    no container has one (v1 is 0.3 ms of imports for delete)."""
    cpu = v1_dirs(record).get("cpu", "")
    parents = _budget_parents(record)
    if cpu and parents and files.read_int(cpu, "cpu.rt_runtime_us") > 0:
        from hutch.runtime.cgroups import v1

        v1.give_back(cpu, parents)


def remove_unrecorded(container_id: str) -> None:
    """After a create killed before it recorded its cgroups (no state.json yet): remove the default ones it
    may have made, hutch/<id> in each hierarchy. Only empty ones go: a busy one is not that create's."""
    from hutch.runtime.cgroups import layout

    host = layout.detect()
    if host.mode == "none":
        return
    path = f"{DEFAULT_PARENT}/{container_id}"
    for h in host.hierarchies():
        _rmdir_quietly(layout.cgroup_dir(h, path, v2=False))
    if host.v2 is not None:
        _rmdir_quietly(layout.cgroup_dir(host.v2, path, v2=True))


def _rmdir(d: str, deadline: float) -> None:
    while True:
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if not files.is_busy(e) or time.monotonic() > deadline:  # dying tasks not yet gone
                raise HostError(f"cgroups: cannot remove {d}: {e.strerror}") from None
            time.sleep(0.005)


def _remove_owned(record: Record) -> None:
    """Remove the parents the container made for its cgroupsPath that no other cgroup is below now, deepest
    first. A kernfs directory's link count is 2 plus its subdirectories: one stat tells whether another
    container uses a parent, where an rmdir that fails takes cgroup_mutex first (and waits behind any move
    into a cgroup, an RCU grace period). A create racing with the rmdir finds the parent gone and makes it
    again (_make); one that got its leaf in first makes the rmdir fail, quietly."""
    for d in _owned(record):
        try:
            if os.stat(d).st_nlink > 2:
                continue  # another container's cgroup is below: the last one removes it
        except OSError:
            continue
        _rmdir_quietly(d)


def _rmdir_quietly(d: str) -> None:
    try:
        os.rmdir(d)
    except OSError:
        pass  # in use by another container, or already gone


# --- resources ---


def apply(
    record: Record,
    resources: Resources,
    *,
    update: bool,
    devices: bool = True,
    spec_devices: list[Device] | None = None,
) -> None:
    """Write linux.resources to the container's cgroups; a field the host cannot honour is an error naming it."""
    from hutch.runtime.cgroups import v1, v2

    def need(controller: str, field: str) -> tuple[str, str]:
        found = where(record, controller)
        if found is None:
            raise field_error(field, f"the {controller} controller is not available on this host")
        return found

    r = resources
    if r.memory is not None:
        kind, d = need("memory", "memory")
        (v1.memory if kind == "v1" else v2.memory)(d, r.memory, update)
    c = r.cpu
    if c is not None:
        if (
            any(
                x is not None
                for x in (c.quota, c.period, c.burst, c.realtime_runtime, c.realtime_period, c.idle)
            )
            or c.shares
        ):
            kind, d = need("cpu", "cpu")
            if kind == "v1":
                v1.cpu_in_budget(d, c, update, _budget_parents(record))
            else:
                v2.cpu(d, c, update)
        if c.cpus or c.mems:
            kind, d = need("cpuset", "cpu.cpus" if c.cpus else "cpu.mems")
            (v1.cpuset if kind == "v1" else v2.cpuset)(d, c, update)
    if r.pids is not None and r.pids.limit:
        kind, d = need("pids", "pids.limit")
        (v1.pids if kind == "v1" else v2.pids)(d, r.pids.limit, update)
    b = r.block_io
    if b is not None and (
        b.weight
        or b.leaf_weight
        or b.weight_device
        or b.throttle_read_bps_device
        or b.throttle_write_bps_device
        or b.throttle_read_iops_device
        or b.throttle_write_iops_device
    ):
        kind, d = need("blkio", "blockIO")
        (v1.blkio if kind == "v1" else v2.io)(d, b, update)
    if r.hugepage_limits:
        kind, d = need("hugetlb", "hugepageLimits")
        (v1.hugetlb if kind == "v1" else v2.hugetlb)(d, r.hugepage_limits, update)
    n = r.network
    if n is not None and n.class_id is not None:
        if "net_cls" not in v1_dirs(record):
            raise field_error(
                "network.classID", "needs the v1 net_cls controller, which this host does not mount"
            )
        v1.net_cls(v1_dirs(record)["net_cls"], n, update)
    if n is not None and n.priorities:
        if "net_prio" not in v1_dirs(record):
            raise field_error(
                "network.priorities", "needs the v1 net_prio controller, which this host does not mount"
            )
        v1.net_prio(v1_dirs(record)["net_prio"], n, update)
    if r.rdma:
        kind, d = need("rdma", "rdma")
        v1.rdma(d, r.rdma, update)
    if r.unified:
        if not v2_dir(record):
            raise field_error("unified", "this host has no cgroup v2 hierarchy (it is cgroup v1 only)")
        v2.unified(v2_dir(record), r.unified, set(v1_dirs(record)))
    if devices:
        _devices(record, r, spec_devices)
    elif update and r.devices:
        v1.warn("linux.resources.devices: update does not change device rules (as with runc); ignored")


def _devices(record: Record, r: Resources, spec_devices: list[Device] | None) -> None:
    from hutch.runtime.cgroups import devices

    emu = devices.effective(r.devices, spec_devices)
    found = where(record, "devices")
    if found is None:
        if not r.devices:
            return  # only the implicit defaults, on a host that cannot enforce any: as runc, go on
        raise field_error("devices", "the host has neither a v1 devices controller nor cgroup v2")
    kind, d = found
    if kind == "v1":
        devices.write_v1(d, emu)
        return
    from hutch.runtime.cgroups import devices_bpf

    try:
        devices_bpf.attach(d, emu)
    except OSError as e:
        raise field_error("devices", f"cannot attach the device program to {d}: {e.strerror or e}") from None


def update(record: Record, resources: Resources) -> None:
    """Apply new limits to a live container (device rules stay as they are, as with runc)."""
    if not directories(record):
        raise HostError("update: the container has no cgroup")
    apply(record, resources, update=True, devices=False)


# --- frozen or not (freezing and thawing: freezer.py) ---
# Here, not in freezer.py: `state` asks for every running container; a module of its own would be one more
# import on that path.


def freezer_dir(record: Record) -> tuple[str, str] | None:
    """("v1" or "v2", directory) of the container's freezer, or None (no v1 freezer and no v2)."""
    if "freezer" in v1_dirs(record):
        return "v1", v1_dirs(record)["freezer"]
    if v2_dir(record):
        return "v2", v2_dir(record)
    return None


def is_frozen(record: Record, strict: bool = True) -> bool:
    """Whether the container is paused: v1 freezer FROZEN (or FREEZING unless `strict`), v2 frozen."""
    found = freezer_dir(record)
    if found is None:
        return False
    kind, d = found
    if kind == "v1":
        from hutch.runtime.cgroups import v1

        state = v1.freezer_state(d)
        return state == "FROZEN" or (not strict and state == "FREEZING")
    from hutch.runtime.cgroups import v2

    return v2.is_frozen(d) or (not strict and files.read_or(d, "cgroup.freeze") == "1")
