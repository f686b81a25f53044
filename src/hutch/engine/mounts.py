"""The mounts of `run`/`create`, as podman reads them: -v/--volume, --mount, --tmpfs, the image's VOLUMEs and
--read-only's tmpfs mounts; parsed at the edge (hutch.engine.mountflags) into MountSpecs, then resolved at
create (hutch.engine.mountresolve) into OCI mounts (binds of host dirs and of volumes' _data, tmpfs), volumes
made and filled from the image as needed."""

from __future__ import annotations

import os

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.spec import Options
    from hutch.oci.image import ContainerConfig
else:
    from hutch.record import dataclass, field

PROPAGATIONS = ("shared", "slave", "private", "rshared", "rslave", "rprivate", "unbindable", "runbindable")
# --read-only's tmpfs mounts (podman's --read-only-tmpfs, on by default).
READ_ONLY_TMPFS = ("/run", "/tmp", "/var/tmp")


@dataclass(slots=True)
class MountSpec:
    """One mount asked for by a flag: a bind of a host path, a volume (named, or anonymous when `source`
    is empty), or a tmpfs. `options` are OCI mount options (ro, propagation, nosuid, size=...)."""

    type: str  # bind, volume, tmpfs
    destination: str
    source: str = ""
    options: list[str] = field(default_factory=list)
    chown: bool = False  # U: the source takes the container user's uid and gid
    flag: str = ""  # the flag and its text, for errors


def check_unique(specs: list[MountSpec]) -> None:
    seen: dict[str, str] = {}
    for s in specs:
        if s.destination in seen:
            raise ConfigError(
                f"{s.flag}: duplicate mount destination {s.destination} (also {seen[s.destination]})"
            )
        seen[s.destination] = s.flag


@dataclass(slots=True)
class Resolved:
    """The OCI mounts of a create, and what inspect shows of them (podman's Mounts entries)."""

    mounts: list[dict[str, Any]] = field(default_factory=list)
    inspect: list[dict[str, Any]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # volumes this create made (removed if it fails)
    lock: int = -1  # the volumes' shared lock while volumes are taken and not yet recorded (see release)


def resolve(engine: Engine, opts: Options, image: ContainerConfig, *, rootfs: str, out: Resolved) -> None:
    """Turn the flags' mounts, the image's VOLUMEs (anonymous volumes where no flag mounts there) and
    --read-only's tmpfs mounts into OCI mounts in `out` (see hutch.engine.mountresolve); nothing to do, and
    nothing imported, for a container without any."""
    if opts.mounts or image.volumes or (opts.read_only and opts.read_only_tmpfs):
        from hutch.engine import mountresolve

        mountresolve.resolve(engine, opts, image, rootfs=rootfs, out=out)


def release(resolved: Resolved) -> None:
    """The volumes' lock let go: the container's record names its volumes now (or the create failed)."""
    if resolved.lock >= 0:
        os.close(resolved.lock)
        resolved.lock = -1


def discard_created(engine: Engine, resolved: Resolved) -> None:
    """The volumes a failed create made: gone, as if it never ran."""
    from hutch.engine import volumes

    for name in resolved.created:
        volumes.discard(engine, name)
    release(resolved)
