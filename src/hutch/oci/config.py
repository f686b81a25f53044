"""The OCI runtime-spec config.json (v1.2, the Linux parts) as typed data.

`load(bundle)` reads `<bundle>/config.json`; `parse(doc)` validates a decoded document. Every ConfigError
names the source and the JSON path of the offending value, e.g. `config.json: process.rlimits[2].hard:
expected an integer, got "x"`. Unknown keys are ignored (the spec allows extensions); a known key with the
wrong type, or an enumerated value hutch does not know (a capability, a seccomp action), is an error, so that
a bad config fails before anything starts. Attribute names are the JSON keys in snake_case.

This module is on the hot path of `hutch-runtime run`: it imports hutch.record and the reader (hutch.oci.reader,
which other documents' parsers share) only, hutch.jsonfast only to read a file (an init started ahead parses
the document it is sent), and `typing` only for the type checker.
linux.seccomp, its types and the names it may use are hutch.oci.seccomp's, imported only when config.json has
one.
"""

from __future__ import annotations

import os

from hutch.errors import ConfigError
from hutch.oci.reader import Reader, quote, show, unknown
from hutch.oci.resources import Resources, parse_resources

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field
if TYPE_CHECKING:
    from typing import Any

    from hutch.oci.seccomp import Seccomp

# Integer ranges of the spec's Go types.
U16 = (0, 0xFFFF)
U32 = (0, 0xFFFF_FFFF)
U64 = (0, 0xFFFF_FFFF_FFFF_FFFF)
I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)

# Linux capability names in number order (linux/capability.h), and resource limits (asm-generic/resource.h).
_CAP_NAMES = """CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE
SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE
AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ
PERFMON BPF CHECKPOINT_RESTORE"""
_RLIMIT_NAMES = (
    "CPU FSIZE DATA STACK CORE RSS NPROC NOFILE MEMLOCK AS LOCKS SIGPENDING MSGQUEUE NICE RTPRIO RTTIME"
)
CAPABILITIES: dict[str, int] = {f"CAP_{name}": n for n, name in enumerate(_CAP_NAMES.split())}
RLIMITS: dict[str, int] = {f"RLIMIT_{name}": n for n, name in enumerate(_RLIMIT_NAMES.split())}
NAMESPACES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
SCHED_POLICIES = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_ISO": 4,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}
# runc's accepted values: the spec's four, and their recursive forms.
ROOTFS_PROPAGATIONS = (
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
)
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}


# --- the data -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ConsoleSize:
    """process.consoleSize: the terminal size, in characters."""

    height: int
    width: int


@dataclass(slots=True)
class User:
    """process.user. `umask` None leaves the runtime's default (0o022)."""

    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: list[int] = field(default_factory=list)
    username: str = ""


@dataclass(slots=True)
class Capabilities:
    """process.capabilities: five sets of CAP_* names, each checked against CAPABILITIES."""

    bounding: list[str] = field(default_factory=list)
    effective: list[str] = field(default_factory=list)
    inheritable: list[str] = field(default_factory=list)
    permitted: list[str] = field(default_factory=list)
    ambient: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Rlimit:
    """process.rlimits[]: `type` is a key of RLIMITS; soft <= hard."""

    type: str
    hard: int
    soft: int


@dataclass(slots=True)
class IOPriority:
    """process.ioPriority: `class_` is a key of IOPRIO_CLASSES, priority 0 (highest) to 7."""

    class_: str
    priority: int


@dataclass(slots=True)
class Scheduler:
    """process.scheduler: sched_setattr(2) parameters; policy and flags are keys of SCHED_*."""

    policy: str
    nice: int = 0
    priority: int = 0
    flags: list[str] = field(default_factory=list)
    runtime: int = 0
    deadline: int = 0
    period: int = 0


@dataclass(slots=True)
class Process:
    """process (or a whole `exec --process` file). `exec_cpu_affinity` is kept as raw JSON."""

    terminal: bool = False
    console_size: ConsoleSize | None = None
    user: User = field(default_factory=User)
    args: list[str] = field(default_factory=list)
    command_line: str | None = None
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    capabilities: Capabilities | None = None
    rlimits: list[Rlimit] = field(default_factory=list)
    no_new_privileges: bool = False
    apparmor_profile: str = ""
    oom_score_adj: int | None = None
    selinux_label: str = ""
    io_priority: IOPriority | None = None
    scheduler: Scheduler | None = None
    exec_cpu_affinity: dict[str, Any] | None = None


