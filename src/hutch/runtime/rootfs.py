"""The container's filesystem: spec mounts, /dev, pivot_root, masked and read-only paths.

Runs in the container's init, inside its new mount namespace, before it execs the user process.
"""

from __future__ import annotations

import errno
import os
import stat

from hutch.errors import ConfigError, HutchError
from hutch.linux import mount as m
from hutch.linux.fs import (
    O_PATH,
    RESOLVE_BENEATH,
    RESOLVE_IN_ROOT,
    RESOLVE_NO_MAGICLINKS,
    RESOLVE_NO_SYMLINKS,
    openat2,
)
from hutch.oci.config import Device, Mount, Spec
from hutch.runtime import cgroupmount, inroot, mountopts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_DEVICES = [
    # path, major, minor
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
]
DEV_LINKS = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
]


def prepare(spec: Spec, rootfs: str) -> None:
    """Set root propagation and make the rootfs a mount point of its own (pivot_root needs one)."""
    assert spec.linux is not None
    prop = spec.linux.rootfs_propagation
    # An unbindable root could not be bound onto itself below: finish() applies that after pivot_root.
    flag = mountopts.PROPAGATION[prop] if prop and "unbindable" not in prop else m.MS_SLAVE | m.MS_REC
    m.mount(None, "/", None, flag)
    if flag not in (m.MS_SLAVE | m.MS_REC, m.MS_PRIVATE | m.MS_REC):  # after those no mount is shared
        _make_parent_private(rootfs)
    m.mount(rootfs, rootfs, None, m.MS_BIND | m.MS_REC)


