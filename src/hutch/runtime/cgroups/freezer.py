"""Pausing and resuming a container: v1's freezer.state or v2's cgroup.freeze, and the wait for the kernel.

Whether a container is frozen is asked on every `state` of a running one: `is_frozen` stays in the package,
so that question imports nothing more; this module is for the commands that freeze or thaw.
"""

from __future__ import annotations

import time

from hutch.errors import HostError
from hutch.runtime.cgroups import freezer_dir, is_frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.runtime.cgroups import Record


def set_frozen(record: Record, frozen: bool) -> None:
    """Ask the kernel to freeze or thaw the container; it may take a while to (see pause)."""
    found = freezer_dir(record)
    if found is None:
        raise HostError("cgroups: the host has no freezer (neither v1's nor cgroup v2)")
    kind, d = found
    from hutch.runtime.cgroups import v1, v2

    if kind == "v1":
        v1.freeze(d, frozen)
    else:
        v2.freeze(d, frozen)


def pause(record: Record, timeout: float = 5.0) -> None:
    """Freeze every process of the container; returns once the kernel says they are frozen."""
    set_frozen(record, True)
    deadline = time.monotonic() + timeout
    kind = (freezer_dir(record) or ("", ""))[0]
    tries = 0
    while not is_frozen(record):
        if time.monotonic() > deadline:
            set_frozen(record, False)
            raise HostError("pause: the container's processes did not freeze; thawed them again")
        tries += 1
        if kind == "v1" and tries % 50 == 0:
            set_frozen(record, True)  # v1 can stall in FREEZING; asking again moves it on
        time.sleep(0.001)


def resume(record: Record, timeout: float = 5.0) -> None:
    """Thaw the container."""
    set_frozen(record, False)
    deadline = time.monotonic() + timeout
    while is_frozen(record, strict=False):
        if time.monotonic() > deadline:
            raise HostError("resume: the container did not thaw")
        time.sleep(0.001)