@dataclass(slots=True)
class Root:
    """root: the rootfs, absolute or relative to the bundle."""

    path: str
    readonly: bool = False


@dataclass(slots=True)
class IDMapping:
    """A uid or gid mapping: linux.uidMappings[], linux.gidMappings[], mounts[].uidMappings[]."""

    container_id: int
    host_id: int
    size: int


@dataclass(slots=True)
class Mount:
    """mounts[]: `destination` is absolute (inside the container)."""

    destination: str
    type: str = ""
    source: str = ""
    options: list[str] = field(default_factory=list)
    uid_mappings: list[IDMapping] = field(default_factory=list)
    gid_mappings: list[IDMapping] = field(default_factory=list)


@dataclass(slots=True)
class Hook:
    """hooks.<stage>[]: `path` is absolute; `timeout` (seconds) is None or > 0."""

    path: str
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    timeout: int | None = None


@dataclass(slots=True)
class Hooks:
    """hooks, by stage, each in the order to run."""

    prestart: list[Hook] = field(default_factory=list)
    create_runtime: list[Hook] = field(default_factory=list)
    create_container: list[Hook] = field(default_factory=list)
    start_container: list[Hook] = field(default_factory=list)
    poststart: list[Hook] = field(default_factory=list)
    poststop: list[Hook] = field(default_factory=list)


@dataclass(slots=True)
class Namespace:
    """linux.namespaces[]: a new namespace when `path` is None, else the one to join."""

    type: str
    path: str | None = None


@dataclass(slots=True)
class TimeOffset:
    """linux.timeOffsets.monotonic / .boottime."""

    secs: int = 0
    nanosecs: int = 0


@dataclass(slots=True)
class Device:
    """linux.devices[]: `major`/`minor` are 0 for a fifo (type p)."""

    type: str
    path: str
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass(slots=True)
class Personality:
    """linux.personality: `domain` is a key of PERSONALITY_DOMAINS."""

    domain: str
    flags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Linux:
    """linux. `intel_rdt` and `net_devices` are kept as raw JSON."""

    namespaces: list[Namespace] = field(default_factory=list)
    uid_mappings: list[IDMapping] = field(default_factory=list)
    gid_mappings: list[IDMapping] = field(default_factory=list)
    time_offsets: dict[str, TimeOffset] = field(default_factory=dict)
    devices: list[Device] = field(default_factory=list)
    cgroups_path: str = ""
    resources: Resources | None = None
    rootfs_propagation: str = ""
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    mount_label: str = ""
    sysctl: dict[str, str] = field(default_factory=dict)
    seccomp: Seccomp | None = None
    personality: Personality | None = None
    intel_rdt: dict[str, Any] | None = None
    net_devices: dict[str, Any] | None = None

    def namespace(self, type: str) -> Namespace | None:
        """The namespace entry of this type (there is at most one), or None."""
        return next((ns for ns in self.namespaces if ns.type == type), None)


@dataclass(slots=True)
class Spec:
    """A whole config.json. `raw` is the document as read; `source` names it in errors."""

    oci_version: str
    process: Process | None = None
    root: Root | None = None
    hostname: str = ""
    domainname: str = ""
    mounts: list[Mount] = field(default_factory=list)
    hooks: Hooks = field(default_factory=Hooks)
    annotations: dict[str, str] = field(default_factory=dict)
    linux: Linux | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    source: str = "config.json"

    def require_process(self) -> Process:
        """The process, or a ConfigError when there is none (create and run need one)."""
        if self.process is None:
            raise ConfigError(f"{self.source}: process: required")
        return self.process


# --- the parsers --------------------------------------------------------------------------------------------


def _read(path: str) -> object:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    from hutch import jsonfast

    try:
        return jsonfast.loads(data.decode())
    except jsonfast.DecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON: not UTF-8 text ({e.reason})") from None


def _top(doc: object, source: str) -> Reader:
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a JSON object, got {show(doc)}")
    return Reader(doc, "", source)