def _make_parent_private(rootfs: str) -> None:
    """pivot_root refuses a new root whose parent mount is shared; make that mount private."""
    best = ""
    shared = False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            if (rootfs == point or rootfs.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best = point
                shared = any(o.startswith("shared:") for o in fields[6 : fields.index("-")])
    if best and shared:
        m.mount(None, best, None, m.MS_PRIVATE)


def mount_all(
    spec: Spec,
    rootfs: str,
    bundle: str,
    in_userns: bool,
    cgroups: Callable[[], tuple[list[tuple[str, str]], list[str]]],
    trees: dict[int, int] | None = None,
) -> dict[str, int]:
    """Mount spec.mounts in the rootfs; `trees` holds bind mounts already made (detached_binds), by index.

    `cgroups` gives our cgroup hierarchies and the container's cgroup directories (cgroupmount.mount); it is
    called at the first cgroup mount, and waits until the runtime has made those directories.

    Returns O_PATH fds of the roots of the proc and sysfs mounts, by destination (the last one for each):
    finish() and init reach /proc and /sys through them, never by path, as a process that can rename
    entries of the rootfs (another container sharing it, a hook) could move the real ones aside.
    """
    kernel_fs: dict[str, int] = {}
    rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, mnt in enumerate(spec.mounts):
            cgroup = cgroups() if mnt.type == "cgroup" else ([], [])
            try:
                handle = _mount_one(rootfd, mnt, bundle, cgroup, (trees or {}).get(i))
            except OSError as e:
                raise HutchError(
                    f"mounts[{i}] ({mnt.type or 'bind'} on {mnt.destination}): {e.strerror}"
                ) from None
            if handle is not None:
                old = kernel_fs.pop(os.path.normpath(mnt.destination), None)
                if old is not None:
                    os.close(old)
                kernel_fs[os.path.normpath(mnt.destination)] = handle
        if _dev_is_ours(spec):
            assert spec.linux is not None
            make_devices(rootfd, spec.linux.devices, in_userns)
    except BaseException:
        for fd in kernel_fs.values():
            os.close(fd)
        raise
    finally:
        os.close(rootfd)
    return kernel_fs


def _mount_one(
    rootfd: int,
    mnt: Mount,
    bundle: str,
    cgroup: tuple[list[tuple[str, str]], list[str]],
    tree: int | None = None,
) -> int | None:
    """Mount `mnt`; for proc and sysfs, returns an O_PATH fd of the new mount's root."""
    opts = mountopts.parse(mnt.options)
    if mnt.type == "bind" or opts.is_bind:
        _bind(rootfd, mnt, opts, bundle, tree)
        return None
    if mnt.type == "cgroup":
        cgroupmount.mount(rootfd, mnt.destination, opts.flags, *cgroup)
        _after_mount(rootfd, mnt.destination, opts)
        return None
    if mnt.type in ("proc", "sysfs"):
        return _mount_kernel_fs(rootfd, mnt, opts)
    fd = inroot.make(rootfd, mnt.destination, is_dir=True)
    try:
        data = ",".join(opts.data) or None
        m.mount(mnt.source or mnt.type, inroot.fd_path(fd), mnt.type, opts.flags & ~m.MS_REMOUNT, data)
        if opts.copy_up and mnt.type == "tmpfs":
            _copy_up(fd, rootfd, mnt.destination, keep_mode=not any(d.startswith("mode=") for d in opts.data))
    finally:
        os.close(fd)
    _after_mount(rootfd, mnt.destination, opts)
    return None


def _mount_kernel_fs(rootfd: int, mnt: Mount, opts: mountopts.MountOptions) -> int:
    """Mount proc or sysfs with the new mount API and return the fd of the mount (its root, O_PATH).

    The fd stays on this mount whatever happens to the name it is attached at: mount(2) would leave only
    the covered directory in hand, and reopening the destination by name could open a decoy put there."""
    _refuse_symlinks(rootfd, mnt)
    # literal: a symlink swapped in after that check is refused too, not followed (CVE-2019-19921)
    fd = inroot.make(rootfd, mnt.destination, is_dir=True, literal=True)
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise HutchError(f"{mnt.type} must be mounted on a directory, {mnt.destination} is not one")
        tree = _new_mount(mnt.type, mnt.source or mnt.type, opts)
        try:
            m.move_mount(tree, "", fd, "", m.MOVE_MOUNT_F_EMPTY_PATH | m.MOVE_MOUNT_T_EMPTY_PATH)
            _after_mount(rootfd, mnt.destination, opts, tree)
        except BaseException:
            os.close(tree)
            raise
    finally:
        os.close(fd)
    return tree


# mount(2) flags that belong to the superblock, as fsconfig(2) names them
_SB_FLAGS = [
    (m.MS_RDONLY, "ro"),
    (m.MS_SYNCHRONOUS, "sync"),
    (m.MS_DIRSYNC, "dirsync"),
    (m.MS_LAZYTIME, "lazytime"),
    (m.MS_MANDLOCK, "mand"),
]


def _new_mount(fstype: str, source: str, opts: mountopts.MountOptions) -> int:
    """A new, detached mount of a fresh `fstype`, configured as mount(2) would from the same options."""
    fs = m.fsopen(fstype)
    try:
        m.fsconfig(fs, m.FSCONFIG_SET_STRING, "source", source)
        for flag, key in _SB_FLAGS:
            if opts.flags & flag:
                m.fsconfig(fs, m.FSCONFIG_SET_FLAG, key)
        for item in opts.data:
            key, eq, value = item.partition("=")
            if eq:
                m.fsconfig(fs, m.FSCONFIG_SET_STRING, key, value)
            else:
                m.fsconfig(fs, m.FSCONFIG_SET_FLAG, key)
        m.fsconfig(fs, m.FSCONFIG_CMD_CREATE)
        return m.fsmount(fs, m.FSMOUNT_CLOEXEC, opts.bind_attrs()[0])
    finally:
        os.close(fs)


def _copy_up(under: int, rootfd: int, destination: str, keep_mode: bool) -> None:
    """`tmpcopyup` (podman sets it on --tmpfs and --read-only mounts): the tmpfs just mounted on
    `destination` gets the contents, owners and modes of the directory it covers, which `under` still opens;
    as with runc, its root takes that directory's mode unless the options gave one."""
    src = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=under)
    try:
        dst = inroot.open_path(rootfd, destination, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if keep_mode:
                os.fchmod(dst, stat.S_IMODE(os.fstat(src).st_mode))
            _copy_tree(src, dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_tree(src: int, dst: int) -> None:
    """Copy the entries of directory fd `src` into directory fd `dst`, never following a symlink."""
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    with os.scandir(src) as entries:
        for entry in entries:
            name, st = entry.name, entry.stat(follow_symlinks=False)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(name, 0o700, dir_fd=dst)
                sub_src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=src)
                try:
                    sub_dst = os.open(name, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=dst)
                    try:
                        _copy_tree(sub_src, sub_dst)
                    finally:
                        os.close(sub_dst)
                finally:
                    os.close(sub_src)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            elif stat.S_ISREG(st.st_mode):
                fin = os.open(name, os.O_RDONLY | nofollow, dir_fd=src)
                try:
                    fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600, dir_fd=dst)
                    try:
                        while os.sendfile(fout, fin, None, 1 << 20):
                            pass
                    finally:
                        os.close(fout)
                finally:
                    os.close(fin)
            elif stat.S_ISSOCK(st.st_mode):
                continue  # a socket is only a name without its listener
            else:
                os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(name, mode, dir_fd=dst)  # after chown, which clears set-id bits
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def _refuse_symlinks(rootfd: int, mnt: Mount) -> None:
    """proc and sysfs go exactly where the spec says: an image whose /proc is a symlink would otherwise move
    them, and the masked and read-only paths with them (CVE-2019-16884, CVE-2023-27561, CVE-2023-28642)."""
    try:
        os.close(
            openat2(rootfd, mnt.destination, O_PATH | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)
        )
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise HutchError(
                f"{mnt.type} cannot be mounted on {mnt.destination}: it is a symlink in the rootfs"
            ) from None
        raise


