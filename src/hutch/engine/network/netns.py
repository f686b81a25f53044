"""A named network namespace per container: an nsfs file bind-mounted under NETNS_DIR, as `ip netns add`
makes them. It outlives every process in it, so CNI plugins can enter it before the container exists and
after it is gone, and the runtime joins it by path. A failed or killed run leaves only the file, which
`remove` takes away (it is idempotent).
"""

from __future__ import annotations

import contextlib
import os

NETNS_DIR = "/run/hutch/netns"


def path(container_id: str) -> str:
    return os.path.join(NETNS_DIR, container_id)


def create(container_id: str) -> str:
    """A new network namespace with `lo` up, pinned at path(container_id); returns that path."""
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    target = path(container_id)
    fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # unshare only in a child: this process keeps the host's network namespace
        os.close(r)
        message = b""
        try:
            from hutch.linux import mount, net, ns

            ns.unshare(ns.CLONE_NEWNET)
            mount.mount("/proc/self/ns/net", target, None, mount.MS_BIND)
            net.link_up("lo")
        except BaseException as e:
            message = str(e).encode() or b"error"
        os.write(w, message)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        error = f.read().decode(errors="replace")
    os.waitpid(child, 0)
    if error:
        remove(container_id)
        from hutch.errors import HostError

        raise HostError(f"network namespace {target}: {error}")
    return target


def remove(container_id: str) -> None:
    """Unmount and delete the namespace's file (the namespace goes with its last user)."""
    from hutch.linux import mount

    target = path(container_id)
    for _ in range(4):  # a file can carry a mount twice after a race; unmount until none is left
        try:
            mount.umount2(target, mount.MNT_DETACH)
        except OSError:
            break
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)


def listed() -> list[str]:
    """The container ids that have a namespace file (for leak checks and cleanup)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []
