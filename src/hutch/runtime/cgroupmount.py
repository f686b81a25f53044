"""The container's /sys/fs/cgroup: each host hierarchy, bound at the container's own cgroup.

Binding is what runc does without a cgroup namespace, and it is also right with one: the bind shows the
container its own subtree and nothing above. It is also fast: mounting v1 hierarchies afresh takes the kernel
a few milliseconds each.
"""

import os

from hutch.linux import mount as m
from hutch.runtime import inroot


def own_hierarchies() -> list[tuple[str, str]]:
    """(mount point, path of our cgroup in it) for each hierarchy mounted under /sys/fs/cgroup, as the host
    sees them.

    Read before the cgroup namespace is unshared (inside it every path is "/"), before pivot_root, and best
    before the runtime moves us: init started ahead reads them while it waits for its container.
    """
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            paths[controllers] = path
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, point = fields[sep + 1], fields[4]
            if not (point == "/sys/fs/cgroup" or point.startswith("/sys/fs/cgroup/")):
                continue
            if fstype == "cgroup2":
                key = ""
            elif fstype == "cgroup":
                opts = set(fields[sep + 3].split(","))
                key = next((k for k in paths if k and set(k.split(",")) <= opts), "")
                if not key:
                    continue
            else:
                continue
            if key in paths:
                out.append((point, paths[key]))
    return out


def _source(point: str, path: str, dirs: list[str]) -> str:
    """The directory to bind for the hierarchy at `point`: the container's own there (one of `dirs`, which
    the runtime made), else our cgroup in it (`path`, as /proc/self/cgroup names it)."""
    for d in dirs:
        if d == point or d.startswith(point + "/"):
            return d
    return point + path


def mount(rootfd: int, destination: str, flags: int, own: list[tuple[str, str]], dirs: list[str]) -> None:
    """The cgroup mount at `destination`: `own` are our hierarchies (own_hierarchies) before the runtime moves
    us into `dirs`.

    Binding `dirs` needs not wait for the move (an RCU grace period): init mounts them meanwhile.
    """
    hierarchies = [(point, _source(point, path, dirs)) for point, path in own]
    ro = m.MOUNT_ATTR_RDONLY if flags & m.MS_RDONLY else 0
    # The hierarchies keep the mount's nosuid, nodev and noexec too, as under runc.
    attrs = ro
    for flag, attr in (
        (m.MS_NOSUID, m.MOUNT_ATTR_NOSUID),
        (m.MS_NODEV, m.MOUNT_ATTR_NODEV),
        (m.MS_NOEXEC, m.MOUNT_ATTR_NOEXEC),
    ):
        if flags & flag:
            attrs |= attr
    unified = [h for h in hierarchies if h[0] == "/sys/fs/cgroup"]
    if unified:
        target = inroot.make(rootfd, destination, is_dir=True)
        try:
            _bind(unified[0][1], target, attrs)
        finally:
            os.close(target)
        return
    base = flags & (m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC)
    fd = inroot.make(rootfd, destination, is_dir=True)
    try:
        m.mount("tmpfs", inroot.fd_path(fd), "tmpfs", base, "mode=755")
    finally:
        os.close(fd)
    # The tmpfs is new and ours alone: a hierarchy's mount point is made and its bind moved there by name
    # from the tmpfs's root, not resolved afresh in the rootfs (three openat2 each, ten hierarchies on a
    # hybrid host), and one recursive mount_setattr at the end gives the tmpfs and every bind the attributes.
    top = inroot.open_path(rootfd, destination, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for point, source in hierarchies:
            name = point[len("/sys/fs/cgroup/") :]
            os.mkdir(name, 0o755, dir_fd=top)
            tree = m.open_tree(-100, source, m.OPEN_TREE_CLONE | m.OPEN_TREE_CLOEXEC)
            try:
                m.move_mount(tree, "", top, name, m.MOVE_MOUNT_F_EMPTY_PATH)
            finally:
                os.close(tree)
            if "," in name:  # cpu,cpuacct is also reachable as cpu and cpuacct, as on the host
                for part in name.split(","):
                    try:
                        os.symlink(name, part, dir_fd=top)
                    except FileExistsError:
                        pass
        if attrs:
            m.mount_setattr(top, "", m.AT_EMPTY_PATH | m.AT_RECURSIVE, attrs)
    finally:
        os.close(top)


def _bind(source: str, target: int, attrs: int) -> None:
    """A bind of the host directory `source` (with mount attributes `attrs`) on the directory fd `target`."""
    tree = m.open_tree(-100, source, m.OPEN_TREE_CLONE | m.OPEN_TREE_CLOEXEC)
    try:
        if attrs:
            m.mount_setattr(tree, "", m.AT_EMPTY_PATH, attrs)
        m.move_mount(tree, "", target, "", m.MOVE_MOUNT_F_EMPTY_PATH | m.MOVE_MOUNT_T_EMPTY_PATH)
    finally:
        os.close(tree)