def _after_mount(
    rootfd: int, destination: str, opts: mountopts.MountOptions, mount_fd: int | None = None
) -> None:
    """Propagation and recursive attributes apply to the new mount, so reopen its root first (unless
    `mount_fd` is that root already)."""
    if not opts.propagation and not (opts.rec_set or opts.rec_clr):
        return
    fd = inroot.open_path(rootfd, destination) if mount_fd is None else os.dup(mount_fd)
    try:
        for prop in opts.propagation:
            m.mount(None, inroot.fd_path(fd), None, prop)
        if opts.rec_set or opts.rec_clr:
            m.mount_setattr(fd, "", m.AT_EMPTY_PATH | m.AT_RECURSIVE, opts.rec_set, opts.rec_clr)
    finally:
        os.close(fd)


def detached_binds(spec: Spec, bundle: str) -> dict[int, int]:
    """The idmapped bind mounts of `spec`, made ready to attach, by index in spec.mounts.

    Called in the host's user namespace, before the container's: only there may the runtime idmap (or set
    attributes on) a clone of a host mount, as runc does in its parent process. The fds are O_CLOEXEC.
    """
    trees: dict[int, int] = {}
    try:
        for i, mnt in enumerate(spec.mounts):
            opts = mountopts.parse(mnt.options)
            idmapped = opts.idmap or mnt.uid_mappings or mnt.gid_mappings
            if idmapped and (mnt.type == "bind" or opts.is_bind):
                try:
                    trees[i] = _bind_tree(mnt, opts, bundle)
                except OSError as e:
                    raise HutchError(f"mounts[{i}] (bind on {mnt.destination}): {e.strerror}") from None
    except BaseException:
        for fd in trees.values():
            os.close(fd)
        raise
    return trees


def _bind_tree(mnt: Mount, opts: mountopts.MountOptions, bundle: str) -> int:
    """A detached clone of the source tree with the mount's attributes (and idmapping) set."""
    source = mnt.source or ""
    if not source:
        raise ConfigError(f"config.json: mount {mnt.destination}: a bind mount needs a source")
    if not os.path.isabs(source):
        source = os.path.join(bundle, source)
    recursive = bool(opts.flags & m.MS_REC)
    flags = m.OPEN_TREE_CLONE | m.OPEN_TREE_CLOEXEC | (m.AT_RECURSIVE if recursive else 0)
    tree = m.open_tree(-100, source, flags)  # AT_FDCWD
    try:
        attr_set, attr_clr = opts.bind_attrs()
        if attr_set or attr_clr:
            m.mount_setattr(tree, "", m.AT_EMPTY_PATH, attr_set, attr_clr)
        if opts.rec_set or opts.rec_clr:
            m.mount_setattr(tree, "", m.AT_EMPTY_PATH | m.AT_RECURSIVE, opts.rec_set, opts.rec_clr)
        if opts.idmap or mnt.uid_mappings or mnt.gid_mappings:
            from hutch.runtime import idmap

            idmap.apply(tree, mnt, recursive=opts.recursive_idmap or recursive)
    except BaseException:
        os.close(tree)
        raise
    return tree


def _bind(
    rootfd: int, mnt: Mount, opts: mountopts.MountOptions, bundle: str, tree: int | None = None
) -> None:
    """Clone the source tree, set its attributes while it is detached, then attach it in one step.

    `tree` is such a clone made earlier (detached_binds); it is closed here."""
    if tree is None:
        tree = _bind_tree(mnt, opts, bundle)
    try:
        is_dir = stat.S_ISDIR(os.fstat(tree).st_mode)
        target = inroot.make(rootfd, mnt.destination, is_dir=is_dir)
        try:
            m.move_mount(tree, "", target, "", m.MOVE_MOUNT_F_EMPTY_PATH | m.MOVE_MOUNT_T_EMPTY_PATH)
        finally:
            os.close(target)
        for prop in opts.propagation:
            m.mount(None, inroot.fd_path(tree), None, prop)
    finally:
        os.close(tree)


