"""The flags of `hutch run`/`create` beyond the basics, with podman's names, and their parsing into the
engine's Options (each bad value one error naming the flag): mounts, security, resources, namespaces, cgroups,
network, healthcheck and the monitor's (--runtime, --restart, --log-driver); `update`'s resource flags."""

from __future__ import annotations

import os

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.engine.network.plan import NetOptions
    from hutch.engine.resources import ResourceFlags
    from hutch.engine.spec import Options

_RESOURCE_FLAGS = (
    ("-m", "--memory", "memory limit (such as 512m, 1g)"),
    ("--memory-swap", None, "memory plus swap limit (-1: unlimited swap)"),
    ("--memory-reservation", None, "memory soft limit"),
    ("--cpus", None, "number of CPUs (such as 1.5)"),
    ("-c", "--cpu-shares", "CPU shares (relative weight)"),
    ("--cpu-quota", None, "CPU CFS quota in microseconds"),
    ("--cpu-period", None, "CPU CFS period in microseconds"),
    ("--cpuset-cpus", None, "CPUs to run on (0-3, 0,1)"),
    ("--cpuset-mems", None, "memory nodes to use (0-3, 0,1)"),
    ("--pids-limit", None, "maximum number of processes (default 2048; -1 unlimited)"),
)
_RESOURCE_DESTS = tuple(
    (second or first).lstrip("-").replace("-", "_") for first, second, _ in _RESOURCE_FLAGS
)
# The flags of _cgroup_flags that hutch.engine.cgroupflags.FLAGS names (a unit test keeps the two equal).
_CGROUP_DESTS = (
    "blkio_weight", "blkio_weight_device", "device_read_bps", "device_write_bps",
    "device_read_iops", "device_write_iops", "memory_swappiness", "cpu_rt_runtime", "cpu_rt_period",
)  # fmt: skip


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    import argparse

    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def add_resource_flags(c: argparse.ArgumentParser) -> None:
    for first, second, text in _RESOURCE_FLAGS:
        c.add_argument(*(f for f in (first, second) if f), help=text)


def add(c: argparse.ArgumentParser) -> None:
    """The flags, added to run's and create's parsers."""
    c.add_argument(
        "--env-file",
        action="append",
        default=[],
        metavar="FILE",
        help="read env vars from a file (KEY=VALUE lines)",
    )
    c.add_argument(
        "-l", "--label", action="append", default=[], metavar="KEY=VALUE", help="set a label on the container"
    )
    c.add_argument(
        "--annotation",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add an annotation to the OCI spec",
    )
    c.add_argument(
        "--group-add", action="append", default=[], metavar="GROUP", help="an additional group (name or gid)"
    )
    c.add_argument("--stop-signal", help="the signal that stops the container (default SIGTERM)")
    c.add_argument("--stop-timeout", type=int, help="seconds to wait before killing the container on stop")
    c.add_argument(
        "-v", "--volume", action="append", default=[], metavar="[SRC:]DST[:OPTS]", help="bind mount or volume"
    )
    c.add_argument(
        "--mount", action="append", default=[], metavar="type=...,...", help="bind, volume or tmpfs mount"
    )
    c.add_argument("--tmpfs", action="append", default=[], metavar="DST[:OPTS]", help="mount a tmpfs")
    c.add_argument(
        "--read-only-tmpfs", type=_bool, nargs="?", const=True, default=True,
        help="with --read-only, tmpfs on /run, /tmp, /var/tmp (default true)",
    )  # fmt: skip
    c.add_argument("--cap-add", action="append", default=[], metavar="CAP", help="add a capability (or ALL)")
    c.add_argument(
        "--cap-drop", action="append", default=[], metavar="CAP", help="drop a capability (or ALL)"
    )
    c.add_argument("--privileged", action="store_true", help="every capability and device, no confinement")
    c.add_argument(
        "--security-opt",
        action="append",
        default=[],
        help="seccomp=unconfined|PROFILE, no-new-privileges, mask=, unmask=, label=",
    )
    c.add_argument(
        "--sysctl", action="append", default=[], metavar="NAME=VALUE", help="set a namespaced sysctl"
    )
    c.add_argument("--shm-size", help="size of /dev/shm (default 64m)")
    c.add_argument(
        "--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]", help="set a resource limit"
    )
    c.add_argument(
        "--device", action="append", default=[], metavar="HOST[:CONTAINER][:PERMS]", help="add a host device"
    )
    add_resource_flags(c)
    c.add_argument("--oom-score-adj", type=int, help="the OOM score adjustment (-1000 to 1000)")
    c.add_argument("--init", action="store_true", help="run catatonit as PID 1 to reap zombies")
    c.add_argument("--cgroupns", default="", help="host or private")
    c.add_argument("--ipc", default="", help="host, private, shareable, none or container:ID")
    c.add_argument("--uts", default="", help="host, private or container:ID")
    c.add_argument("--pid", default="", help="host, private or container:ID")
    _cgroup_flags(c)
    c.add_argument("--personality", help="the execution domain: LINUX or LINUX32")
    c.add_argument("--umask", help="the umask of the container's process (octal, default 0022)")
    c.add_argument("--no-hosts", action="store_true", help="keep the image's /etc/hosts")
    c.add_argument("--env-host", action="store_true", help="the host's environment in the container")


