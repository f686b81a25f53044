"""The security flags of `run`/`create`, as podman reads them: --cap-add/--cap-drop, --privileged,
--security-opt, --device (hutch.engine.devices), --sysctl and --group-add (hutch.engine.groups); each parsed
at the edge, errors naming the flag."""

from __future__ import annotations

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field

# Sysctls a container may set (podman's list: namespaced by ipc, or by net when it has its own network).
_IPC_SYSCTLS = (
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
    "kernel.shmmni", "kernel.shm_rmid_forced",
)  # fmt: skip


@dataclass(slots=True)
class SecurityOpts:
    """--security-opt, parsed: seccomp, no-new-privileges, mask and unmask."""

    seccomp: str = "default"  # "default", "unconfined" or a profile path
    no_new_privileges: bool = False
    mask: list[str] = field(default_factory=list)
    unmask: list[str] = field(default_factory=list)  # ["ALL"] unmasks every path
    label_disable: bool = False


def cap_name(text: str, flag: str) -> str:
    """`sys_admin`, `CAP_SYS_ADMIN` or `ALL` as podman takes them; an unknown name is an error."""
    from hutch.oci.config import CAPABILITIES

    name = text.strip().upper()
    if name == "ALL":
        return name
    if not name.startswith("CAP_"):
        name = "CAP_" + name
    if name not in CAPABILITIES:
        raise ConfigError(f"{flag} {text!r}: unknown capability")
    return name


def capabilities(default: tuple[str, ...], add: list[str], drop: list[str], privileged: bool) -> list[str]:
    """The bounding set: podman's defaults (or every capability with --privileged), --cap-drop, --cap-add.
    As in podman, dropping ALL and adding some keeps only those; adding ALL wins over any drop."""
    from hutch.oci.config import CAPABILITIES

    adds = [cap_name(c, "--cap-add") for c in add]
    drops = [cap_name(c, "--cap-drop") for c in drop]
    if privileged or "ALL" in adds:
        bounding = _host_bounding()
        caps = [
            c for c in sorted(CAPABILITIES, key=CAPABILITIES.__getitem__) if bounding >> CAPABILITIES[c] & 1
        ]
    else:
        caps = list(default)
    caps = [] if "ALL" in drops else [c for c in caps if c not in drops]
    caps += [c for c in dict.fromkeys(adds) if c != "ALL" and c not in caps]
    return caps


def _host_bounding() -> int:
    """The engine's own bounding set: --privileged gives what podman has, which on some hosts (a sandbox
    without CAP_SYS_RESOURCE) is not every capability the kernel knows."""
    try:
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("CapBnd:"))
        return int(line.split()[1], 16)
    except (OSError, StopIteration, ValueError):
        return (1 << 64) - 1


def security_opts(texts: list[str]) -> SecurityOpts:
    """--security-opt values: seccomp=unconfined|PROFILE, no-new-privileges[=true|false], mask=PATHS,
    unmask=ALL|PATHS, label=disable (labels are accepted: this host has no SELinux), apparmor=..."""
    out = SecurityOpts()
    for text in texts:
        key, sep, value = text.partition("=")
        if key == "no-new-privileges" and value in ("", "true", "false"):
            out.no_new_privileges = value != "false"
        elif key == "seccomp" and value:
            out.seccomp = value
        elif key in ("mask", "unmask") and value:
            paths = [p for p in value.split(":") if p]
            for p in paths:
                if p != "ALL" and not p.startswith("/"):
                    raise ConfigError(f"--security-opt {text!r}: {p!r} is not an absolute path")
            getattr(out, key).extend(paths)
        elif key == "label" and sep:
            out.label_disable = out.label_disable or value == "disable"
        elif key == "apparmor" and value:
            pass  # this host runs no AppArmor profile for containers
        else:
            raise ConfigError(
                f"--security-opt {text!r}: expected seccomp=, no-new-privileges, mask=, unmask=, label= "
                "or apparmor="
            )
    return out


def masked_paths(default: tuple[str, ...], sec: SecurityOpts, privileged: bool) -> list[str]:
    if privileged or "ALL" in sec.unmask:
        return list(sec.mask)
    return [p for p in default if p not in sec.unmask] + [p for p in sec.mask if p not in default]


def sysctls(texts: list[str], network: str, ipc: str) -> dict[str, str]:
    """--sysctl NAME=VALUE: only namespaced sysctls, as podman allows them."""
    out: dict[str, str] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise ConfigError(f"--sysctl {text!r}: expected NAME=VALUE")
        name = name.replace("/", ".")
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if ipc == "host":
                raise ConfigError(f"--sysctl {text!r}: not allowed with the host's IPC namespace")
        elif name.startswith("net."):
            if network == "host":
                raise ConfigError(f"--sysctl {text!r}: not allowed with the host's network namespace")
        else:
            raise ConfigError(f"--sysctl {text!r}: sysctl {name!r} is not allowed (not namespaced)")
        out[name] = value
    return out
