"""The `run`/`create` flags applied to a generated spec, as podman applies them: capabilities and
--privileged, --security-opt, --group-add, --ulimit, --oom-score-adj, --init, --shm-size, --sysctl,
--device, resources, the namespace flags, the mounts of -v/--mount/--tmpfs and --annotation."""

from __future__ import annotations

import os

from hutch.errors import ConfigError, HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.mounts import Resolved
    from hutch.engine.spec import Options, User
    from hutch.oci.image import ContainerConfig

# Where podman puts its init (catatonit) in the container, and where Debian's catatonit is.
INIT_PATH = "/run/podman-init"
CATATONIT = "/usr/bin/catatonit"


def apply(
    doc: dict[str, Any], opts: Options, *, rootfs: str, user: User, extra_mounts: list[dict[str, Any]]
) -> None:
    """Change `doc` (spec.generate's config) as the flags in `opts` say."""
    _process(doc, opts, rootfs, user)
    _mounts(doc, opts, extra_mounts)
    _namespaces(doc, opts)
    _linux(doc, opts)
    _more(doc, opts)
    doc["annotations"].update(opts.annotations)


def _process(doc: dict[str, Any], opts: Options, rootfs: str, user: User) -> None:
    from hutch.engine import security, spec

    process = doc["process"]
    caps = security.capabilities(spec.DEFAULT_CAPS, opts.cap_add, opts.cap_drop, opts.privileged)
    if user.uid == 0:
        process["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    else:
        # podman: a non-root user gets only what --cap-add names, in every set (ambient, so that it keeps
        # them across exec).
        added = [c for c in caps if c in {security.cap_name(a, "--cap-add") for a in opts.cap_add}]
        process["capabilities"] = {"bounding": caps, "effective": added, "permitted": added}
        if added:
            process["capabilities"].update(inheritable=added, ambient=added)
    if set(caps) != set(spec.DEFAULT_CAPS) and "seccomp" in doc["linux"]:
        # podman's profile allows some syscalls only with a capability (mount with CAP_SYS_ADMIN, ...).
        doc["linux"]["seccomp"] = spec._seccomp(opts.seccomp, set(caps))
    if opts.group_add:
        from hutch.engine.groups import group_ids

        gids = process["user"].get("additionalGids", [])
        gids += [g for g in group_ids(rootfs, opts.group_add) if g not in gids]
        process["user"]["additionalGids"] = gids
    if opts.no_new_privileges:
        process["noNewPrivileges"] = True
    if opts.oom_score_adj is not None:
        if not -1000 <= opts.oom_score_adj <= 1000:
            raise ConfigError(f"--oom-score-adj {opts.oom_score_adj}: must be between -1000 and 1000")
        process["oomScoreAdj"] = opts.oom_score_adj
    for limit in opts.ulimits:
        process["rlimits"] = [r for r in process["rlimits"] if r["type"] != limit["type"]] + [limit]
    if opts.init:
        if not os.path.exists(CATATONIT):
            raise ConfigError(f"--init: {CATATONIT} is missing (install catatonit)")
        process["args"] = [INIT_PATH, "--", *process["args"]]


def _mounts(doc: dict[str, Any], opts: Options, extra: list[dict[str, Any]]) -> None:
    mounts: list[dict[str, Any]] = doc["mounts"]
    for m in mounts:
        if m["destination"] == "/dev/shm" and opts.shm_size:
            m["options"] = [o for o in m["options"] if not o.startswith("size=")] + [opts.shm_size]
        if opts.privileged and m["destination"] in ("/sys", "/sys/fs/cgroup"):
            m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    if opts.ipc == "none":  # podman: a private IPC namespace without /dev/shm
        mounts = [m for m in mounts if m["destination"] != "/dev/shm"]
    elif opts.ipc == "host":  # the host's IPC namespace and its /dev/shm
        shm = {
            "destination": "/dev/shm",
            "type": "bind",
            "source": "/dev/shm",
            "options": ["rbind", "rprivate"],
        }
        mounts = [shm if m["destination"] == "/dev/shm" else m for m in mounts]
    if opts.init:
        mounts.append(
            {
                "destination": INIT_PATH,
                "type": "bind",
                "source": CATATONIT,
                "options": ["bind", "ro", "rprivate"],
            }
        )
    # A flag's mount over a default one (/dev/shm, /etc/hosts, ...) replaces it.
    taken = {m["destination"] for m in extra}
    doc["mounts"] = [m for m in mounts if m["destination"] not in taken] + extra


def namespace_mode(value: str, flag: str, allowed: tuple[str, ...]) -> str:
    """A namespace flag's value: "" (the default), one of `allowed`, or ns:PATH (container:ID is resolved
    to ns:PATH by create)."""
    if value in ("", *allowed) or value.startswith(("ns:", "container:")):
        if value.startswith("ns:") and not os.path.exists(value[3:]):
            raise ConfigError(f"{flag} {value!r}: no such namespace file")
        return value
    extra = ", container:ID" if flag != "--cgroupns" else ""
    raise ConfigError(f"{flag} {value!r}: expected {', '.join(allowed)}, ns:PATH{extra}")


def _namespaces(doc: dict[str, Any], opts: Options) -> None:
    spaces: list[dict[str, Any]] = doc["linux"]["namespaces"]
    for kind, mode in (("pid", opts.pid), ("ipc", opts.ipc), ("uts", opts.uts), ("cgroup", opts.cgroupns)):
        entry = next((n for n in spaces if n["type"] == kind), None)
        if mode == "host" and entry is not None:
            spaces.remove(entry)
        elif mode.startswith("ns:") and entry is not None:
            entry["path"] = mode[3:]
    if opts.uts == "host" or opts.uts.startswith("ns:"):
        if opts.hostname:
            raise ConfigError(
                "--hostname: cannot set the hostname when the UTS namespace is not the container's own"
            )
        doc.pop("hostname", None)
        if opts.uts == "host":  # the host's name, in HOSTNAME and /etc/hostname, as podman shows it
            _host_name(doc, os.uname().nodename)


def _host_name(doc: dict[str, Any], name: str) -> None:
    env = doc["process"]["env"]
    doc["process"]["env"] = [f"HOSTNAME={name}" if e.startswith("HOSTNAME=") else e for e in env]
    for m in doc["mounts"]:
        if m["destination"] == "/etc/hostname" and m["type"] == "bind":
            with open(m["source"], "w") as f:
                f.write(name + "\n")


def _linux(doc: dict[str, Any], opts: Options) -> None:
    from hutch.engine import security, spec

    linux = doc["linux"]
    sec = security.SecurityOpts(mask=list(opts.mask), unmask=list(opts.unmask))
    linux["maskedPaths"] = security.masked_paths(spec.MASKED_PATHS, sec, opts.privileged)
    if opts.privileged or "ALL" in opts.unmask:
        linux["readonlyPaths"] = []
    else:
        linux["readonlyPaths"] = [p for p in linux["readonlyPaths"] if p not in opts.unmask]
    if opts.privileged:
        linux.pop("seccomp", None)
        from hutch.engine import devices

        linux["devices"] = devices.host_devices()
        linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    else:
        if opts.devices:
            linux["devices"] = list(opts.devices)
        linux["resources"]["devices"] += opts.device_rules  # --device's and --device-cgroup-rule's
    linux["resources"].update(opts.resources)
    network = "host" if not any(n["type"] == "network" for n in linux["namespaces"]) else "private"
    ipc = "host" if not any(n["type"] == "ipc" for n in linux["namespaces"]) else "private"
    sysctls = security.sysctls(opts.sysctls, network, ipc)
    if sysctls:
        linux["sysctl"] = sysctls


def _more(doc: dict[str, Any], opts: Options) -> None:
    """--cgroup-parent, --personality, --umask, --no-hosts (--env-host is spec.generate's)."""
    if opts.cgroup_parent:
        doc["linux"]["cgroupsPath"] = f"{opts.cgroup_parent}/{doc['annotations']['io.hutch.container.id']}"
    if opts.personality:
        doc["linux"]["personality"] = {"domain": opts.personality}
    if opts.umask is not None:
        doc["process"]["user"]["umask"] = opts.umask
    if opts.no_hosts:  # the image's own /etc/hosts
        doc["mounts"] = [m for m in doc["mounts"] if m["destination"] != "/etc/hosts"]


def join_containers(engine: Engine, opts: Options) -> None:
    """--pid/--ipc/--uts container:ID: the namespace of that running container's init (ns:PATH)."""
    for attr, ns in (("pid", "pid"), ("ipc", "ipc"), ("uts", "uts")):
        value: str = getattr(opts, attr)
        if not value.startswith("container:"):
            continue
        from hutch.runtime import container

        rec = engine.find(value.partition(":")[2])
        try:
            pid = container.load(engine.runtime_root, rec.id).pid if rec.state in ("running", "paused") else 0
        except HutchError:
            pid = 0
        if not pid:
            raise ConfigError(f"--{attr} {value!r}: the container {rec.name} is not running")
        setattr(opts, attr, f"ns:/proc/{pid}/ns/{ns}")


def recorded(opts: Options, image: ContainerConfig, resolved: Resolved) -> dict[str, Any]:
    """What the container's record keeps of the flags, for inspect, stop and rm -v (podman's names)."""
    return {
        "Annotations": dict(opts.annotations),
        "StopTimeout": opts.stop_timeout,
        "Mounts": resolved.inspect,
        "Volumes": {v: {} for v in image.volumes} or None,
        "CapAdd": [c for c in opts.cap_add],
        "CapDrop": [c for c in opts.cap_drop],
        "Privileged": opts.privileged,
        "Init": opts.init,
        "GroupAdd": list(opts.group_add),
        "NoNewPrivileges": opts.no_new_privileges,
        "Mask": list(opts.mask),
        "Unmask": list(opts.unmask),
        "Devices": [_device_shown(text) for text in opts.device_flags],
        "IpcMode": opts.ipc or "private",
        "PidMode": opts.pid or "private",
        "UTSMode": opts.uts or "private",
        "CgroupnsMode": opts.cgroupns or "private",
    }


def _device_shown(text: str) -> dict[str, str]:
    parts = text.split(":")
    perms = parts.pop() if len(parts) > 1 and set(parts[-1]) <= set("rwm") else "rwm"
    inside = parts[1] if len(parts) > 1 and parts[1] else parts[0]
    return {"PathOnHost": parts[0], "PathInContainer": inside, "CgroupPermissions": perms}