def _cgroup_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "--device-cgroup-rule", action="append", default=[], metavar="'TYPE MAJ:MIN ACCESS'",
        help="allow devices in the device cgroup (c 10:229 rw)",
    )  # fmt: skip
    c.add_argument("--blkio-weight", help="block I/O weight (10 to 1000)")
    for name, metavar, text in (
        ("blkio-weight-device", "DEVICE:WEIGHT", "a device's block I/O weight"),
        ("device-read-bps", "DEVICE:RATE", "limit reads from a device (bytes per second)"),
        ("device-write-bps", "DEVICE:RATE", "limit writes to a device (bytes per second)"),
        ("device-read-iops", "DEVICE:RATE", "limit reads from a device (I/Os per second)"),
        ("device-write-iops", "DEVICE:RATE", "limit writes to a device (I/Os per second)"),
    ):
        c.add_argument(f"--{name}", action="append", default=[], metavar=metavar, help=text)
    c.add_argument("--memory-swappiness", type=int, help="the memory's swappiness (0 to 100)")
    c.add_argument("--cpu-rt-runtime", type=int, help="real-time runtime in microseconds per period")
    c.add_argument("--cpu-rt-period", type=int, help="real-time period in microseconds")
    c.add_argument("--cgroup-parent", default="", help="the cgroup under which the container's is made")
    c.add_argument("--cgroups", default="enabled", help="enabled (default) or no-conmon")


def resource_flags(args: argparse.Namespace) -> ResourceFlags:
    from hutch.engine.resources import ResourceFlags

    return ResourceFlags(**{n: getattr(args, n) for n in _RESOURCE_DESTS})


def apply(opts: Options, args: argparse.Namespace) -> Options:
    """Fill `opts` (the basics set by cli.containers) from run's or create's parsed flags."""
    opts.env = [*_env_files(args.env_file), *opts.env]
    opts.labels = _pairs(args.label, "--label")
    opts.annotations = _pairs(args.annotation, "--annotation")
    opts.group_add = list(args.group_add)
    opts.stop_timeout = args.stop_timeout
    opts.read_only_tmpfs = args.read_only and args.read_only_tmpfs
    opts.cap_add, opts.cap_drop = list(args.cap_add), list(args.cap_drop)
    opts.privileged = args.privileged
    opts.sysctls = list(args.sysctl)
    opts.oom_score_adj = args.oom_score_adj
    opts.init = args.init
    if args.stop_signal:
        opts.stop_signal = _signal(args.stop_signal)
    if args.stop_timeout is not None and args.stop_timeout < 0:
        raise HutchError(f"--stop-timeout {args.stop_timeout}: must not be negative")
    _security(opts, args.security_opt)
    _mounts(opts, args)
    _limits(opts, args)
    _namespaces(opts, args)
    _more(opts, args)
    return opts


def _more(opts: Options, args: argparse.Namespace) -> None:
    """The cgroup flags, --personality, --umask, --no-hosts, --env-host."""
    given = any(getattr(args, n) not in (None, []) for n in _CGROUP_DESTS)
    if given or args.device_cgroup_rule or args.cgroups != "enabled" or args.cgroup_parent:
        _cgroups(opts, args)  # none given (run's usual case): nothing to check nor set
    if args.personality:
        domain = args.personality.upper()
        if domain not in ("LINUX", "LINUX32"):
            raise HutchError(f"--personality {args.personality!r}: expected LINUX or LINUX32")
        opts.personality = domain
    if args.umask is not None:
        try:
            opts.umask = int(args.umask, 8)
        except ValueError:
            opts.umask = -1
        if not 0 <= opts.umask <= 0o777:
            raise HutchError(f"--umask {args.umask!r}: expected an octal mask such as 0022")
    opts.no_hosts, opts.env_host = args.no_hosts, args.env_host
    if args.no_hosts and getattr(args, "add_host", None):
        raise HutchError("--no-hosts and --add-host cannot be set together")


