"""The mounts of a create resolved into OCI mounts (see hutch.engine.mounts): binds of host dirs and of
volumes' _data, tmpfs; volumes made and filled from the image as needed, and podman's inspect entries."""

from __future__ import annotations

import os

from hutch.engine.mounts import PROPAGATIONS, READ_ONLY_TMPFS, MountSpec, Resolved
from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.spec import Options, User
    from hutch.oci.image import ContainerConfig


def resolve(engine: Engine, opts: Options, image: ContainerConfig, *, rootfs: str, out: Resolved) -> None:
    """Turn the flags' mounts, the image's VOLUMEs (anonymous volumes where no flag mounts there) and
    --read-only's tmpfs mounts into OCI mounts in `out`; volumes are made and filled from the image."""
    specs = opts.mounts
    image_volumes = image.volumes
    read_only_tmpfs = opts.read_only and opts.read_only_tmpfs
    user: User | None = None
    if any(s.chown for s in specs):
        from hutch.engine.spec import resolve_user

        user = resolve_user(rootfs, opts.user or image.user)
    wanted = list(specs)
    taken = {s.destination for s in specs}
    for path in image_volumes:
        dest = os.path.normpath(path) if path.startswith("/") else None
        if dest is not None and dest not in taken:
            wanted.append(MountSpec("volume", dest, flag=f"the image's VOLUME {path}"))
            taken.add(dest)
    if read_only_tmpfs:
        for dest in READ_ONLY_TMPFS:
            if dest not in taken:
                ro_opts = ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]
                wanted.append(MountSpec("tmpfs", dest, "tmpfs", ro_opts, flag="--read-only"))
    if any(spec.type == "volume" for spec in wanted):
        from hutch.engine.volumes import hold

        out.lock = hold(engine)
    for spec in wanted:
        if spec.type == "tmpfs":
            out.mounts.append(_oci(spec.destination, "tmpfs", "tmpfs", spec.options))
            out.inspect.append(_shown(spec, "tmpfs", "", "tmpfs"))
        elif spec.type == "bind":
            _bind(spec, user, out)
        else:
            _volume(engine, spec, rootfs, user, out)


def _oci(dest: str, kind: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": dest, "type": kind, "source": source, "options": options}


def _with_propagation(options: list[str]) -> list[str]:
    return options if any(o in PROPAGATIONS for o in options) else [*options, "rprivate"]


def _bind(spec: MountSpec, user: User | None, out: Resolved) -> None:
    if not os.path.exists(spec.source):
        raise ConfigError(f"{spec.flag}: statfs {spec.source}: no such file or directory")
    if spec.chown and user is not None:
        _chown_tree(spec.source, user)
    opts = _with_propagation(
        [o for o in spec.options] if "bind" in spec.options else ["rbind", *spec.options]
    )
    opts = list(dict.fromkeys(opts))
    out.mounts.append(_oci(spec.destination, "bind", spec.source, opts))
    out.inspect.append(_shown(spec, "bind", "", spec.source))


def _volume(engine: Engine, spec: MountSpec, rootfs: str, user: User | None, out: Resolved) -> None:
    from hutch.engine import volumes

    vol, made = volumes.ensure(engine, spec.source, anonymous=not spec.source)
    if made:
        out.created.append(vol.name)
    if "nocopy" not in spec.options:
        volumes.copy_up(engine, vol, rootfs, spec.destination)
    data = volumes.mountpoint(engine, vol.name)
    if spec.chown and user is not None:
        _chown_tree(data, user)
    opts = [o for o in spec.options if o != "nocopy"]
    opts = list(dict.fromkeys(_with_propagation(["rbind", "nosuid", "nodev", *opts])))
    out.mounts.append(_oci(spec.destination, "bind", data, opts))
    shown = _shown(spec, "volume", vol.name, data)
    shown["Anonymous"] = vol.anonymous and not spec.source
    out.inspect.append(shown)


def _shown(spec: MountSpec, kind: str, name: str, source: str) -> dict[str, Any]:
    """podman's inspect Mounts entry."""
    prop = next((o for o in spec.options if o in PROPAGATIONS), "rprivate" if kind != "tmpfs" else "")
    entry: dict[str, Any] = {"Type": kind}
    if name:
        entry["Name"] = name
    entry.update(
        Source=source,
        Destination=spec.destination,
        Driver="local" if kind == "volume" else "",
        Mode="",
        Options=[o for o in spec.options if o not in PROPAGATIONS and o not in ("ro", "rw")],
        RW="ro" not in spec.options,
        Propagation=prop,
    )
    return entry


def _chown_tree(path: str, user: User) -> None:
    """`U`: the tree takes the container user's uid and gid, as podman chowns it."""
    os.lchown(path, user.uid, user.gid)
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(dirpath, name), user.uid, user.gid)


def binds(shown: list[dict[str, Any]]) -> list[str]:
    """HostConfig.Binds as podman shows them: SRC:DST:OPTS for binds and named volumes."""
    out = []
    for m in shown:
        if m["Type"] == "tmpfs" or m.get("Anonymous"):
            continue
        src = m.get("Name") or m["Source"]
        opts = ["rw" if m["RW"] else "ro", *m["Options"], m["Propagation"]]
        out.append(f"{src}:{m['Destination']}:{','.join(o for o in opts if o)}")
    return out
