"""The default config.json that `hutch-runtime spec` writes.

It carries the same facts as the reference runtime's default (a busybox-style `sh` with a terminal, three
capabilities, a read-only root, the usual pseudo-filesystems, masked and read-only /proc paths), so a bundle
made with either tool behaves the same under both. Only the hostname and ociVersion are hutch's own.

The rootless variant is for a runtime started by an unprivileged user: it adds a user namespace that maps
the caller's uid and gid to root, keeps the host's network (an unprivileged user cannot set one up), binds
/sys instead of mounting a fresh sysfs, drops the devpts `gid=5` option (that group is not mapped) and sets
no device cgroup rules.
"""

from __future__ import annotations

import os

from hutch import OCI_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HOSTNAME = "hutch"

# Capabilities a default container keeps, in every set but the inheritable one.
_DEFAULT_CAPS = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
_CAP_SETS = ("bounding", "effective", "permitted", "ambient")

_ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "TERM=xterm",
)

# Paths hidden from the container (a bind of /dev/null, or an empty read-only tmpfs over a directory).
_MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
)

# Paths the container may read but never write.
_READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

_NOSUID_NOEXEC_NODEV = ("nosuid", "noexec", "nodev")


def _mount(destination: str, fstype: str, source: str, *options: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"destination": destination, "type": fstype, "source": source}
    if options:
        entry["options"] = list(options)
    return entry


def _mounts(rootless: bool) -> list[dict[str, Any]]:
    devpts_options = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        # The tty group (gid 5) exists only when the container's gids map to the host's.
        devpts_options.append("gid=5")

    if rootless:
        # A fresh sysfs needs CAP_SYS_ADMIN over the network namespace: bind the host's instead.
        sys_mount = _mount("/sys", "none", "/sys", "rbind", *_NOSUID_NOEXEC_NODEV, "ro")
    else:
        sys_mount = _mount("/sys", "sysfs", "sysfs", *_NOSUID_NOEXEC_NODEV, "ro")

    return [
        _mount("/proc", "proc", "proc"),
        _mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
        _mount("/dev/pts", "devpts", "devpts", *devpts_options),
        _mount("/dev/shm", "tmpfs", "shm", *_NOSUID_NOEXEC_NODEV, "mode=1777", "size=65536k"),
        _mount("/dev/mqueue", "mqueue", "mqueue", *_NOSUID_NOEXEC_NODEV),
        sys_mount,
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", *_NOSUID_NOEXEC_NODEV, "relatime", "ro"),
    ]


def _process() -> dict[str, Any]:
    return {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": list(_ENV),
        "cwd": "/",
        "capabilities": {name: list(_DEFAULT_CAPS) for name in _CAP_SETS},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    }


def _linux(rootless: bool) -> dict[str, Any]:
    # Without privilege the host's network stays: nothing could be set up in a new one.
    namespace_types = (
        ["pid", "ipc", "uts", "mount", "user"] if rootless else ["pid", "network", "ipc", "uts", "mount"]
    )
    linux: dict[str, Any] = {}
    if rootless:
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    else:
        # Deny every device; the runtime then allows the default ones it creates.
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    linux["namespaces"] = [{"type": kind} for kind in namespace_types]
    linux["maskedPaths"] = list(_MASKED_PATHS)
    linux["readonlyPaths"] = list(_READONLY_PATHS)
    return linux


def default_spec(rootless: bool = False) -> dict[str, Any]:
    """Return a fresh default runtime config, as a JSON-ready dict the caller may change freely.

    With `rootless`, the config suits a runtime run by the current (unprivileged) user.
    """
    return {
        "ociVersion": OCI_VERSION,
        "process": _process(),
        "root": {"path": "rootfs", "readonly": True},
        "hostname": HOSTNAME,
        "mounts": _mounts(rootless),
        "linux": _linux(rootless),
    }
