"""Idmapped mounts: a mount's uidMappings/gidMappings, attached with mount_setattr(MOUNT_ATTR_IDMAP).

The kernel takes the mapping from a user namespace, so a short-lived child makes one, we write the mount's
maps into it, keep an fd to it for mount_setattr, and let the child go. A file owned by `hostID` on disk then
shows as `containerID` through the mount, as runc and crun do.
"""

import os

from hutch.errors import HutchError
from hutch.linux import mount as m
from hutch.linux import ns
from hutch.oci.config import IDMapping, Mount


def apply(tree: int, mnt: Mount, recursive: bool) -> None:
    """Attach the mapping of `mnt` to the detached mount tree `tree` (from open_tree)."""
    if not mnt.uid_mappings or not mnt.gid_mappings:
        raise HutchError(f"mount {mnt.destination}: an idmapped mount needs both uidMappings and gidMappings")
    userns = userns_fd(mnt.uid_mappings, mnt.gid_mappings)
    try:
        flags = m.AT_EMPTY_PATH | (m.AT_RECURSIVE if recursive else 0)
        m.mount_setattr(tree, "", flags, m.MOUNT_ATTR_IDMAP, userns_fd=userns)
    except OSError as e:
        raise HutchError(f"mount {mnt.destination}: cannot idmap it: {e.strerror}") from None
    finally:
        os.close(userns)


def _lines(maps: list[IDMapping]) -> str:
    return "".join(f"{x.container_id} {x.host_id} {x.size}\n" for x in maps)


def userns_fd(uid_maps: list[IDMapping], gid_maps: list[IDMapping]) -> int:
    """An fd of a new user namespace with these maps (its only process has already exited)."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            ns.unshare(ns.CLONE_NEWUSER)
            # Our pid as the mounted /proc knows it: init may be in a new PID namespace, /proc the host's.
            os.write(ready_w, os.readlink("/proc/self").encode())
            os.read(done_r, 1)  # returns at EOF, when the parent is done with us
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        proc_pid = os.read(ready_r, 32).decode()
        if not proc_pid.isdigit():
            raise HutchError("idmapped mount: could not create a user namespace")
        with open(f"/proc/{proc_pid}/uid_map", "w") as f:
            f.write(_lines(uid_maps))
        with open(f"/proc/{proc_pid}/gid_map", "w") as f:
            f.write(_lines(gid_maps))
        return os.open(f"/proc/{proc_pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise HutchError(f"idmapped mount: cannot set up the mapping: {e.strerror}") from None
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)
