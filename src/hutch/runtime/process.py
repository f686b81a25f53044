"""Turning the runtime process into the spec's `process`: limits, identity, capabilities, then exec.

Shared by a container's init and by `exec`; each step raises an error that names the spec field.
"""

import os

from hutch.errors import HostError, HutchError
from hutch.linux import caps, prctl, rlimit
from hutch.oci.config import (
    CAPABILITIES,
    IOPRIO_CLASSES,
    PERSONALITY_DOMAINS,
    RLIMITS,
    SCHED_FLAGS,
    SCHED_POLICIES,
    Capabilities,
    Process,
)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def set_rlimits(proc: Process) -> None:
    for i, rl in enumerate(proc.rlimits):
        try:
            rlimit.set_limit(RLIMITS[rl.type], rl.soft, rl.hard)
        except OSError as e:
            _, host_hard = rlimit.get_limit(RLIMITS[rl.type])
            raise HostError(
                f"process.rlimits[{i}]: cannot set {rl.type} to soft {rl.soft}, hard {rl.hard}"
                f" (this host allows a hard limit of at most {host_hard}): {os.strerror(e.errno or 0)}"
            ) from None


def set_oom_score_adj(value: int, pid: str = "self") -> None:
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as e:
        raise HostError(f"process.oomScoreAdj: cannot set {value}: {e.strerror}") from None


def set_scheduling(proc: Process) -> None:
    """I/O priority and CPU scheduler, both optional."""
    if proc.io_priority is not None:
        io = proc.io_priority
        try:  # names were checked when config.json was parsed
            prctl.ioprio_set(IOPRIO_CLASSES[io.class_], io.priority)
        except OSError as e:
            raise HostError(f"process.ioPriority: {e.strerror}") from None
    if proc.scheduler is not None:
        s = proc.scheduler
        policy = SCHED_POLICIES[s.policy]
        flags = 0
        for name in s.flags:
            flags |= SCHED_FLAGS[name]
        try:
            prctl.sched_setattr(
                policy, flags, s.nice or 0, s.priority or 0, s.runtime or 0, s.deadline or 0, s.period or 0
            )
        except OSError as e:
            raise HostError(f"process.scheduler: {e.strerror}") from None


def set_personality(domain: str) -> None:
    prctl.personality(PERSONALITY_DOMAINS[domain])  # the name was checked when config.json was parsed


def cap_mask(names: list[str], last: int) -> int:
    mask = 0
    for name in names:
        num = CAPABILITIES[name]
        if num <= last:  # a capability this kernel does not know is left out, as runc does
            mask |= 1 << num
    return mask


def become_user(proc: Process, setgroups: bool | None = None) -> None:
    """Drop the bounding set, switch uid and gids, then set the other capability sets.

    `setgroups`: whether setgroups(2) is allowed, as setgroups_allowed() said before entering the
    container's mount namespace (read now when None)."""
    c = proc.capabilities or Capabilities([], [], [], [], [])
    last = caps.last_cap()
    bounding = cap_mask(c.bounding, last)
    permitted = cap_mask(c.permitted, last)
    _, have, _ = caps.capget()
    missing = (bounding | permitted) & ~have
    if missing:
        names = [n for n, v in CAPABILITIES.items() if missing & (1 << v)]
        raise HostError(f"process.capabilities: the runtime itself lacks {', '.join(names)}")
    user = proc.user
    prctl.prctl(prctl.PR_SET_KEEPCAPS, 1)
    caps.drop_bounding(bounding, last)
    try:
        if setgroups_allowed() if setgroups is None else setgroups:
            os.setgroups(user.additional_gids)
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)
    except (OSError, ValueError) as e:  # ValueError: more additionalGids than the kernel takes
        raise HutchError(
            f"process.user: cannot switch to uid {user.uid} gid {user.gid}: {getattr(e, 'strerror', None) or e}"
        ) from None
    prctl.prctl(prctl.PR_SET_KEEPCAPS, 0)
    inheritable = cap_mask(c.inheritable, last)
    caps.capset(cap_mask(c.effective, last), permitted, inheritable)
    # The kernel raises an ambient capability only if it is permitted and inheritable; runc skips the others
    # with a warning (its default spec lists ambient ones that are not inheritable), and so do we.
    caps.set_ambient(cap_mask(c.ambient, last) & permitted & inheritable, last)
    if user.umask is not None:
        os.umask(user.umask)
    else:
        os.umask(0o022)


def setgroups_allowed() -> bool:
    """Whether /proc/self/setgroups allows setgroups(2) (it is "deny" in some user namespaces)."""
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except FileNotFoundError:
        return True


def environ(proc: Process) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in proc.env:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    return env


def find_executable(proc: Process, env: dict[str, str]) -> str:
    """The path that will be exec'd, looked up in the container's PATH as runc does."""
    if not proc.args:
        raise HutchError("process.args: must not be empty")
    name = proc.args[0]
    if "/" in name:
        if not os.path.exists(name):
            raise HutchError(f'exec: "{name}": no such file or directory')
        return name
    for d in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise HutchError(f'exec: "{name}": executable file not found in $PATH')


def enter_cwd(cwd: str) -> None:
    """Enter (making it if needed) `cwd`; called inside the container, where `/` is its rootfs, so a symlink
    on the way resolves inside it, and a dangling one has its target made there (runc 1.1 fails on that)."""
    try:
        try:
            os.chdir(cwd)
            return
        except FileNotFoundError:
            pass
        where = os.path.realpath(cwd)
        os.makedirs(where, 0o755, exist_ok=True)
        os.chdir(where)
    except OSError as e:
        raise HutchError(f"process.cwd: cannot enter {cwd}: {e.strerror}") from None
