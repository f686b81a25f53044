"""A pod's cgroup: the parent of its containers' cgroups, as podman lays pods out with cgroupfs
(`<cgroup parent>/<pod id>`, each container below it), so that the pod's limits (`pod create --memory`,
`--cpus`, ...) bound the whole pod and its usage is the sum of its containers'.

The directories are made in every v1 hierarchy and on v2, at the same places the runtime puts a relative or
absolute cgroupsPath (hutch.runtime.cgroups.layout), before any container of the pod exists; the runtime
finds them there and leaves them to the pod (it removes only the parents it made). `remove` takes them away
with the pod, and the parents made for it when no one else uses them.
"""

from __future__ import annotations

import os

from hutch.errors import HostError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PARENT = "hutch/pods"  # relative, as the runtime's default hutch/<id>: below our own cgroup


def path_of(parent: str, pod_id: str) -> str:
    """The pod's cgroupsPath: `<parent>/<pod id>`, podman's layout."""
    from hutch.runtime.cgroups import layout

    cleaned = layout.clean(parent or DEFAULT_PARENT)
    return f"{cleaned.rstrip('/')}/{pod_id}"


def create(path: str, resources: dict[str, Any]) -> list[str]:
    """Make the pod's cgroup directories and write its limits; returns every directory made (deepest last),
    which `remove` takes away. Nothing is left on failure."""
    from hutch.oci.reader import Reader
    from hutch.oci.resources import parse_resources
    from hutch.runtime import cgroups
    from hutch.runtime.cgroups import layout, v2

    host = layout.detect()
    if host.mode == "none":
        raise HostError("cgroups: no cgroup filesystem is mounted on this host")
    made: list[str] = []
    record: dict[str, Any] = {"path": path, "v1": {}, "v2": "", "owned": []}
    try:
        for h in host.hierarchies():
            d = layout.cgroup_dir(h, path, v2=False)
            _mkdirs(d, h.mountpoint, made, cpuset="cpuset" in h.controllers)
            for c in h.controllers:
                record["v1"][c] = d
        if host.v2 is not None:
            d = layout.cgroup_dir(host.v2, path, v2=True)
            _mkdirs(d, host.v2.mountpoint, made)
            v2.enable_controllers(d, host.v2.mountpoint)
            record["v2"] = d
        if resources:
            cgroups.apply(
                record,
                parse_resources(Reader(resources, "linux.resources", "pod create flags")),
                update=False,
                devices=False,
            )
    except BaseException as e:
        remove(made)
        if isinstance(e, OSError):
            raise HostError(f"cgroups: cannot create the pod's cgroup {e.filename}: {e.strerror}") from None
        raise
    return made


def _mkdirs(d: str, top: str, made: list[str], cpuset: bool = False) -> None:
    from hutch.runtime.cgroups import v1

    levels = []
    p = d
    while p != top and p.startswith(top + "/"):
        levels.append(p)
        p = os.path.dirname(p)
    for level in reversed(levels):
        try:
            os.mkdir(level, 0o755)
            made.append(level)
        except FileExistsError:
            if level == d:
                raise HostError(f"cgroups: the pod's cgroup {d} exists already") from None
        if cpuset:
            v1.cpuset_inherit(level)


def remove(made: list[str], shared_parents: int = 0, timeout: float = 5.0) -> None:
    """Remove the pod's directories, deepest first, and `shared_parents` levels above each pod directory
    (hutch/pods and hutch, which other pods may have made): a parent still used by others stays."""
    import time

    deadline = time.monotonic() + timeout
    dirs = set(made)
    for d in made:
        if len(os.path.basename(d)) == 64:  # the pod's own directory
            for _ in range(shared_parents):
                d = os.path.dirname(d)
                dirs.add(d)
    for d in sorted(dirs, key=lambda p: p.count("/"), reverse=True):
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                # EBUSY while the last container's dying tasks go; ENOTEMPTY for a shared parent
                if e.errno == 16 and time.monotonic() < deadline:
                    time.sleep(0.005)
                    continue
                break
