"""Linux security modules: process.apparmorProfile and process.selinuxLabel.

Each takes effect at the process's execve (the "exec" attribute of /proc/thread-self/attr). A label asked for
on a host whose kernel does not run that module is an error before anything starts, as runc makes it: a
container must not run unconfined when its spec says otherwise.
"""

from __future__ import annotations

import os

from hutch.errors import ConfigError, HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.oci.config import Process


def apparmor_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists("/sys/fs/selinux/enforce")


def check(proc: Process, source: str) -> None:
    """Refuse labels this host cannot apply."""
    if proc.apparmor_profile and not apparmor_enabled():
        raise ConfigError(
            f"{source}: process.apparmorProfile {proc.apparmor_profile!r}: AppArmor is not enabled on this host"
        )
    if proc.selinux_label and not selinux_enabled():
        raise ConfigError(
            f"{source}: process.selinuxLabel {proc.selinux_label!r}: SELinux is disabled or not supported here"
        )


def apply_on_exec(proc: Process, proc_fd: int = -1) -> None:
    """Set the labels the next execve takes, through our own /proc (`proc_fd`, its root, when given)."""
    if proc.apparmor_profile:
        _write_attr(proc_fd, ("apparmor/exec", "exec"), f"exec {proc.apparmor_profile}", "apparmorProfile")
    if proc.selinux_label:
        _write_attr(proc_fd, ("exec",), proc.selinux_label, "selinuxLabel")


def _write_attr(proc_fd: int, names: tuple[str, ...], value: str, field: str) -> None:
    error: OSError | None = None
    for name in names:
        path = f"thread-self/attr/{name}"
        try:
            if proc_fd >= 0:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC, dir_fd=proc_fd)
            else:
                fd = os.open(f"/proc/{path}", os.O_WRONLY | os.O_CLOEXEC)
        except OSError as e:
            error = e
            continue
        try:
            os.write(fd, value.encode())
            return
        except OSError as e:
            raise HutchError(f"process.{field} {value!r}: the kernel refused it: {e.strerror}") from None
        finally:
            os.close(fd)
    assert error is not None
    raise HutchError(f"process.{field}: cannot set it: {error.strerror}")
