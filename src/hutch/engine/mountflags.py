"""The mount flags of `run`/`create` parsed as podman reads them: -v/--volume, --mount and --tmpfs, each into a
MountSpec (see hutch.engine.mounts); imported only when one is given."""

from __future__ import annotations

import os

from hutch.engine.mounts import PROPAGATIONS, MountSpec
from hutch.errors import ConfigError

_FLAG_OPTS = ("nosuid", "suid", "nodev", "dev", "noexec", "exec")


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