def _dev_is_ours(spec: Spec) -> bool:
    """Devices are made only when /dev is a fresh mount, not a bind of the host's /dev."""
    for mnt in spec.mounts:
        if os.path.normpath(mnt.destination) == "/dev":
            return not (mnt.type == "bind" or "bind" in mnt.options or "rbind" in mnt.options)
    return False


def make_devices(rootfd: int, devices: list[Device], in_userns: bool) -> None:
    nodes = [
        (path, "c", major, minor, 0o666, 0, 0)
        for path, major, minor in DEFAULT_DEVICES
        if not any(d.path == path for d in devices)
    ]
    for d in devices:
        mode = d.file_mode if d.file_mode is not None else 0o666
        nodes.append((d.path, d.type, d.major or 0, d.minor or 0, mode, d.uid or 0, d.gid or 0))
    dirs: dict[str, int] = {}  # each parent directory opened once

    def opened(path: str) -> int:
        if path not in dirs:
            dirs[path] = _open_dir(rootfd, path)
        return dirs[path]

    umask = os.umask(0)  # mknod's mode as asked: no chmod after it
    try:
        for path, kind, major, minor, mode, uid, gid in nodes:
            parent, name = os.path.split(os.path.normpath(path))
            _make_device(opened(parent), path, name, kind, major, minor, mode, uid, gid, in_userns)
        devdir = opened("/dev")
        for target, name in [
            *DEV_LINKS,
            *([("/proc/kcore", "core")] if os.path.exists("/proc/kcore") else []),
        ]:
            try:
                os.symlink(target, name, dir_fd=devdir)
            except FileExistsError:
                pass
        # /dev/ptmx must be the container's own devpts instance, not the host's.
        try:
            os.unlink("ptmx", dir_fd=devdir)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=devdir)
    finally:
        os.umask(umask)
        for fd in dirs.values():
            os.close(fd)


def _open_dir(rootfd: int, path: str) -> int:
    """The directory `path` of the rootfs, made if missing, opened for *at calls."""
    fd = inroot.make(rootfd, path, is_dir=True)
    try:
        return os.open(inroot.fd_path(fd), os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.close(fd)


_DEV_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _make_device(
    dirfd: int,
    path: str,
    name: str,
    kind: str,
    major: int,
    minor: int,
    mode: int,
    uid: int,
    gid: int,
    in_userns: bool,
) -> None:
    """The node `path` as `name` in its parent `dirfd` (made by make_devices, with a umask of 0)."""
    if in_userns:
        # mknod is not allowed in a user namespace: bind the host's node instead, as runc does.
        try:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=dirfd))
        except FileExistsError:
            return
        tree = m.open_tree(-100, path, m.OPEN_TREE_CLONE | m.OPEN_TREE_CLOEXEC)
        target = os.open(name, O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=dirfd)
        try:
            m.move_mount(tree, "", target, "", m.MOVE_MOUNT_F_EMPTY_PATH | m.MOVE_MOUNT_T_EMPTY_PATH)
        finally:
            os.close(target)
            os.close(tree)
        return
    try:
        os.mknod(name, _DEV_TYPES[kind] | (mode & 0o7777), os.makedev(major, minor), dir_fd=dirfd)
    except FileExistsError:
        return
    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    if (st.st_uid, st.st_gid) != (uid, gid):  # a set-group-id directory gives its group
        os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
        _fchmod_at(dirfd, name, mode)  # a chown drops the set-id bits
    elif stat.S_IMODE(st.st_mode) != mode & 0o7777:
        _fchmod_at(dirfd, name, mode)  # a default ACL of the directory applies instead of the umask


