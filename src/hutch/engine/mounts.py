"""The mount flags of `run`/`create`, as podman reads them: -v/--volume, --mount, --tmpfs, the image's
VOLUMEs and --read-only's tmpfs mounts; parsed at the edge, then resolved at create into OCI mounts (binds of
host dirs and of volumes' _data, tmpfs), volumes made and filled from the image as needed."""

from __future__ import annotations

import os

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.spec import Options, User
    from hutch.oci.image import ContainerConfig
else:
    from hutch.record import dataclass, field

PROPAGATIONS = ("shared", "slave", "private", "rshared", "rslave", "rprivate", "unbindable", "runbindable")
_FLAG_OPTS = ("nosuid", "suid", "nodev", "dev", "noexec", "exec")
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


def _absolute(path: str, flag: str) -> str:
    if not path.startswith("/"):
        raise ConfigError(f"{flag}: the destination {path!r} must be an absolute path")
    return os.path.normpath(path)


def parse_volume(text: str) -> MountSpec:
    """-v SRC:DST[:OPTS] (SRC a host path, or a volume name) or -v DST (an anonymous volume)."""
    flag = f"--volume {text!r}"
    parts = text.split(":")
    if not text or len(parts) > 3 or not all(parts[:2]):
        raise ConfigError(f"{flag}: expected [SRC:]DST[:OPTIONS]")
    if len(parts) == 1:
        return MountSpec("volume", _absolute(parts[0], flag), "", [], flag=flag)
    if len(parts) == 2 and not parts[1].startswith("/"):  # `-v /DST:ro`: an anonymous volume, with options
        return _volume_options(MountSpec("volume", _absolute(parts[0], flag), "", flag=flag), parts[1])
    source, dest = parts[0], _absolute(parts[1], flag)
    kind = "bind" if source.startswith(("/", ".")) else "volume"
    if kind == "volume":
        from hutch.engine.volumes import check_name

        check_name(source, flag)
    else:
        source = os.path.abspath(source)
    spec = MountSpec(kind, dest, source, flag=flag)
    return _volume_options(spec, parts[2] if len(parts) == 3 else "")


def _volume_options(spec: MountSpec, text: str) -> MountSpec:
    seen_rw = ""
    for opt in [o for o in text.split(",") if o]:
        if opt in ("ro", "rw"):
            if seen_rw:
                raise ConfigError(f"{spec.flag}: ro and rw given together")
            seen_rw = opt
            if opt == "ro":
                spec.options.append("ro")
        elif opt in ("z", "Z"):
            pass  # SELinux relabeling: this host has no SELinux
        elif opt == "U":
            spec.chown = True
        elif opt in PROPAGATIONS or opt in _FLAG_OPTS or (opt in ("bind", "rbind") and spec.type == "bind"):
            spec.options.append(opt)
        elif opt in ("copy", "nocopy") and spec.type == "volume":
            if opt == "nocopy":
                spec.options.append("nocopy")
        else:
            raise ConfigError(f"{spec.flag}: invalid option {opt!r}")
    return spec


def parse_tmpfs(text: str) -> MountSpec:
    """--tmpfs DST[:OPTS]: podman's defaults rw, noexec, nosuid, nodev (options may undo them)."""
    flag = f"--tmpfs {text!r}"
    dest, _, opts = text.partition(":")
    spec = MountSpec("tmpfs", _absolute(dest, flag), "tmpfs", flag=flag)
    spec.options = _tmpfs_options([o for o in opts.split(",") if o], flag)
    return spec


def _tmpfs_options(given: list[str], flag: str) -> list[str]:
    out = ["rw", "noexec", "nosuid", "nodev", "tmpcopyup"]
    undo = {"ro": "rw", "exec": "noexec", "suid": "nosuid", "dev": "nodev", "notmpcopyup": "tmpcopyup"}
    for opt in given:
        key = opt.partition("=")[0]
        if opt in undo:
            out = [o for o in out if o != undo[opt]]
        elif key not in ("size", "mode", "nr_inodes", "uid", "gid") and opt not in (
            *_FLAG_OPTS,
            "rw",
            *PROPAGATIONS,
        ):
            raise ConfigError(f"{flag}: invalid option {opt!r}")
        if opt not in out:
            out.append(opt)
    return out


_MOUNT_KEYS = (
    "type", "source", "src", "target", "dst", "destination", "ro", "readonly", "rw", "bind-propagation",
    "tmpfs-size", "tmpfs-mode", "relabel", "U", "chown", "volume-nocopy", "bind-nonrecursive", "consistency",
)  # fmt: skip


def parse_mount(text: str) -> MountSpec:
    """--mount type=bind|volume|tmpfs,source=...,target=...[,ro][,bind-propagation=P][,tmpfs-size=N]..."""
    flag = f"--mount {text!r}"
    kv: dict[str, str] = {}
    for item in [i for i in text.split(",") if i]:
        key, sep, value = item.partition("=")
        if key not in _MOUNT_KEYS:
            raise ConfigError(f"{flag}: unknown option {key!r}")
        kv[key] = value if sep else "true"
    kind = kv.get("type", "")
    if kind not in ("bind", "volume", "tmpfs"):
        raise ConfigError(f"{flag}: type must be bind, volume or tmpfs")
    target = kv.get("target") or kv.get("dst") or kv.get("destination")
    if not target:
        raise ConfigError(f"{flag}: a target (target=, dst= or destination=) is required")
    spec = MountSpec(kind, _absolute(target, flag), kv.get("source") or kv.get("src") or "", flag=flag)
    readonly = any(_true(kv[k], flag) for k in ("ro", "readonly") if k in kv)
    if kind == "tmpfs":
        given = ["ro"] if readonly else []
        if "tmpfs-size" in kv:
            from hutch.engine.resources import parse_bytes

            given.append(f"size={parse_bytes(kv['tmpfs-size'], flag)}")
        if "tmpfs-mode" in kv:
            if not kv["tmpfs-mode"] or any(ch not in "01234567" for ch in kv["tmpfs-mode"]):
                raise ConfigError(f"{flag}: tmpfs-mode {kv['tmpfs-mode']!r} is not an octal mode")
            given.append(f"mode={kv['tmpfs-mode']}")
        spec.source, spec.options = "tmpfs", _tmpfs_options(given, flag)
        return spec
    if kind == "bind":
        if not spec.source:
            raise ConfigError(f"{flag}: a bind mount needs source=")
        spec.source = os.path.abspath(spec.source)
        spec.options.append("bind" if "bind-nonrecursive" in kv else "rbind")
    elif spec.source:
        from hutch.engine.volumes import check_name

        check_name(spec.source, flag)
    if readonly:
        spec.options.append("ro")
    prop = kv.get("bind-propagation")
    if prop is not None:
        if prop not in PROPAGATIONS:
            raise ConfigError(f"{flag}: bind-propagation {prop!r}: expected one of {', '.join(PROPAGATIONS)}")
        spec.options.append(prop)
    spec.chown = _true(kv.get("U", kv.get("chown", "false")), flag)
    return spec


def _true(value: str, flag: str) -> bool:
    if value.lower() in ("true", "1", ""):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ConfigError(f"{flag}: {value!r} is not true or false")


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
