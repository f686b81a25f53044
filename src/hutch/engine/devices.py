"""Devices for a container: --device (host device nodes, or every one below a directory), --privileged's
host devices, and --device-cgroup-rule; as linux.devices entries and linux.resources.devices rules."""

from __future__ import annotations

import os
import stat

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def device(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """--device HOST[:CONTAINER][:PERMS]: the linux.devices entries and their cgroup rules (a directory
    gives every device below it, as in podman)."""
    parts = text.split(":")
    host = parts[0]
    perms = "rwm"
    if len(parts) > 1 and parts[-1] and set(parts[-1]) <= set("rwm") and not parts[-1].startswith("/"):
        perms = parts.pop()
    if len(parts) > 2 or not host.startswith("/"):
        raise ConfigError(f"--device {text!r}: expected HOST[:CONTAINER][:PERMISSIONS]")
    inside = parts[1] if len(parts) == 2 and parts[1] else host
    if not inside.startswith("/"):
        raise ConfigError(f"--device {text!r}: {inside!r} is not an absolute path")
    try:
        st = os.stat(host)
    except OSError as e:
        raise ConfigError(f"--device {text!r}: {host}: {e.strerror or e}") from None
    found: list[tuple[str, os.stat_result]] = []
    if stat.S_ISDIR(st.st_mode):
        for dirpath, _dirs, files in os.walk(host):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                sub = os.stat(path)
                if stat.S_ISCHR(sub.st_mode) or stat.S_ISBLK(sub.st_mode):
                    found.append((os.path.join(inside, os.path.relpath(path, host)), sub))
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        found.append((inside, st))
    else:
        raise ConfigError(f"--device {text!r}: {host} is not a device")
    return _device_entries(found, perms)


def _device_entries(
    found: list[tuple[str, os.stat_result]], perms: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    devices, rules = [], []
    for path, st in found:
        kind = "b" if stat.S_ISBLK(st.st_mode) else "c"
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        devices.append(
            {
                "path": path,
                "type": kind,
                "major": major,
                "minor": minor,
                "fileMode": st.st_mode & 0o777,
                "uid": 0,
                "gid": 0,
            }
        )
        rules.append({"allow": True, "type": kind, "major": major, "minor": minor, "access": perms})
    return devices, rules


# Under --privileged every host device comes in, except those the runtime makes itself or that belong
# to the host's terminal and pseudo-filesystems.
_SKIP_DEV = ("/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/fd", "/dev/console", "/dev/ptmx", "/dev/tty")


def host_devices() -> list[dict[str, Any]]:
    """Every device node under the host's /dev, for --privileged."""
    found: list[tuple[str, os.stat_result]] = []
    for dirpath, dirs, files in os.walk("/dev"):
        dirs[:] = [d for d in dirs if os.path.join(dirpath, d) not in _SKIP_DEV]
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            if path in _SKIP_DEV:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                found.append((path, st))
    return _device_entries(found, "rwm")[0]


def device_rule(text: str) -> dict[str, Any]:
    """--device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS' (c 1:3 rwm, b 8:* r, a *:* m): an allow rule."""
    parts = text.split()
    if len(parts) != 3 or parts[0] not in ("a", "b", "c") or not set(parts[2]) <= set("rwm") or not parts[2]:
        raise ConfigError(f"--device-cgroup-rule {text!r}: expected 'TYPE MAJOR:MINOR ACCESS' (c 1:3 rwm)")
    major, sep, minor = parts[1].partition(":")
    rule: dict[str, Any] = {"allow": True, "type": parts[0], "access": parts[2]}
    for key, value in (("major", major), ("minor", minor)):
        if value == "*":
            continue
        if not sep or not value.isdigit():
            raise ConfigError(f"--device-cgroup-rule {text!r}: {key} must be a number or *")
        rule[key] = int(value)
    return rule
