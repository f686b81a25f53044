"""podman's system commands: version, info (host, store, runtime, cgroups), df, container prune, system prune
and system reset of one storage root.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


def version() -> dict[str, Any]:
    """podman version's Client fields."""
    import datetime

    import hutch
    from hutch import OCI_VERSION, __version__

    # Built: when the package's version file was written (an install, or the checkout's last change to it).
    built = int(os.stat(hutch.__file__).st_mtime) if hutch.__file__ else 0
    return {
        "APIVersion": __version__,
        "Version": __version__,
        "PythonVersion": platform.python_version(),
        "OCIVersion": OCI_VERSION,
        "Built": built,
        "BuiltTime": datetime.datetime.fromtimestamp(built).strftime("%a %b %d %H:%M:%S %Y"),
        "OsArch": f"linux/{_arch()}",
        "Os": "linux",
    }


def _arch() -> str:
    from hutch.oci.image import host_platform

    return host_platform().architecture


def info(engine: Engine) -> dict[str, Any]:
    """podman info's document: host, store, registries, version."""
    from hutch.runtime.cgroups import layout

    cg = layout.detect()
    counts = {"number": 0, "paused": 0, "running": 0, "stopped": 0}
    for rec in engine.list(all=True):
        counts["number"] += 1
        key = {"running": "running", "paused": "paused"}.get(rec.state, "stopped")
        counts[key] += 1
    storage = engine.storage()
    uname = os.uname()
    mem = _meminfo()
    host: dict[str, Any] = {
        "arch": _arch(),
        "cgroupControllers": sorted(c for c in cg.v1 if not c.startswith("name="))
        or sorted(cg.v2_controllers()),
        "cgroupManager": "cgroupfs",
        "cgroupVersion": "v2" if cg.mode == "v2" else "v1",
        "cgroupHybrid": cg.mode == "hybrid",
        "cgroupLayout": cg.mode,
        "cpus": os.cpu_count() or 0,
        "distribution": _distribution(),
        "hostname": uname.nodename,
        "kernel": uname.release,
        "memFree": mem.get("MemAvailable", 0),
        "memTotal": mem.get("MemTotal", 0),
        "swapFree": mem.get("SwapFree", 0),
        "swapTotal": mem.get("SwapTotal", 0),
        "ociRuntime": {"name": "hutch-runtime", "package": "hutch", "path": "in-process (hutch.runtime)"},
        "os": "linux",
        "rootless": os.geteuid() != 0,
        "uptime": _uptime(),
    }
    images = list(storage.iter_images())
    store = {
        "configFile": "",
        "containerStore": counts,
        "graphDriverName": "overlay",
        "graphRoot": engine.root,
        "imageStore": {"number": len(images)},
        "runRoot": engine.runtime_root,
        "volumePath": os.path.join(engine.root, "volumes"),
        "databasePath": engine.image_db_path,
    }
    return {"host": host, "store": store, "registries": _registries(), "version": version()}


def _registries() -> dict[str, Any]:
    """registries.conf as podman info shows it: the search registries, and each [[registry]]'s settings."""
    from hutch.image import registries

    try:
        conf = registries.load()
    except HutchError:
        return {}
    out: dict[str, Any] = {}
    for entry in conf.registries:
        out[entry.prefix] = {
            "Prefix": entry.prefix,
            "Location": entry.location,
            "Insecure": entry.insecure,
            "Blocked": entry.blocked,
            "Mirrors": [m.location for m in entry.mirrors],
        }
    if conf.search:
        out["search"] = list(conf.search)
    return out


def _meminfo() -> dict[str, int]:
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            words = value.split()
            if words and words[0].isdigit():
                out[key] = int(words[0]) * (1024 if len(words) > 1 else 1)
    return out


def _distribution() -> dict[str, str]:
    out = {}
    with contextlib.suppress(OSError), open("/etc/os-release") as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            out[key] = value.strip('"')
    return {"distribution": out.get("ID", ""), "version": out.get("VERSION_ID", "")}


def _uptime() -> str:
    with open("/proc/uptime") as f:
        seconds = int(float(f.read().split()[0]))
    h, rem = divmod(seconds, 3600)
    return f"{h}h {rem // 60}m {rem % 60}s"