def load(bundle: str) -> Spec:
    """Read and validate `<bundle>/config.json`; errors name that file's path."""
    path = os.path.join(bundle, "config.json")
    return _spec(_top(_read(path), path))


def parse(doc: dict[str, Any], source: str = "config.json") -> Spec:
    """Validate a decoded config.json document; `source` starts every error message."""
    return _spec(_top(doc, source))


def load_process(path: str) -> Process:
    """Read and validate a process.json (`exec --process`): a spec `process` object on its own."""
    return _process(_top(_read(path), path))


def parse_process(doc: dict[str, Any], source: str = "process.json") -> Process:
    """Validate a decoded process object that stands alone; JSON paths start at its keys."""
    return _process(_top(doc, source))


def _spec(r: Reader) -> Spec:
    version = r.string("ociVersion", required=True)
    major = version.split(".", 1)[0]
    if not major.isdigit() or "." not in version:
        raise ConfigError(f"{r.source}: ociVersion {quote(version)}: not a version")
    if major != "1":
        raise ConfigError(
            f"{r.source}: ociVersion {quote(version)}: unsupported major version (hutch supports 1.x)"
        )
    process, root, hooks, linux = r.child("process"), r.child("root"), r.child("hooks"), r.child("linux")
    annotations = r.string_map("annotations")
    if "" in annotations:
        raise r.error("annotations", "keys must not be empty")
    return Spec(
        oci_version=version,
        process=None if process is None else _process(process),
        root=None if root is None else Root(root.string("path", required=True), root.boolean("readonly")),
        hostname=r.string("hostname"),
        domainname=r.string("domainname"),
        mounts=[_mount(m) for m in r.children("mounts")],
        hooks=Hooks() if hooks is None else Hooks(*(_hooks(hooks, key) for key in _HOOK_KEYS)),
        annotations=annotations,
        linux=None if linux is None else _linux(linux),
        raw=r.doc,
        source=r.source,
    )


def _process(r: Reader) -> Process:
    args = r.strings("args")
    if not args:
        raise r.error("args", "must have at least one entry" if "args" in r.doc else "required")
    user = r.need("user")
    console, caps, io = r.child("consoleSize"), r.child("capabilities"), r.child("ioPriority")
    sched: Scheduler | None = None
    rlimits: list[Rlimit] = []
    for i, rl in enumerate(r.children("rlimits")):
        limit = Rlimit(
            rl.choice("type", RLIMITS, "rlimit", required=True),
            rl.integer("hard", U64, required=True),
            rl.integer("soft", U64, required=True),
        )
        if any(seen.type == limit.type for seen in rlimits):
            raise r.error(f"rlimits[{i}].type", f"duplicate rlimit {quote(limit.type)}")
        if limit.soft > limit.hard:
            raise rl.error("soft", f"{limit.soft} is above the hard limit {limit.hard}")
        rlimits.append(limit)
    if (s := r.child("scheduler")) is not None:
        sched = Scheduler(
            policy=s.choice("policy", SCHED_POLICIES, "scheduler policy", required=True),
            nice=s.integer("nice", I32),
            priority=s.integer("priority", I32),
            flags=s.names("flags", SCHED_FLAGS, "scheduler flag"),
            runtime=s.integer("runtime", U64),
            deadline=s.integer("deadline", U64),
            period=s.integer("period", U64),
        )
    return Process(
        terminal=r.boolean("terminal"),
        console_size=None
        if console is None
        else ConsoleSize(
            console.integer("height", U16, required=True), console.integer("width", U16, required=True)
        ),
        user=User(
            uid=user.integer("uid", U32, required=True),
            gid=user.integer("gid", U32, required=True),
            umask=user.opt_integer("umask", (0, 0o7777)),
            additional_gids=user.integers("additionalGids", U32),
            username=user.string("username"),
        ),
        args=args,
        command_line=r.opt_string("commandLine"),
        env=r.strings("env"),
        cwd=r.abspath("cwd", required=True),
        capabilities=None
        if caps is None
        else Capabilities(*(caps.names(k, CAPABILITIES, "capability") for k in _CAP_SETS)),
        rlimits=rlimits,
        no_new_privileges=r.boolean("noNewPrivileges"),
        apparmor_profile=r.string("apparmorProfile"),
        oom_score_adj=r.opt_integer("oomScoreAdj", (-1000, 1000)),
        selinux_label=r.string("selinuxLabel"),
        io_priority=None
        if io is None
        else IOPriority(
            io.choice("class", IOPRIO_CLASSES, "I/O priority class", required=True),
            io.integer("priority", (0, 7), required=True),
        ),
        scheduler=sched,
        exec_cpu_affinity=r.raw("execCPUAffinity"),
    )


_CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def _idmaps(r: Reader, key: str) -> list[IDMapping]:
    return [
        IDMapping(
            m.integer("containerID", U32, True), m.integer("hostID", U32, True), m.integer("size", U32, True)
        )
        for m in r.children(key)
    ]


def _mount(r: Reader) -> Mount:
    return Mount(
        destination=r.abspath("destination", required=True),
        type=r.string("type"),
        source=r.string("source"),
        options=r.strings("options"),
        uid_mappings=_idmaps(r, "uidMappings"),
        gid_mappings=_idmaps(r, "gidMappings"),
    )


_HOOK_KEYS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def _hooks(r: Reader, key: str) -> list[Hook]:
    out = []
    for h in r.children(key):
        timeout = h.opt_integer("timeout", I64)
        if timeout is not None and timeout <= 0:
            raise h.error("timeout", f"must be greater than zero, got {timeout}")
        out.append(Hook(h.abspath("path", required=True), h.strings("args"), h.strings("env"), timeout))
    return out


def _linux(r: Reader) -> Linux:
    namespaces: list[Namespace] = []
    for i, n in enumerate(r.children("namespaces")):
        ns = Namespace(
            n.choice("type", NAMESPACES, "namespace type", required=True), n.abspath("path") or None
        )
        if any(seen.type == ns.type for seen in namespaces):
            raise r.error(f"namespaces[{i}].type", f"duplicate namespace {quote(ns.type)}")
        namespaces.append(ns)
    offsets: dict[str, TimeOffset] = {}
    for key, value in (r.get("timeOffsets", dict) or {}).items():
        where = f"timeOffsets[{quote(key)}]"
        if key not in ("monotonic", "boottime"):
            raise r.error(where, unknown("clock", key, ("monotonic", "boottime")))
        t = Reader(r.typed(where, value, dict), r.at(where), r.source)
        offsets[key] = TimeOffset(t.integer("secs", I64), t.integer("nanosecs", (0, 999_999_999)))
    devices = []
    for d in r.children("devices"):
        kind = d.choice("type", ("c", "b", "u", "p"), "device type", required=True)
        devices.append(
            Device(
                type=kind,
                path=d.abspath("path", required=True),
                major=d.integer("major", I64, required=kind != "p"),
                minor=d.integer("minor", I64, required=kind != "p"),
                file_mode=d.opt_integer("fileMode", U32),
                uid=d.opt_integer("uid", U32),
                gid=d.opt_integer("gid", U32),
            )
        )
    resources, seccomp, personality = r.child("resources"), r.child("seccomp"), r.child("personality")
    if seccomp is not None:
        from hutch.oci.seccomp import parse_seccomp  # off the path of a container without a filter
    return Linux(
        namespaces=namespaces,
        uid_mappings=_idmaps(r, "uidMappings"),
        gid_mappings=_idmaps(r, "gidMappings"),
        time_offsets=offsets,
        devices=devices,
        cgroups_path=r.string("cgroupsPath"),
        resources=None if resources is None else parse_resources(resources),
        rootfs_propagation=r.choice("rootfsPropagation", ROOTFS_PROPAGATIONS, "propagation"),
        masked_paths=r.abspaths("maskedPaths"),
        readonly_paths=r.abspaths("readonlyPaths"),
        mount_label=r.string("mountLabel"),
        sysctl=r.string_map("sysctl"),
        seccomp=None if seccomp is None else parse_seccomp(seccomp),
        personality=None
        if personality is None
        else Personality(
            personality.choice("domain", PERSONALITY_DOMAINS, "personality domain", required=True),
            personality.strings("flags"),
        ),
        intel_rdt=r.raw("intelRdt"),
        net_devices=r.raw("netDevices"),
    )
