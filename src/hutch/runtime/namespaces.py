"""Which namespaces a container gets, and entering them: the kernel flags, paths and the join order."""

import os

from hutch.errors import ConfigError, HutchError
from hutch.linux import ns
from hutch.oci.config import Namespace

FLAGS = {
    "user": ns.CLONE_NEWUSER,
    "pid": ns.CLONE_NEWPID,
    "network": ns.CLONE_NEWNET,
    "mount": ns.CLONE_NEWNS,
    "ipc": ns.CLONE_NEWIPC,
    "uts": ns.CLONE_NEWUTS,
    "cgroup": ns.CLONE_NEWCGROUP,
    "time": ns.CLONE_NEWTIME,
}
# Names of the namespace files under /proc/PID/ns.
PROC_NAMES = {
    "user": "user",
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "cgroup": "cgroup",
    "time": "time",
}
# Join order: the user namespace first (it owns the others), the mount namespace late (it changes our root).
ORDER = ["user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount"]


def open_paths(namespaces: list[Namespace]) -> list[tuple[str, int]]:
    """Open every namespace given by path, in join order, checking each is a namespace of that type."""
    out = []
    try:
        for kind in ORDER:
            for n in namespaces:
                if n.type == kind and n.path:
                    out.append((kind, _open(n.path, kind)))
    except BaseException:
        for _, fd in out:
            os.close(fd)
        raise
    return out


def _open(path: str, kind: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise ConfigError(f"config.json: linux.namespaces ({kind}) path {path}: {e.strerror}") from None
    return fd


def join(kind: str, fd: int) -> None:
    try:
        ns.setns(fd, FLAGS[kind])
    except OSError as e:
        raise HutchError(f"cannot join the {kind} namespace: {e.strerror}") from None
    finally:
        os.close(fd)


def fork_in_pid_namespace(namespaces: list[Namespace]) -> int:
    """fork() a child into the container's PID namespace, new (the child is its PID 1) or given by path; we
    stay where we are (ns.start_in_pid_namespace). Returns what fork returns."""
    pidns = next((n for n in namespaces if n.type == "pid"), None)
    if pidns is None:
        return os.fork()
    fd = _open(pidns.path, "pid") if pidns.path else -1
    try:
        return ns.start_in_pid_namespace(os.fork, fd)
    except OSError as e:
        what = "join the" if pidns.path else "create a"
        raise HutchError(f"cannot {what} pid namespace: {e.strerror}") from None


def new_flags(namespaces: list[Namespace], skip: tuple[str, ...] = ()) -> int:
    flags = 0
    for n in namespaces:
        if not n.path and n.type not in skip:
            flags |= FLAGS[n.type]
    return flags


def write_time_offsets(offsets: dict[str, tuple[int, int]]) -> None:
    """Set clock offsets of a new time namespace; possible only before its first process exists."""
    lines = "".join(f"{clock} {secs} {nsecs}\n" for clock, (secs, nsecs) in offsets.items())
    try:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(lines)
    except OSError as e:
        raise HutchError(f"linux.timeOffsets: {e.strerror}") from None


def write_id_maps(pid: int, uid_lines: str, gid_lines: str) -> None:
    """Write uid_map and gid_map of the user namespace of `pid` (from its parent namespace)."""
    try:
        if os.geteuid() != 0:
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(uid_lines)
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(gid_lines)
    except OSError as e:
        raise HutchError(
            f"linux.uidMappings/gidMappings: cannot write the user namespace maps: {e.strerror}"
        ) from None


def unshare_user() -> None:
    try:
        ns.unshare(ns.CLONE_NEWUSER)
    except OSError as e:
        raise HutchError(f"cannot create a user namespace: {e.strerror}") from None


def unshare(flags: int) -> None:
    try:
        ns.unshare(flags)
    except OSError as e:
        raise HutchError(f"cannot create namespaces ({flags:#x}): {e.strerror}") from None
