"""Volumes of the engine, as podman's `local` driver keeps them: ROOT/volumes/NAME/_data, a record in the
container db (named, or anonymous: 64 hex digits, made for `-v /DST` and the image's VOLUMEs).

A volume is in use while a container (in any state) has it in its mounts; `rm` refuses it then, unless
forced, which removes those containers first, as podman does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time

from hutch.engine import volumedb
from hutch.engine.volumedb import VolumeRecord
from hutch.errors import ConfigError, ExistsError, HutchError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from hutch.engine.containers import Engine


class NoSuchVolume(NotFoundError):
    """No volume has this name (podman's `no such volume`)."""


class VolumeInUse(HutchError):
    """The volume is mounted by a container (podman volume rm exits 2)."""


def check_name(name: str, where: str) -> None:
    ok = bool(name) and name[0].isalnum() and all(ch.isalnum() or ch in "_.-" for ch in name)
    if not ok:
        raise ConfigError(f"{where}: volume name {name!r} must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")


def directory(engine: Engine, name: str) -> str:
    return os.path.join(engine.root, "volumes", name)


def mountpoint(engine: Engine, name: str) -> str:
    return os.path.join(directory(engine, name), "_data")


def create(
    engine: Engine, name: str = "", labels: dict[str, str] | None = None, *, anonymous: bool = False
) -> VolumeRecord:
    """A new volume (a random 64-hex name when `name` is empty); an existing name is an error."""
    vol, made = ensure(engine, name, labels, anonymous=anonymous)
    if not made:
        raise ExistsError(f"volume with name {name} already exists: volume already exists")
    return vol


def ensure(
    engine: Engine, name: str = "", labels: dict[str, str] | None = None, *, anonymous: bool = False
) -> tuple[VolumeRecord, bool]:
    """The volume `name`, made if missing; and whether this call made it."""
    from hutch import jsonfast

    if not name:
        name = os.urandom(32).hex()  # as secrets.token_hex(32), without its imports (run -v /DST)
    check_name(name, "volume")
    vol = VolumeRecord(name, time.time(), jsonfast.dumps(labels or {}), anonymous, True)
    if not volumedb.add(engine.db, vol):
        existing = volumedb.get(engine.db, name)
        if existing is None:
            raise HutchError(f"volume {name}: it was removed while being made")
        return existing, False
    try:
        os.makedirs(directory(engine, name), 0o700, exist_ok=True)
        os.mkdir(mountpoint(engine, name), 0o755)
    except BaseException:
        shutil.rmtree(directory(engine, name), ignore_errors=True)
        volumedb.remove(engine.db, name)
        raise
    return vol, True


def hold(engine: Engine, exclusive: bool = False) -> int:
    """An fd of ROOT/volumes.lock, flocked: a create holds it shared from taking its volumes until its
    record names them (hutch.engine.mounts), rm and prune exclusive, so neither removes a volume a create
    has taken but not yet recorded. Closing the fd releases it."""
    import fcntl

    path = os.path.join(engine.root, "volumes.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def _exclusive(engine: Engine) -> Iterator[None]:
    fd = hold(engine, exclusive=True)
    try:
        yield
    finally:
        os.close(fd)


def get(engine: Engine, name: str) -> VolumeRecord:
    vol = volumedb.get(engine.db, name)
    if vol is None:
        raise NoSuchVolume(f'no volume with name "{name}" found: no such volume')
    return vol


def users(engine: Engine, name: str) -> list[str]:
    """The ids of the containers that have the volume in their mounts."""
    from hutch import jsonfast

    out = []
    for rec in engine.db.all():
        mounts = jsonfast.loads(rec.config or "{}").get("Mounts") or []
        if any(m.get("Type") == "volume" and m.get("Name") == name for m in mounts):
            out.append(rec.id)
    return out


def remove(engine: Engine, name: str, force: bool = False) -> None:
    """podman volume rm: refused while a container uses it, unless `force` (those containers go first)."""
    from hutch.engine import stopping

    with _exclusive(engine):
        get(engine, name)
        used = users(engine, name)
        if used and not force:
            raise VolumeInUse(
                f"volume {name} is being used by the following container(s): {', '.join(used)}: volume is "
                "being used"
            )
        for cid in used:
            stopping.remove(engine, cid, force=True)
        discard(engine, name)


def discard(engine: Engine, name: str) -> None:
    """The volume's record and directory, gone (no checks)."""
    volumedb.remove(engine.db, name)
    shutil.rmtree(directory(engine, name), ignore_errors=True)


def unused(engine: Engine) -> list[str]:
    """The names of the volumes no container uses."""
    from hutch import jsonfast

    used: set[str] = set()
    for rec in engine.db.all():
        for m in jsonfast.loads(rec.config or "{}").get("Mounts") or []:
            if m.get("Type") == "volume":
                used.add(str(m.get("Name")))
    return [vol.name for vol in volumedb.all(engine.db) if vol.name not in used]


def prune(engine: Engine) -> list[str]:
    """Every volume no container uses, removed; their names."""
    with _exclusive(engine):
        removed = unused(engine)
        for name in removed:
            discard(engine, name)
    return removed


def remove_anonymous(engine: Engine, mounts: list[dict[str, object]]) -> None:
    """The anonymous volumes among a removed container's mounts (`rm -v`, `run --rm`)."""
    for m in mounts:
        if m.get("Type") == "volume" and m.get("Anonymous"):
            name = str(m.get("Name"))
            vol = volumedb.get(engine.db, name)
            if vol is not None and vol.anonymous and not users(engine, name):
                discard(engine, name)


def inspect(engine: Engine, vol: VolumeRecord) -> dict[str, object]:
    """podman's volume inspect document."""
    from hutch import jsonfast
    from hutch.engine.inspect import _go_time

    return {
        "Name": vol.name,
        "Driver": "local",
        "Mountpoint": mountpoint(engine, vol.name),
        "CreatedAt": _go_time(vol.created),
        "Labels": jsonfast.loads(vol.labels),
        "Scope": "local",
        "Options": {},
        "MountCount": 0,
        "NeedsCopyUp": vol.needs_copy,
        "NeedsChown": vol.needs_copy,
        "Anonymous": vol.anonymous,
    }


def copy_up(engine: Engine, vol: VolumeRecord, rootfs: str, destination: str) -> None:
    """A volume's first mount: the image's content at `destination` (resolved inside `rootfs`, so its
    symlinks cannot lead out) copied in, with owners and modes, as podman does; an empty volume takes the
    directory's owner and mode. Under the volume's lock, its record read again: of two creates filling one new
    volume at once, one copies and the other finds it copied (else it saw a half-copied volume as filled,
    or failed on the files the first one made)."""
    if not vol.needs_copy:
        return
    import fcntl

    lock = os.open(directory(engine, vol.name), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        now = volumedb.get(engine.db, vol.name)
        if now is not None and now.needs_copy:
            _fill(engine, vol.name, rootfs, destination)
            volumedb.copied(engine.db, vol.name)
    finally:
        os.close(lock)
    vol.needs_copy = False


def _fill(engine: Engine, name: str, rootfs: str, destination: str) -> None:
    from hutch.runtime import inroot

    data = mountpoint(engine, name)
    rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = inroot.open_path(rootfd, destination, os.O_PATH | os.O_DIRECTORY)
    except OSError:
        fd = -1
    finally:
        os.close(rootfd)
    if fd >= 0:
        try:
            if not os.listdir(data):
                _copy_tree(f"/proc/self/fd/{fd}", data)
        finally:
            os.close(fd)


def _copy_tree(src: str, dst: str) -> None:
    st = os.stat(src)
    for entry in os.scandir(src):
        target = os.path.join(dst, entry.name)
        if entry.is_dir(follow_symlinks=False):
            os.mkdir(target)
            _copy_tree(entry.path, target)
        elif entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_file(follow_symlinks=False):
            shutil.copy2(entry.path, target, follow_symlinks=False)
        else:
            continue  # devices, fifos and sockets are not copied
        est = entry.stat(follow_symlinks=False)
        with contextlib.suppress(OSError):
            os.lchown(target, est.st_uid, est.st_gid)
        if not entry.is_symlink():
            os.chmod(target, est.st_mode & 0o7777)
    os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, st.st_mode & 0o7777)