def _fchmod_at(dirfd: int, name: str, mode: int) -> None:
    """Set `mode` exactly (after a chown, or where a default ACL filtered mknod's), without following a link."""
    fd = os.open(name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        os.chmod(inroot.fd_path(fd), mode & 0o7777)
    finally:
        os.close(fd)


def pivot(rootfs: str, no_pivot: bool) -> None:
    """Make the rootfs the root of the mount namespace and drop every view of the host's."""
    if no_pivot:
        os.chdir(rootfs)
        m.mount(rootfs, "/", None, m.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
        return
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        m.pivot_root(".", ".")
        os.fchdir(old)
        # Our slave copy of the old root must not propagate the unmount back to the host.
        m.mount(None, ".", None, m.MS_SLAVE | m.MS_REC)
        m.umount2(".", m.MNT_DETACH)
    finally:
        os.close(old)
        os.close(new)
    os.chdir("/")


def finish(spec: Spec, kernel_fs: dict[str, int]) -> None:
    """After pivot_root: read-only and masked paths, root propagation, read-only root.

    A path in a proc or sysfs that mount_all made is opened below that mount's root (`kernel_fs`, from
    mount_all), not looked up from `/`: were the real /proc renamed meanwhile, a path would find a decoy
    and leave the real /proc/sys writable (CVE-2019-19921, by a racer that can rename in the rootfs)."""
    assert spec.linux is not None
    for path in spec.linux.readonly_paths:
        fd = _open_target("linux.readonlyPaths", path, kernel_fs)
        if fd is not None:
            try:
                _readonly(fd)
            finally:
                os.close(fd)
    null: list[int] = []  # the container's /dev/null, opened and checked when a file is first masked
    try:
        for path in spec.linux.masked_paths:
            fd = _open_target("linux.maskedPaths", path, kernel_fs)
            if fd is not None:
                try:
                    _mask(fd, null)
                finally:
                    os.close(fd)
    finally:
        for fd in null:
            os.close(fd)
    prop = spec.linux.rootfs_propagation
    if prop:
        m.mount(None, "/", None, mountopts.PROPAGATION[prop])
    if spec.root is not None and spec.root.readonly:
        m.mount_setattr(-100, "/", 0, m.MOUNT_ATTR_RDONLY)


def _open_target(field: str, path: str, kernel_fs: dict[str, int]) -> int | None:
    """An O_PATH fd of `path` in the container, or None if it does not exist. Below a proc or sysfs of
    ours, it is resolved from that mount's root and may not leave it (their own relative symlinks, such as
    /proc/net, are followed; magic links are not)."""
    path = os.path.normpath(path)
    best = ""
    for dest in kernel_fs:
        if (path == dest or path.startswith(dest.rstrip("/") + "/")) and len(dest) > len(best):
            best = dest
    try:
        if best:
            rest = path[len(best) :].lstrip("/") or "."
            flags = O_PATH | os.O_CLOEXEC
            return openat2(kernel_fs[best], rest, flags, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
        return os.open(path, O_PATH | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise HutchError(f"{field}: cannot open {path}: {os.strerror(e.errno) if e.errno else e}") from None


def _readonly(fd: int) -> None:
    flags = m.OPEN_TREE_CLONE | m.OPEN_TREE_CLOEXEC | m.AT_RECURSIVE | m.AT_EMPTY_PATH
    tree = m.open_tree(fd, "", flags)
    try:
        m.mount_setattr(tree, "", m.AT_EMPTY_PATH | m.AT_RECURSIVE, m.MOUNT_ATTR_RDONLY)
        m.move_mount(tree, "", fd, "", m.MOVE_MOUNT_F_EMPTY_PATH | m.MOVE_MOUNT_T_EMPTY_PATH)
    finally:
        os.close(tree)


def _mask(fd: int, null: list[int]) -> None:
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        tree = _new_mount("tmpfs", "tmpfs", mountopts.MountOptions(flags=m.MS_RDONLY))
    else:
        if not null:
            null.append(_open_null())
        # Bind the checked fd, not the path "/dev/null": a path could have been changed since.
        tree = m.open_tree(null[0], "", m.OPEN_TREE_CLONE | m.OPEN_TREE_CLOEXEC | m.AT_EMPTY_PATH)
    try:
        m.move_mount(tree, "", fd, "", m.MOVE_MOUNT_F_EMPTY_PATH | m.MOVE_MOUNT_T_EMPTY_PATH)
    finally:
        os.close(tree)


def _open_null() -> int:
    """The container's /dev/null, which must be the null device (1:3). When /dev comes from the image (or a
    volume), it could be a symlink to any file, which masking would then put over the masked paths:
    /proc/sys/kernel/core_pattern, say, to make it writable (CVE-2025-31133)."""
    try:
        fd = os.open("/dev/null", O_PATH | os.O_CLOEXEC)
    except OSError as e:
        raise HutchError(f"linux.maskedPaths: cannot open /dev/null in the container: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise HutchError(
            "linux.maskedPaths: /dev/null in the container is not the null device (character 1:3);"
            " refusing to mask paths with it"
        )
    return fd