def du(path: str) -> int:
    """Bytes used below `path` (files' sizes, each inode once), not crossing mounts."""
    total, seen = 0, set()
    dev = os.lstat(path).st_dev if os.path.lexists(path) else None
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(top, name))
                if st.st_dev != dev or (st.st_ino in seen):
                    continue
                seen.add(st.st_ino)
                total += st.st_blocks * 512
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(top, d))]
    return total


def image_sharing(engine: Engine, images: list[Any]) -> tuple[dict[str, int], int]:
    """Per image (by id hex) the bytes of its layers that other images have too, and the bytes counted twice
    or more in the sum of the images' sizes (what their shared layers take once)."""
    db = engine.storage().db
    layers = {img.id.hex: db.image_layers(img.id) for img in images}
    users: dict[str, int] = {}
    size: dict[str, int] = {}
    for found in layers.values():
        for layer in found:
            key = str(layer.diff_id)
            users[key] = users.get(key, 0) + 1
            size[key] = layer.size or 0
    shared = {
        image: sum(layer.size or 0 for layer in found if users[str(layer.diff_id)] > 1)
        for image, found in layers.items()
    }
    return shared, sum(size[k] * (n - 1) for k, n in users.items() if n > 1)


def container_size(engine: Engine, rec: Record) -> int:
    """What the container wrote (its upper dir)."""
    return du(engine.path(rec, "upper"))


# --- prune and reset ---


def prune_containers(engine: Engine) -> list[tuple[str, int]]:
    """podman container prune: every container not running removed; (id, bytes freed) each."""
    from hutch.engine import stopping

    out = []
    for rec in engine.list(all=True):
        if rec.state in ("running", "paused"):
            continue
        size = container_size(engine, rec)
        with contextlib.suppress(HutchError):
            stopping.remove(engine, rec.id)
            out.append((rec.id, size))
    return out


def prune(engine: Engine, *, all: bool = False, volumes: bool = False) -> dict[str, Any]:
    """podman system prune: stopped containers, networks no container uses (but the default), dangling
    (`all`: unused) images, and with `volumes` unused volumes; what was removed and the bytes freed."""
    from hutch.engine.network import manage as networks

    containers = prune_containers(engine)
    removed_networks = networks.prune(engine)
    storage = engine.storage()
    sizes = {img.id.hex: img.size for img in storage.iter_images()}
    images = storage.prune(all=all)
    removed_volumes: list[str] = []
    freed = sum(s for _, s in containers) + sum(sizes.get(i, 0) for i in images)
    if volumes:
        from hutch.engine import volumedb
        from hutch.engine import volumes as store  # `volumes` is the flag here

        volume_sizes = {vol.name: du(store.directory(engine, vol.name)) for vol in volumedb.all(engine.db)}
        removed_volumes = store.prune(engine)
        freed += sum(volume_sizes.get(v, 0) for v in removed_volumes)
    return {
        "containers": [c for c, _ in containers],
        "networks": removed_networks,
        "volumes": removed_volumes,
        "images": images,
        "freed": freed,
    }


def reset(engine: Engine) -> None:
    """podman system reset: every pod and container (killed), network, image and volume of the root gone,
    then every file under the root; nothing mounted is left below it, and nothing the root's files name
    outside it (pods' cgroups, networks' firewall chains and bridges)."""
    from hutch.engine import pods, stopping
    from hutch.engine.network import manage as networks

    if os.path.realpath(engine.root) == "/":
        raise HutchError("system reset: the storage root is /: refusing to empty it")
    for pod in pods.all_pods(engine):
        with contextlib.suppress(HutchError):
            pods.remove(engine, pod, force=True)
    for rec in engine.list(all=True):
        with contextlib.suppress(HutchError):
            stopping.remove(engine, rec.id, force=True)
    with contextlib.suppress(HutchError):
        networks.prune(engine)  # every network but the default, which no root owns alone
    root, db_path = engine.root, engine.image_db_path
    engine.close()
    _unmount_below(root)
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(db_path + suffix)


def _unmount_below(root: str) -> None:
    """Detach every mount below `root` (deepest first), so removing the tree cannot reach into one."""
    from hutch.linux import mount

    prefix = os.path.realpath(root).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [_unescape(line.split()[4]) for line in f]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        with contextlib.suppress(OSError):
            mount.umount2(point, mount.MNT_DETACH)


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field
