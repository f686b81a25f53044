"""The host's cgroup layout, found at run time: pure v1, pure v2 (unified), or hybrid (both).

Read from /proc/self/mountinfo (which hierarchies are mounted where, and which controllers each v1 hierarchy
holds) and /proc/self/cgroup (our own cgroup in each). A controller lives in exactly one place: bound to a v1
hierarchy, or else available in the v2 hierarchy. `devices` and `freezer` are built into v2 (a BPF program,
cgroup.freeze), so on v2 they are available whenever the v2 hierarchy is mounted.
"""

from __future__ import annotations

import os
import posixpath

from hutch.errors import ConfigError, HostError

# The v1 controllers the kernel knows (named hierarchies such as name=systemd are kept as "name=...").
V1_CONTROLLERS = frozenset(
    {
        "cpuset",
        "cpu",
        "cpuacct",
        "blkio",
        "memory",
        "devices",
        "freezer",
        "net_cls",
        "perf_event",
        "net_prio",
        "hugetlb",
        "pids",
        "rdma",
        "misc",
    }
)
# What a v1 controller is called on v2, where it has a counterpart.
V2_NAMES = {"blkio": "io"}
V2_BUILTIN = frozenset({"devices", "freezer"})
# Named v1 hierarchies a container joins (runc joins name=systemd too; others are left alone).
JOINED_NAMED = frozenset({"name=systemd"})


class Hierarchy:
    """One mounted hierarchy: where it is, the part of the tree that mount shows, and our cgroup in it."""

    __slots__ = ("mountpoint", "root", "controllers", "own")

    def __init__(self, mountpoint: str, root: str, controllers: tuple[str, ...], own: str) -> None:
        self.mountpoint = mountpoint
        self.root = root
        self.controllers = controllers  # v1: ("cpu", "cpuacct") or ("name=systemd",); v2: ()
        self.own = own  # our cgroup, as /proc/self/cgroup names it

    def own_dir(self) -> str:
        """The directory of our own cgroup under this mount."""
        own = self.own
        if self.root != "/" and (own == self.root or own.startswith(self.root + "/")):
            own = own[len(self.root) :] or "/"
        return posixpath.join(self.mountpoint, own.lstrip("/")).rstrip("/") or "/"

    def __repr__(self) -> str:
        return f"Hierarchy({self.mountpoint!r}, {self.controllers!r}, own={self.own!r})"


class Layout:
    """The v1 hierarchies by controller (co-mounted controllers share one), and the v2 hierarchy if any."""

    __slots__ = ("v1", "v2", "_v2_controllers")

    def __init__(self, v1: dict[str, Hierarchy], v2: Hierarchy | None) -> None:
        self.v1 = v1
        self.v2 = v2
        self._v2_controllers: frozenset[str] | None = None

    @property
    def mode(self) -> str:
        """ "v1", "v2", "hybrid", or "none" (no cgroup filesystem mounted at all)."""
        if self.v1 and self.v2:
            return "hybrid"
        return "v1" if self.v1 else "v2" if self.v2 else "none"

    def v2_controllers(self) -> frozenset[str]:
        """Controllers the v2 root offers (its cgroup.controllers), by their v2 names."""
        if self._v2_controllers is None:
            found: frozenset[str] = frozenset()
            if self.v2 is not None:
                try:
                    with open(os.path.join(self.v2.mountpoint, "cgroup.controllers")) as f:
                        found = frozenset(f.read().split())
                except OSError:
                    pass
            self._v2_controllers = found
        return self._v2_controllers

    def where(self, controller: str) -> str | None:
        """ "v1" or "v2" for a controller named as on v1 ("blkio", "memory", ...); None when the host has none."""
        if controller in self.v1:
            return "v1"
        if self.v2 is not None and (
            controller in V2_BUILTIN or V2_NAMES.get(controller, controller) in self.v2_controllers()
        ):
            return "v2"
        return None

    def hierarchies(self) -> list[Hierarchy]:
        """Each distinct v1 hierarchy a container joins, once."""
        seen: list[Hierarchy] = []
        for h in self.v1.values():
            if h not in seen and (h.controllers[0] in V1_CONTROLLERS or h.controllers[0] in JOINED_NAMED):
                seen.append(h)
        return seen


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1 : i + 4]) == 3 and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse(mountinfo: str, proc_cgroup: str) -> Layout:
    """The layout described by a mountinfo text and a /proc/PID/cgroup text."""
    own_v1: dict[str, str] = {}
    own_v2 = "/"
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            own_v2 = parts[2]
        else:
            for name in parts[1].split(","):
                own_v1[name] = parts[2]
    v1: dict[str, Hierarchy] = {}
    v2: Hierarchy | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 4:
            continue
        fstype = fields[sep + 1]
        if fstype == "cgroup2":
            if v2 is None:
                v2 = Hierarchy(_unescape(fields[4]), _unescape(fields[3]), (), own_v2)
        elif fstype == "cgroup":
            opts = fields[sep + 3].split(",")
            controllers = tuple(o for o in opts if o in V1_CONTROLLERS or o.startswith("name="))
            if not controllers or any(c in v1 for c in controllers):
                continue  # not a hierarchy we know, or another mount of one we have
            own = next((own_v1[c] for c in controllers if c in own_v1), "/")
            h = Hierarchy(_unescape(fields[4]), _unescape(fields[3]), controllers, own)
            for c in controllers:
                v1[c] = h
    return Layout(v1, v2)


def detect() -> Layout:
    """The layout of this host, as this process sees it."""
    try:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
        with open("/proc/self/cgroup") as f:
            proc_cgroup = f.read()
    except OSError as e:
        raise HostError(f"cgroups: cannot read {e.filename}: {e.strerror}") from None
    return parse(mountinfo, proc_cgroup)


def clean(path: str) -> str:
    """runc's CleanPath: normalise, and keep a relative path from climbing out with "..".

    The result is "" for an empty path, absolute for an absolute one, otherwise relative.
    """
    if not path:
        return ""
    if path.startswith("/"):
        return posixpath.normpath(path).replace("//", "/")
    cleaned = posixpath.normpath("/" + path)
    return cleaned.lstrip("/")


def cgroup_dir(h: Hierarchy, path: str, v2: bool) -> str:
    """The container's directory in hierarchy `h` for a cleaned cgroupsPath, as runc places it.

    Absolute: under the mount. Relative: under our own cgroup on v1, and under its parent on v2 (our own v2
    cgroup has processes, so it could not hand controllers down to a child).
    """
    if path.startswith("/"):
        inner = path
        if h.root != "/" and (inner == h.root or inner.startswith(h.root + "/")):
            inner = inner[len(h.root) :]
        out = posixpath.join(h.mountpoint, inner.lstrip("/"))
    else:
        base = h.own_dir()
        if v2 and base != h.mountpoint:
            base = posixpath.dirname(base)
        out = posixpath.join(base, path)
    out = out.rstrip("/")
    if out == h.mountpoint.rstrip("/"):
        raise ConfigError(
            f"linux.cgroupsPath: {path!r} is the root of {h.mountpoint}; a container needs its own"
        )
    return out
