"""A container's runtime state: its directory under the state root, state.json, and its live status.

hutch.jsonfast is imported where a state file is read or written: an init started ahead imports this module,
and loads no shared object for JSON.
"""

import os

from hutch.errors import ExistsError, HutchError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field

DEFAULT_ROOT = "/run/hutch/runtime"
# The cgroup record of a create under way (Container.save_creating), until state.json is written.
CREATING = "creating.json"
_ID_EXTRA = set("_+-.")


def validate_id(container_id: str) -> None:
    if (
        not container_id
        or container_id in (".", "..")
        or not all(ch.isalnum() or ch in _ID_EXTRA for ch in container_id)
    ):
        raise HutchError(f"invalid container id {container_id!r}: use letters, digits, '_', '+', '-' and '.'")


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None when there is no such process.

    Kept with the pid so a recycled pid is never mistaken for the container's init.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":
        return None
    return int(fields[19])


@dataclass(slots=True)
class Container:
    """What the runtime remembers of a container between commands."""

    id: str
    root: str
    bundle: str = ""
    rootfs: str = ""
    pid: int = 0
    start_time: int = 0
    created: str = ""
    owner: str = "root"
    annotations: dict[str, str] = field(default_factory=dict)
    # Namespace paths the container joined at create time, reused by exec for shared ones.
    config: dict[str, object] = field(default_factory=dict)
    # What the cgroup driver needs to find the container's cgroups again.
    cgroup: dict[str, object] = field(default_factory=dict)

    @property
    def dir(self) -> str:
        return os.path.join(self.root, self.id)

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, "exec.fifo")

    def status(self) -> str:
        if self.pid <= 0:
            return "creating"
        if process_start_time(self.pid) != self.start_time:
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        from hutch.runtime import cgroups

        return "paused" if cgroups.is_frozen(self.cgroup) else "running"

    def is_alive(self) -> bool:
        return self.pid > 0 and process_start_time(self.pid) == self.start_time

    def state_text(self) -> str:
        """What state.json says (save writes it)."""
        doc = {
            "id": self.id,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "pid": self.pid,
            "start_time": self.start_time,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations,
            "config": self.config,
            "cgroup": self.cgroup,
        }
        from hutch.jsonfast import dumps

        return dumps(doc)

    def save(self, text: str) -> None:
        """Write state.json, whose `text` state_text() made (create makes it while init finishes)."""
        path = os.path.join(self.dir, "state.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)  # tmpfs: atomic rename is enough, fsync buys nothing
        try:
            os.unlink(os.path.join(self.dir, CREATING))
        except FileNotFoundError:
            pass

    def save_creating(self) -> None:
        """Record the cgroups of a create under way, before any process joins them, so that `delete --force`
        finds those a killed runtime left (lifecycle.delete_leftover), and runs the poststop hooks if the
        config has any (the whole state then). A file of its own, not state.json: create then writes
        state.json once, as runc does (on ext4 a second write, a rename over the first, flushes the new file at
        once, whose blocks delete must then free), and `state` and `list` know the container once created."""
        from hutch.jsonfast import dumps

        hooks = self.config.get("hooks")
        poststop = isinstance(hooks, dict) and bool(hooks.get("poststop"))
        with open(os.path.join(self.dir, CREATING), "w") as f:
            f.write(self.state_text() if poststop else dumps({"cgroup": self.cgroup}))

    def state_doc(self, oci_version: str) -> dict[str, object]:
        """The OCI state document, with runc's extra keys."""
        status = self.status()
        return {
            "ociVersion": oci_version,
            "id": self.id,
            "pid": self.pid if status != "stopped" else 0,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "annotations": self.annotations,
            "owner": self.owner,
        }


def load(root: str, container_id: str) -> Container:
    from hutch.jsonfast import loads

    validate_id(container_id)
    path = os.path.join(root, container_id, "state.json")
    try:
        with open(path) as f:
            doc = loads(f.read())
    except FileNotFoundError:
        raise NotFoundError(f"container {container_id!r} does not exist (no {path})") from None
    except ValueError as e:
        raise HutchError(f"{path}: corrupt state: {e}") from None
    return _from_doc(root, doc)


def load_creating(root: str, container_id: str) -> Container | None:
    """The container a create that did not finish left (creating.json, Container.save_creating): its cgroups,
    and all of its state when its config has poststop hooks. None without a readable record."""
    from hutch.jsonfast import loads

    try:
        with open(os.path.join(root, container_id, CREATING)) as f:
            doc = loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("cgroup"), dict):
        return None
    return _from_doc(root, {"id": container_id, **doc})


def _from_doc(root: str, doc: dict) -> Container:
    return Container(
        id=doc["id"],
        root=root,
        bundle=doc.get("bundle", ""),
        rootfs=doc.get("rootfs", ""),
        pid=doc.get("pid", 0),
        start_time=doc.get("start_time", 0),
        created=doc.get("created", ""),
        owner=doc.get("owner", "root"),
        annotations=doc.get("annotations", {}),
        config=doc.get("config", {}),
        cgroup=doc.get("cgroup", {}),
    )


def make_dir(root: str, container_id: str) -> str:
    """Create the container's state dir; fails if it exists."""
    validate_id(container_id)
    os.makedirs(root, mode=0o711, exist_ok=True)
    path = os.path.join(root, container_id)
    try:
        os.mkdir(path, 0o711)
    except FileExistsError:
        raise ExistsError(f"container {container_id!r} already exists (in {root})") from None
    return path


def remove_state(state_dir: str) -> None:
    """Remove a container's state dir and what the runtime puts in it."""
    for name in ("exec.fifo", "state.json", "state.json.tmp", CREATING):
        try:
            os.unlink(os.path.join(state_dir, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(state_dir)
    except FileNotFoundError:
        pass


def list_ids(root: str) -> list[str]:
    try:
        return sorted(e for e in os.listdir(root) if os.path.exists(os.path.join(root, e, "state.json")))
    except FileNotFoundError:
        return []
