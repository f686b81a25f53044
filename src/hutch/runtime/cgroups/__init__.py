"""Control groups of a container: the interface the runtime calls.

PENDING (issue 3): the drivers for v1, v2 and hybrid hosts. Until they land, these calls place no process in a
cgroup and apply no limit; `record` is what `setup` returns and state.json keeps.
"""

from hutch.oci.config import Linux, Resources

Record = dict[str, object]


def setup(container_id: str, linux: Linux, pid: int) -> Record:
    """Create the container's cgroup(s), apply linux.resources, move `pid` in; returns what to remember."""
    return {}


def add(record: Record, pid: int) -> None:
    """Move `pid` (an exec'd process) into the container's cgroup(s)."""


def pids(record: Record) -> list[int]:
    """Every process in the container's cgroup."""
    return []


def destroy(record: Record) -> None:
    """Remove the container's cgroup(s); their processes must be gone."""


def is_frozen(record: Record) -> bool:
    return False


def update(record: Record, resources: Resources) -> None:
    """Apply new limits to a live container."""
