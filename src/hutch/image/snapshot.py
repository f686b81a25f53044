"""Overlay snapshots: a container's rootfs as an overlayfs mount of the image's layers and its own upper dir.

mount(2) takes the options in one string of at most a page, so an image of 100+ layers cannot list every
lower dir there. The new mount API configures the filesystem one key at a time: `lowerdir+` (Linux 6.8)
appends one lower layer per fsconfig call, with no limit but the kernel's layer count (500). On an older
kernel, mount(2) is used (hutch.image.snapshot_legacy).

A `volatile` overlay (Linux 5.10) never syncs its upper dir: not on umount, not on sync(2). A container
that is removed when it exits (--rm) loses nothing by it, as podman mounts those; its umount then no longer
waits for the upper filesystem's journal (tens of ms when the disk is busy). After a crash the kernel
refuses to mount such an upper dir again until work/incompat/volatile is removed (`clear_volatile`).
"""

from __future__ import annotations

import errno
import os

from hutch.errors import HostError
from hutch.linux.mount import (
    FSCONFIG_CMD_CREATE,
    FSCONFIG_SET_FLAG,
    FSCONFIG_SET_STRING,
    MNT_DETACH,
    MOVE_MOUNT_F_EMPTY_PATH,
    fsconfig,
    fsmount,
    fsopen,
    move_mount,
    umount2,
)

_AT_FDCWD = -100


def _fs_log(fd: int) -> str:
    """The messages the kernel left in a filesystem context (e.g. "overlay: failed to resolve ...")."""
    lines = []
    while True:
        try:
            msg = os.read(fd, 1024)
        except OSError:
            break
        if not msg:
            break
        lines.append(msg.decode(errors="replace").strip())
    return "; ".join(lines)


def _mount_new_api(
    lower_dirs: list[str], upper: str | None, work: str | None, target: str, volatile: bool
) -> None:
    fd = fsopen("overlay")
    try:
        try:
            fsconfig(fd, FSCONFIG_SET_STRING, "source", "overlay")
            for lower in lower_dirs:
                fsconfig(fd, FSCONFIG_SET_STRING, "lowerdir+", lower)
            if upper is not None and work is not None:
                fsconfig(fd, FSCONFIG_SET_STRING, "upperdir", upper)
                fsconfig(fd, FSCONFIG_SET_STRING, "workdir", work)
                if volatile:
                    fsconfig(fd, FSCONFIG_SET_FLAG, "volatile")
            fsconfig(fd, FSCONFIG_CMD_CREATE)
        except OSError as e:
            log = _fs_log(fd)
            raise OSError(e.errno, f"{e.strerror}{': ' + log if log else ''}") from None
        mfd = fsmount(fd)
    finally:
        os.close(fd)
    try:
        move_mount(mfd, "", _AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)
    finally:
        os.close(mfd)


def mount_rootfs(
    lower_dirs: list[str],
    upper: str | None,
    work: str | None,
    target: str,
    *,
    legacy: bool = False,
    volatile: bool = False,
) -> None:
    """Mount an overlay of `lower_dirs` (top layer first) with `upper` and `work` on `target`.

    With `upper` and `work` both None the mount is read-only (it then needs at least two lower dirs).
    `legacy` forces the mount(2) path, which kernels before 6.8 take. `volatile`: the upper dir is never
    synced (see above).
    """
    if not lower_dirs:
        raise HostError(f"overlay on {target}: no lower layers")
    if (upper is None) != (work is None):
        raise HostError(f"overlay on {target}: upper and work dirs go together")
    try:
        if not legacy:
            try:
                _mount_new_api(lower_dirs, upper, work, target, volatile)
                return
            except OSError as e:
                # ENOSYS: no new mount API; EINVAL from "lowerdir+": a kernel before 6.8.
                old_kernel = e.errno == errno.EINVAL and "fsconfig(lowerdir+=" in str(e)
                if e.errno != errno.ENOSYS and not old_kernel:
                    raise
        from hutch.image.snapshot_legacy import mount_legacy

        mount_legacy(lower_dirs, upper, work, target, volatile)
    except OSError as e:
        raise HostError(f"overlay on {target} ({len(lower_dirs)} layers): {e.strerror or e}") from None


def clear_volatile(work: str) -> None:
    """Let a volatile overlay's upper dir be mounted again: the kernel refuses while the marker it leaves
    under `work` is there, even after a clean umount (after a crash the upper dir may be incomplete)."""
    marker = os.path.join(work, "work", "incompat", "volatile")
    for path, remove in ((os.path.join(marker, "dirty"), os.unlink), (marker, os.rmdir)):
        try:
            remove(path)
        except FileNotFoundError:
            pass


def unmount(target: str, *, detach: bool = False) -> None:
    """Unmount the overlay on `target`; `detach` for a lazy unmount while something still uses it."""
    try:
        umount2(target, MNT_DETACH if detach else 0)
    except OSError as e:
        raise HostError(f"unmount {target}: {e.strerror or e}") from None
