"""Reading and writing cgroupfs files, with errors that name the linux.resources field they were for."""

from __future__ import annotations

import errno
import os

from hutch.errors import HostError

PREFIX = "linux.resources."


def field_error(field: str, message: str) -> HostError:
    """An error about `field` (a path below linux.resources, or a full path starting with "linux.")."""
    where = field if field.startswith("linux.") else PREFIX + field
    return HostError(f"{where}: {message}")


def write(directory: str, name: str, value: str, field: str) -> None:
    """Write `value` to the cgroup file; a failure names the field, the file and the kernel's reason."""
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except FileNotFoundError:
        raise field_error(field, f"this host has no {name} in {directory}") from None
    except OSError as e:
        raise field_error(field, f"cannot open {path}: {e.strerror}") from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise field_error(field, f"the kernel refused {value!r} for {path}: {e.strerror}") from e
    finally:
        os.close(fd)


def write_raw(directory: str, name: str, value: str) -> None:
    """Write `value` to the cgroup file; an OSError is the caller's to explain."""
    fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read(directory: str, name: str) -> str:
    with open(os.path.join(directory, name)) as f:
        return f.read().strip()


def read_or(directory: str, name: str, default: str = "") -> str:
    try:
        return read(directory, name)
    except OSError:
        return default


def read_int(directory: str, name: str, default: int = 0) -> int:
    """An integer file; "max" reads as -1, a missing or unreadable file as `default`."""
    text = read_or(directory, name)
    if text == "max":
        return -1
    try:
        return int(text.split()[0]) if text else default
    except ValueError:
        return default


def read_keyed(directory: str, name: str) -> dict[str, int]:
    """A flat keyed file ("key value" per line), as memory.stat, cpu.stat, memory.events."""
    out: dict[str, int] = {}
    for line in read_or(directory, name).splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def exists(directory: str, name: str) -> bool:
    return os.path.exists(os.path.join(directory, name))


def is_busy(e: BaseException) -> bool:
    cause = e.__cause__ if isinstance(e, HostError) else e
    return isinstance(cause, OSError) and cause.errno == errno.EBUSY


def procs(directory: str) -> list[int]:
    """Processes in this cgroup and every cgroup below it (a container may make its own sub-cgroups)."""
    out: list[int] = []
    for dirpath, _dirs, _files in os.walk(directory):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                out.extend(int(p) for p in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
        except OSError:
            continue
    return out


def subtree(directory: str) -> list[str]:
    """This cgroup and every cgroup below it, deepest first (the order they can be removed in)."""
    found = [dirpath for dirpath, _dirs, _files in os.walk(directory)]
    return sorted(found, key=lambda p: p.count("/"), reverse=True)