def _cgroups(opts: Options, args: argparse.Namespace) -> None:
    """The cgroup flags of hutch.engine.cgroupflags."""
    from hutch.engine import cgroupflags as cf

    flags = cf.CgroupFlags(**{n: getattr(args, n) for n in cf.FLAGS})
    cf.merge(opts.resources, cf.resources(flags))
    if args.device_cgroup_rule:
        from hutch.engine.devices import device_rule

        opts.device_rules += [device_rule(t) for t in args.device_cgroup_rule]
    cf.cgroups_mode(args.cgroups)
    if args.cgroup_parent:
        opts.cgroup_parent = cf.cgroup_parent(args.cgroup_parent)


def _env_files(paths: list[str]) -> list[str]:
    """--env-file: KEY=VALUE lines (# comments and blank lines skipped; a bare KEY takes the host's)."""
    out = []
    for path in paths:
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            raise HutchError(f"--env-file {path!r}: {e.strerror or e}") from None
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("="):
                raise HutchError(f"--env-file {path!r}: line {n}: the variable name is empty")
            out.append(line)
    return out


def _pairs(texts: list[str], flag: str) -> dict[str, str]:
    out = {}
    for text in texts:
        key, _, value = text.partition("=")
        if not key:
            raise HutchError(f"{flag} {text!r}: the key is empty")
        out[key] = value
    return out


def _signal(text: str) -> str:
    """--stop-signal as podman shows it: SIGNAME (a number is named where it has one)."""
    from hutch.linux import signals
    from hutch.runtime.lifecycle import parse_signal

    try:
        num = parse_signal(text)
    except HutchError:
        num = 0
    if num == 0:
        raise HutchError(f"--stop-signal {text!r}: unknown signal")
    if not text.isdigit():
        return "SIG" + text.upper().removeprefix("SIG")
    name = next((n for n, v in signals.NUMBERS.items() if v == num), None)
    return f"SIG{name}" if name else text


def _security(opts: Options, texts: list[str]) -> None:
    from hutch.engine import security

    sec = security.security_opts(texts)
    opts.seccomp = sec.seccomp
    opts.no_new_privileges = sec.no_new_privileges
    opts.mask, opts.unmask = sec.mask, sec.unmask
    for cap in opts.cap_add:
        security.cap_name(cap, "--cap-add")
    for cap in opts.cap_drop:
        security.cap_name(cap, "--cap-drop")


def _mounts(opts: Options, args: argparse.Namespace) -> None:
    if not (args.volume or args.mount or args.tmpfs):
        return
    from hutch.engine import mountflags, mounts

    specs = [mountflags.parse_volume(v) for v in args.volume]
    specs += [mountflags.parse_mount(m) for m in args.mount]
    specs += [mountflags.parse_tmpfs(t) for t in args.tmpfs]
    mounts.check_unique(specs)
    for s in specs:
        if s.type == "bind" and not os.path.exists(s.source):
            raise HutchError(f"{s.flag}: statfs {s.source}: no such file or directory")
    opts.mounts = specs


def _limits(opts: Options, args: argparse.Namespace) -> None:
    if all(getattr(args, n) is None for n in _RESOURCE_DESTS) and not (
        args.ulimit or args.shm_size or args.device
    ):
        return  # none given (run's usual case): the engine's defaults (its pids limit) stand
    from hutch.engine import resources

    flags = resource_flags(args)
    defaults = opts.resources  # the engine's: podman's pids limit
    opts.resources = resources.resources(flags)
    if flags.pids_limit is None and "pids" in defaults:
        opts.resources["pids"] = defaults["pids"]
    if args.ulimit:
        from hutch.engine.ulimits import ulimit

        opts.ulimits = [ulimit(u) for u in args.ulimit]
    if args.shm_size:
        opts.shm_size = resources.shm_size(args.shm_size)
    if args.device:
        from hutch.engine.devices import device
    for text in args.device:
        devices, rules = device(text)
        opts.devices += devices
        opts.device_rules += rules
        opts.device_flags.append(text)


def _namespaces(opts: Options, args: argparse.Namespace) -> None:
    from hutch.engine.specflags import namespace_mode

    opts.pid = namespace_mode(args.pid, "--pid", ("private", "host"))
    opts.ipc = namespace_mode(args.ipc, "--ipc", ("private", "shareable", "none", "host"))
    opts.uts = namespace_mode(args.uts, "--uts", ("private", "host"))
    opts.cgroupns = namespace_mode(args.cgroupns, "--cgroupns", ("private", "host"))


# --- the network flags ---------------------------------------------------------------------------------


