"""The OCI runtime spec of an engine container: the image config and the `run` flags, with podman's defaults.

podman's defaults: its capability set, masked and read-only paths, the usual pseudo-filesystems, new pid,
mount, ipc, uts, network and cgroup namespaces, RLIMIT_NOFILE at the host's hard limit, its seccomp profile,
and /etc/hosts, /etc/hostname and /etc/resolv.conf bound from files the engine writes for the container.
"""

from __future__ import annotations

import os

from hutch import OCI_VERSION
from hutch.errors import ConfigError, NotFoundError
from hutch.oci.image import ContainerConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
    from typing import Any

    from hutch.engine.mounts import MountSpec
    from hutch.engine.network.plan import NetOptions
else:
    from hutch.record import dataclass, field

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# containers.conf's default_capabilities.
DEFAULT_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
)

MASKED_PATHS = (
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/dev/block",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/proc/interrupts",
)

READONLY_PATHS = (
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

_NOSUID_NOEXEC_NODEV = ["nosuid", "noexec", "nodev"]
DEFAULT_PIDS_LIMIT = 2048  # containers.conf's pids_limit


def _default_resources() -> dict[str, Any]:
    return {"pids": {"limit": DEFAULT_PIDS_LIMIT}}


@dataclass(slots=True)
class Options:
    """The `run`/`create` flags that shape the spec."""

    command: list[str] = field(default_factory=list)
    entrypoint: str | None = None
    env: list[str] = field(default_factory=list)
    workdir: str = ""
    user: str = ""
    hostname: str = ""
    read_only: bool = False
    network: str = "none"
    net: NetOptions | None = None  # --ip, --mac-address, -p, --dns, ... (hutch.engine.network.plan)
    seccomp: str = "default"  # "default", "unconfined" or a profile path
    tty: bool = False
    # The flags below are applied by hutch.engine.specflags (mounts by hutch.engine.mounts at create).
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    group_add: list[str] = field(default_factory=list)
    stop_signal: str = ""
    stop_timeout: int | None = None
    mounts: list[MountSpec] = field(default_factory=list)
    read_only_tmpfs: bool = True
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    no_new_privileges: bool = False
    mask: list[str] = field(default_factory=list)
    unmask: list[str] = field(default_factory=list)
    sysctls: list[str] = field(default_factory=list)
    shm_size: str = ""  # /dev/shm's size option
    ulimits: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    device_rules: list[dict[str, Any]] = field(default_factory=list)
    device_flags: list[str] = field(default_factory=list)  # --device as given, for inspect
    # linux.resources but devices; podman's default pids limit unless the caller says otherwise
    resources: dict[str, Any] = field(default_factory=_default_resources)
    oom_score_adj: int | None = None
    init: bool = False
    cgroupns: str = ""  # "", private, host
    ipc: str = ""  # "", private, shareable, none, host, ns:PATH (container:ID resolved at create)
    uts: str = ""  # "", private, host, ns:PATH
    pid: str = ""  # "", private, host, ns:PATH
    health: dict[str, Any] = field(default_factory=dict)  # --health-* flags as given (hutch.engine.health)
    cgroup_parent: str = ""  # --cgroup-parent (hutch.engine.cgroupflags); the cgroup is PARENT/ID
    personality: str = ""  # --personality: LINUX or LINUX32
    umask: int | None = None
    no_hosts: bool = False
    env_host: bool = False


@dataclass(slots=True)
class User:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def entrypoint_and_cmd(image: ContainerConfig, opts: Options) -> tuple[list[str], list[str]]:
    """ENTRYPOINT and CMD as docker and podman resolve them: --entrypoint drops the image's CMD."""
    if opts.entrypoint is not None:
        return _entrypoint(opts.entrypoint), list(opts.command)
    return list(image.entrypoint or []), list(opts.command) if opts.command else list(image.cmd or [])


def process_args(image: ContainerConfig, opts: Options) -> list[str]:
    """ENTRYPOINT + CMD as docker and podman resolve them: --entrypoint drops the image's CMD."""
    entrypoint, cmd = entrypoint_and_cmd(image, opts)
    args = entrypoint + cmd
    if not args:
        raise ConfigError("no command or entrypoint provided, and no CMD or ENTRYPOINT from image")
    return args


def _entrypoint(text: str) -> list[str]:
    if text.startswith("["):
        from hutch import jsonfast

        try:
            value = jsonfast.loads(text)
        except jsonfast.DecodeError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return [text] if text else []


def merge_env(*lists: list[str]) -> list[str]:
    """KEY=VALUE lists merged in order, a later key replacing an earlier one; `-e KEY` takes the host's."""
    out: dict[str, str] = {}
    for entries in lists:
        for item in entries:
            key, sep, value = item.partition("=")
            if not key:
                raise ConfigError(f"--env {item!r}: the name is empty")
            if not sep:
                if key not in os.environ:
                    continue
                value = os.environ[key]
            out[key] = value
    return [f"{k}={v}" for k, v in out.items()]


def _read_in_root(rootfs: str, path: str) -> str:
    """A file of the rootfs, resolved as if the rootfs were / (its symlinks cannot lead out)."""
    from hutch.runtime import inroot

    rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = inroot.open_path(rootfd, path, os.O_RDONLY)
    except OSError:
        return ""
    finally:
        os.close(rootfd)
    with os.fdopen(fd, "rb") as f:
        return f.read(1 << 20).decode(errors="replace")


def resolve_user(rootfs: str, text: str) -> User:
    """`uid[:gid]` or `name[:group]`, names looked up in the rootfs's /etc/passwd and /etc/group."""
    name, _, group = (text or "0").partition(":")
    passwd = [line.split(":") for line in _read_in_root(rootfs, "/etc/passwd").splitlines()]
    passwd = [p for p in passwd if len(p) >= 7]
    entry = None
    if name.isdigit():
        uid = int(name)
        entry = next((p for p in passwd if p[2] == name), None)
    else:
        entry = next((p for p in passwd if p[0] == name), None)
        if entry is None:
            raise NotFoundError(f"unable to find user {name}: no matching entries in passwd file")
        uid = int(entry[2])
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    groups = [line.split(":") for line in _read_in_root(rootfs, "/etc/group").splitlines()]
    groups = [g for g in groups if len(g) >= 4]
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            found = next((g for g in groups if g[0] == group), None)
            if found is None or not found[2].isdigit():
                raise NotFoundError(f"unable to find group {group}: no matching entries in group file")
            gid = int(found[2])
    additional: list[int] = []
    if entry is not None and not group:
        for g in groups:
            if entry[0] in g[3].split(",") and g[2].isdigit() and int(g[2]) != gid:
                additional.append(int(g[2]))
    home = entry[5] if entry is not None and entry[5] else ("/root" if uid == 0 else "/")
    return User(uid, gid, additional, home)


def nofile_limit() -> int:
    """podman raises RLIMIT_NOFILE to 1048576, or to the host's hard limit when that is lower."""
    from hutch.linux import rlimit  # not `resource`: a shared library to load on run's path

    return min(rlimit.get_limit(rlimit.NOFILE)[1], 1048576)


def _mount(destination: str, fstype: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": destination, "type": fstype, "source": source, "options": options}


def generate(
    image: ContainerConfig,
    opts: Options,
    *,
    rootfs: str,
    userdata: str,
    container_id: str,
    extra_mounts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The config.json (as JSON-ready data) of a container of `image` on `rootfs`, run with `opts`;
    `extra_mounts` are the resolved -v/--mount/--tmpfs/VOLUME mounts (hutch.engine.mounts)."""
    args = process_args(image, opts)
    user = resolve_user(rootfs, opts.user or image.user)
    hostname = opts.hostname or container_id[:12]
    env = merge_env(
        [f"PATH={DEFAULT_PATH}", "container=hutch"],
        list(image.env),
        # --env-host: the host's environment over the defaults and the image's, under the flags (podman's)
        [f"{k}={v}" for k, v in os.environ.items()] if opts.env_host else [],
        [f"HOSTNAME={hostname}"],
        opts.env,
    )
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={user.home}")
    if opts.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    caps = list(DEFAULT_CAPS)
    # podman gives a non-root user no effective or permitted capabilities; the bounding set stays.
    effective = caps if user.uid == 0 else []
    process: dict[str, Any] = {
        "terminal": opts.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": env,
        "cwd": opts.workdir or image.working_dir or "/",
        "capabilities": {"bounding": caps, "effective": effective, "permitted": effective},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile_limit(), "soft": nofile_limit()}],
        "noNewPrivileges": False,
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = user.additional_gids
    if not process["cwd"].startswith("/"):
        raise ConfigError(f"--workdir {process['cwd']!r}: must be an absolute path")
    mounts = [
        _mount("/proc", "proc", "proc", list(_NOSUID_NOEXEC_NODEV)),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount(
            "/dev/pts",
            "devpts",
            "devpts",
            ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        _mount("/dev/mqueue", "mqueue", "mqueue", list(_NOSUID_NOEXEC_NODEV)),
        _mount("/sys", "sysfs", "sysfs", [*_NOSUID_NOEXEC_NODEV, "ro"]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", ["rprivate", *_NOSUID_NOEXEC_NODEV, "relatime", "ro"]),
        _mount("/dev/shm", "tmpfs", "shm", [*_NOSUID_NOEXEC_NODEV, "mode=1777", "size=65536k"]),
    ]
    for name in ("hosts", "hostname", "resolv.conf"):
        mounts.append(_mount(f"/etc/{name}", "bind", os.path.join(userdata, name), ["bind", "rprivate"]))
    namespaces = [{"type": t} for t in ("pid", "mount", "ipc", "uts", "cgroup")]
    from hutch.engine.network.plan import namespace

    netns = namespace(opts.network, userdata, container_id)  # none: new; host: None; else joined by path
    if netns is not None:
        namespaces.append(netns)
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
    }
    if opts.network == "host":
        # The host's /sys belongs to its network namespace: bind it rather than mount a new sysfs.
        mounts[4] = _mount("/sys", "bind", "/sys", ["rbind", *_NOSUID_NOEXEC_NODEV, "ro"])
    seccomp = _seccomp(opts.seccomp, set(caps))
    if seccomp is not None:
        linux["seccomp"] = seccomp
    doc = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": opts.read_only},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": {"io.hutch.container.id": container_id},
    }
    from hutch.engine import specflags

    specflags.apply(doc, opts, rootfs=rootfs, user=user, extra_mounts=extra_mounts or [])
    return doc


def _seccomp(choice: str, caps: set[str]) -> dict[str, Any] | None:
    from hutch.engine import seccomp_profile

    if choice == "unconfined":
        return None
    if choice == "default":
        return seccomp_profile.default(caps)
    doc = seccomp_profile.load(choice)
    if doc is None:
        raise ConfigError(f"--security-opt seccomp={choice}: no such file")
    return seccomp_profile.convert(doc, caps)


def hostname_file(userdata: str, hostname: str) -> None:
    """/etc/hostname for the container, in its userdata dir. /etc/hosts and /etc/resolv.conf depend on its
    networks: network.setup.prepare writes them (and setup again, with the addresses)."""
    from hutch.engine.network import etcfiles

    etcfiles.write(userdata, "hostname", hostname + "\n")
