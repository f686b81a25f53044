"""The sysctls of a container (linux.sysctl): which it may set, their names, and writing them from init."""

from __future__ import annotations

import os

from hutch.errors import ConfigError, HutchError
from hutch.linux.fs import (
    O_PATH,
    PROC_SUPER_MAGIC,
    RESOLVE_BENEATH,
    RESOLVE_NO_SYMLINKS,
    RESOLVE_NO_XDEV,
    fstatfs_type,
    openat2,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.oci.config import Spec

# Sysctls of the IPC namespace (besides fs.mqueue.*); net.* belong to the network namespace.
_IPC_SYSCTLS = frozenset(
    ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem")
    + ("kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
)


def check(spec: Spec) -> None:
    """Refuse a sysctl that would change the host: one in no namespace, or in one the container shares with
    the host (runc's rules)."""
    assert spec.linux is not None
    for key in spec.linux.sysctl:
        parts = parts_of(key)
        where = f"{spec.source}: linux.sysctl[{key!r}]"
        if ".".join(parts) in _IPC_SYSCTLS or parts[:2] == ["fs", "mqueue"]:
            if spec.linux.namespace("ipc") is None:
                raise ConfigError(f"{where}: not allowed in the host's ipc namespace")
        elif parts[0] == "net":
            netns = spec.linux.namespace("network")
            if netns is None or (netns.path and _same_file(netns.path, "/proc/self/ns/net")):
                raise ConfigError(f"{where}: not allowed in the host's network namespace")
        elif parts == ["kernel", "domainname"] and spec.linux.namespace("uts") is not None:
            pass
        elif parts == ["kernel", "hostname"] and spec.linux.namespace("uts") is not None:
            raise ConfigError(f"{where}: conflicts with the hostname field; set that instead")
        else:
            raise ConfigError(f"{where}: not in a namespace of the container's own; it would change the host")


def _same_file(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def parts_of(key: str) -> list[str]:
    """The components of a sysctl name, dotted (`net.ipv4.ip_forward`) or, as sysctl(8) also takes them,
    with slashes (`net/ipv4/conf/eth0.100/forwarding`, where a dot may be part of a name)."""
    parts = key.split("/") if "/" in key else key.split(".")
    if any(part in ("", ".", "..") for part in parts):
        raise HutchError(f"linux.sysctl: invalid key {key!r}")
    return parts


def write(sysctl: dict[str, str], proc_fd: int = -1) -> None:
    """Write each sysctl to the container's own /proc/sys, and to nothing else: a symlink or a mount on the
    way (a volume, an image's symlink) could otherwise send the value to another file, such as the host's
    kernel.core_pattern (CVE-2025-52881). So /proc/sys must be a procfs reached without symlinks (below
    `proc_fd`, the root of the container's proc, when there is one), and the key is opened below it without
    crossing a symlink or a mount."""
    if not sysctl:
        return
    flags = O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        if proc_fd >= 0:
            base = openat2(proc_fd, "sys", flags, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
        else:
            base = openat2(-100, "/proc/sys", flags, 0, RESOLVE_NO_SYMLINKS)
    except OSError as e:
        raise HutchError(f"linux.sysctl: cannot open /proc/sys: {e.strerror}") from None
    try:
        if fstatfs_type(base) != PROC_SUPER_MAGIC:
            raise HutchError("linux.sysctl: /proc/sys in the container is not a proc filesystem")
        for key, value in sysctl.items():
            resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV
            try:
                fd = openat2(base, "/".join(parts_of(key)), os.O_WRONLY | os.O_CLOEXEC, 0, resolve)
                try:
                    os.write(fd, value.encode())
                finally:
                    os.close(fd)
            except OSError as e:
                why = os.strerror(e.errno) if e.errno else str(e)
                raise HutchError(f"linux.sysctl: cannot set {key}={value}: {why}") from None
    finally:
        os.close(base)