def add_network_flags(c: argparse.ArgumentParser) -> None:
    """run/create: --network and the flags that go with it."""
    c.add_argument(
        "--network",
        "--net",
        dest="networks",
        action="append",
        default=[],
        metavar="NETWORK",
        help="bridge (default), NAME[,NAME...], none, host, container:ID, ns:PATH",
    )
    c.add_argument("--ip", default="", help="the container's IPv4 address on its network")
    c.add_argument("--mac-address", default="", help="the container's MAC address on its network")
    c.add_argument("-p", "--publish", action="append", default=[], help="[hostip:][hostport:]ctrport[/proto]")
    c.add_argument("-P", "--publish-all", action="store_true", help="publish every EXPOSEd port")
    c.add_argument("--add-host", action="append", default=[], metavar="HOST:IP", help="an /etc/hosts entry")
    c.add_argument("--dns", action="append", default=[], help="a DNS server for /etc/resolv.conf")
    c.add_argument("--dns-search", action="append", default=[], help="a DNS search domain")
    c.add_argument("--dns-option", "--dns-opt", action="append", default=[], help="a resolv.conf option")
    c.add_argument("--network-alias", action="append", default=[], help="another name on the network")
    c.add_argument("--pod", default="", help="join this pod (its infra container's namespaces)")


def network_mode(args: argparse.Namespace) -> str:
    """--network, repeatable: the values joined with commas (several networks at once); bridge by default."""
    return ",".join(args.networks or ()) or "bridge"


def net_options(args: argparse.Namespace) -> NetOptions:
    from hutch.engine.network.plan import NetOptions

    return NetOptions(
        ip=args.ip,
        mac=args.mac_address,
        publish=list(args.publish),
        publish_all=args.publish_all,
        add_hosts=list(args.add_host),
        dns=list(args.dns),
        dns_search=list(args.dns_search),
        dns_options=list(args.dns_option),
        aliases=list(args.network_alias),
        pod=args.pod,
    )


# --- the healthcheck flags -----------------------------------------------------------------------------


def add_health_flags(c: argparse.ArgumentParser) -> None:
    """run's and create's healthcheck flags (each replaces that field of the image's healthcheck)."""
    c.add_argument("--health-cmd", metavar="COMMAND", help="the check: a shell command, or a JSON array")
    c.add_argument("--health-interval", metavar="DURATION", help="time between checks (default 30s)")
    c.add_argument("--health-retries", type=int, metavar="N", help="failures before unhealthy (default 3)")
    c.add_argument("--health-timeout", metavar="DURATION", help="time a check may take (default 30s)")
    c.add_argument("--health-start-period", metavar="DURATION", help="failures within it do not count")
    c.add_argument("--no-healthcheck", action="store_true", help="no healthcheck, not even the image's")


def health_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The healthcheck flags given, as hutch.engine.health.resolve takes them."""
    names = ("cmd", "interval", "retries", "timeout", "start_period")
    given = {name: getattr(args, f"health_{name}") for name in names}
    return {**given, "disabled": bool(args.no_healthcheck)}


# --- the monitor's flags: checked before anything is made, kept in the container's config JSON ------------


def add_monitor_flags(c: argparse.ArgumentParser) -> None:
    """run/create: --runtime and --restart."""
    c.add_argument("--runtime", default="", help="hutch (default, in-process), runc, crun, runsc or a PATH")
    c.add_argument("--restart", default="", help="no, on-failure[:N], always or unless-stopped")
    c.add_argument("--log-driver", default="", help="k8s-file (default), none or passthrough")
    c.add_argument("--log-opt", action="append", default=[], metavar="max-size=N", help="log options")


def checked_options(args: argparse.Namespace) -> dict[str, object]:
    """--runtime and --restart, checked before anything is created: the config JSON fields they set."""
    fields: dict[str, object] = {}
    if getattr(args, "runtime", ""):  # none given: hutch's own (nothing recorded, nothing imported)
        from hutch.engine import runtimes

        fields["OCIRuntime"] = runtimes.resolve(args.runtime).name
    if getattr(args, "restart", ""):
        from hutch.engine import restart

        policy = restart.parse(args.restart)
        if policy["Name"] and getattr(args, "rm", False):
            raise HutchError(
                'the --rm option conflicts with --restart, when the restartPolicy is not "" and "no"'
            )
        fields["RestartPolicy"] = policy
    if getattr(args, "tty", False) and getattr(args, "detach_keys", None) is not None:
        from hutch.engine import attach

        attach.parse_detach_keys(args.detach_keys)  # run -t attaches (cli/runattach.py): checked first
    if getattr(args, "log_driver", "") or getattr(args, "log_opt", []):
        from hutch.engine import logwriter

        fields.update(logwriter.parse_flags(args.log_driver, args.log_opt, getattr(args, "detach", False)))
    return fields


def record_options(engine: Engine, rec: Record, fields: dict[str, object]) -> None:
    """Add the checked --runtime/--restart fields to the container's config JSON."""
    if not fields:
        return
    from hutch import jsonfast
    from hutch.engine.monitor import config_of

    cfg = config_of(rec)
    cfg.update(fields)
    rec.config = jsonfast.dumps(cfg)
    engine.db.update(rec.id, config=rec.config)
