"""The resource commands of `hutch-runtime`, as runc has them: pause, resume, update, ps, events.

`register` adds them to the command line; each handler loads the container and calls the cgroups library.
"""

from __future__ import annotations

import os
import sys
import time

from hutch.errors import HutchError, StateError
from hutch.runtime.args import Command

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import SimpleNamespace

    from hutch.oci.resources import Resources
    from hutch.runtime.container import Container

# update's per-field flags: (flag, JSON section, JSON key, kind). runc spells it --cpu-share; --cpu-shares too.
UPDATE_FLAGS: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (("--memory",), "memory", "limit", "bytes"),
    (("--memory-reservation",), "memory", "reservation", "bytes"),
    (("--memory-swap",), "memory", "swap", "bytes"),
    (("--kernel-memory",), "memory", "kernel", "bytes"),
    (("--kernel-memory-tcp",), "memory", "kernelTCP", "bytes"),
    (("--cpu-share", "--cpu-shares"), "cpu", "shares", "uint"),
    (("--cpu-period",), "cpu", "period", "uint"),
    (("--cpu-quota",), "cpu", "quota", "int"),
    (("--cpu-burst",), "cpu", "burst", "uint"),
    (("--cpu-rt-period",), "cpu", "realtimePeriod", "uint"),
    (("--cpu-rt-runtime",), "cpu", "realtimeRuntime", "int"),
    (("--cpu-idle",), "cpu", "idle", "int"),
    (("--cpuset-cpus",), "cpu", "cpus", "str"),
    (("--cpuset-mems",), "cpu", "mems", "str"),
    (("--pids-limit",), "pids", "limit", "int"),
    (("--blkio-weight",), "blockIO", "weight", "uint"),
)


def register(p: Command) -> None:
    """Add pause, resume, update, ps and events to the root command."""
    p.command("pause", "suspend every process of a container", _pause).arg("id")
    p.command("resume", "resume a paused container", _resume).arg("id")
    up = p.command("update", "change the resource limits of a running container", _update)
    up.flag("-r", "--resources", help="JSON file of linux.resources to apply ('-' reads stdin)")
    for names, _section, key, _kind in UPDATE_FLAGS:
        up.flag(*names, help=f"linux.resources {key}")
    up.flag("--l3-cache-schema", help="Intel RDT L3 cache schema (not supported)")
    up.flag("--mem-bw-schema", help="Intel RDT memory bandwidth schema (not supported)")
    up.arg("id")
    ps = p.command("ps", "list the processes of a container: ps [--format table|json] ID [PS ARGS]", _ps)
    ps.flag("-f", "--format", default="table", choices=("table", "json"))
    ps.arg("args", "rest")
    ev = p.command("events", "print resource usage (and OOM events) of a container as JSON", _events)
    ev.flag("--stats", kind="bool", help="print the stats once and exit")
    ev.flag("--interval", default="5s", help="time between stats (default 5s)")
    ev.arg("id")


def _load(args: SimpleNamespace) -> Container:
    from hutch.runtime import container

    return container.load(args.root, args.id)


# --- pause, resume ---


def _pause(args: SimpleNamespace) -> int:
    from hutch.runtime.cgroups import freezer

    c = _load(args)
    status = c.status()
    if status not in ("running", "created"):  # runc pauses a created container too
        raise StateError(f"cannot pause container {c.id}: it is {status}, not running")
    freezer.pause(c.cgroup)
    return 0


def _resume(args: SimpleNamespace) -> int:
    from hutch.runtime import cgroups
    from hutch.runtime.cgroups import freezer

    c = _load(args)
    status = c.status()
    # A created container that was paused still says "created" (its fifo comes first): ask the freezer.
    if status == "stopped" or not cgroups.is_frozen(c.cgroup, strict=False):
        raise StateError(f"cannot resume container {c.id}: it is {status}, not paused")
    freezer.resume(c.cgroup)
    return 0


# --- update ---


def parse_bytes(text: str, flag: str) -> int:
    """A size as runc's flags take it (docker's RAMInBytes): 1024, 512k, 100m, 1.5g, 2GiB; -1 is unlimited."""
    s = text.strip()
    if s == "-1":
        return -1
    i = 0
    while i < len(s) and (s[i].isdigit() or s[i] == "."):
        i += 1
    number, unit = s[:i], s[i:].strip().lower()
    unit = unit.removesuffix("b")
    unit = unit.removesuffix("i")
    multiplier = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}.get(unit)
    if not number or number.count(".") > 1 or number in (".",) or multiplier is None:
        raise HutchError(f"update: {flag} {text!r}: expected a size such as 1048576, 512k, 100m or 1g")
    return int(float(number) * multiplier) if "." in number else int(number) * multiplier


def _flag_value(text: str, flag: str, kind: str) -> object:
    if kind == "str":
        return text
    if kind == "bytes":
        return parse_bytes(text, flag)
    try:
        value = int(text)
    except ValueError:
        raise HutchError(f"update: {flag} {text!r}: expected an integer") from None
    if kind == "uint" and value < 0:
        raise HutchError(f"update: {flag} {text!r}: must not be negative")
    return value


def resources_from_args(args: SimpleNamespace) -> Resources:
    """linux.resources from --resources (a file or '-'), or else from the per-field flags."""
    from hutch import jsonfast
    from hutch.oci.reader import Reader
    from hutch.oci.resources import parse_resources

    if args.resources:
        source = "--resources " + args.resources
        try:
            text = sys.stdin.read() if args.resources == "-" else open(args.resources).read()  # noqa: SIM115
        except OSError as e:
            raise HutchError(f"update: {source}: {e.strerror}") from None
        try:
            doc = jsonfast.loads(text)
        except ValueError as e:
            raise HutchError(f"update: {source}: invalid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise HutchError(f"update: {source}: expected a JSON object (linux.resources)")
    else:
        doc = {}
        for names, section, key, kind in UPDATE_FLAGS:
            text = getattr(args, max(names, key=len).lstrip("-").replace("-", "_"))
            if text is not None:
                doc.setdefault(section, {})[key] = _flag_value(text, names[0], kind)
        source = "update flags"
    if args.l3_cache_schema or args.mem_bw_schema:
        raise HutchError("update: Intel RDT (--l3-cache-schema, --mem-bw-schema) is not enabled on this host")
    return parse_resources(Reader(doc, "", source))


def _update(args: SimpleNamespace) -> int:
    from hutch.runtime import cgroups

    c = _load(args)
    status = c.status()
    if status == "stopped":
        raise StateError(f"cannot update container {c.id}: it is stopped")
    cgroups.update(c.cgroup, resources_from_args(args))
    return 0


# --- ps ---


def ps_table(output: str, pids: set[int]) -> str:
    """Keep ps's header and the lines of `pids`, found in the PID column."""
    lines = output.splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    if "PID" not in header:
        raise HutchError("ps: the ps output has no PID column")
    index = header.index("PID")
    kept = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > index and fields[index].isdigit() and int(fields[index]) in pids:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _ps(args: SimpleNamespace) -> int:
    from hutch import jsonfast
    from hutch.runtime import lifecycle

    if not args.args:
        raise HutchError("hutch-runtime ps: missing argument ID")
    args.id, ps_args = args.args[0], args.args[1:]
    c = _load(args)
    pids = lifecycle.container_pids(c) if c.status() != "stopped" else []
    if args.format == "json":
        sys.stdout.write(jsonfast.dumps(pids) + "\n")
        return 0
    import subprocess

    try:
        out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise HutchError("ps: the ps command is not installed (procps)") from None
    if out.returncode != 0:
        raise HutchError(
            f"ps {' '.join(ps_args or ['-ef'])}: {out.stderr.strip() or f'exit {out.returncode}'}"
        )
    sys.stdout.write(ps_table(out.stdout, set(pids)))
    return 0


# --- events ---


def parse_duration(text: str) -> float:
    """A Go duration as runc's --interval takes it: 5s, 500ms, 1m30s, 1.5s; seconds."""
    from hutch import duration

    try:
        total = duration.parse_seconds(text)
    except ValueError as e:
        raise HutchError(f"events: --interval {text!r}: {e}") from None
    if total <= 0:
        raise HutchError(f"events: --interval {text!r}: must be positive")
    return total


def _emit(kind: str, container_id: str, data: object = None) -> None:
    from hutch import jsonfast

    event: dict[str, object] = {"type": kind, "id": container_id}
    if data is not None:
        event["data"] = data
    sys.stdout.write(jsonfast.dumps(event) + "\n")
    sys.stdout.flush()


def _events(args: SimpleNamespace) -> int:
    from hutch.runtime import cgroups
    from hutch.runtime.cgroups import stats

    c = _load(args)
    if not cgroups.directories(c.cgroup) or not any(os.path.isdir(d) for d in cgroups.directories(c.cgroup)):
        raise StateError(f"events: container {c.id} has no cgroup")
    if args.stats:
        _emit("stats", c.id, stats.read(c.cgroup))
        return 0
    interval = parse_duration(args.interval)
    if c.status() == "stopped":
        raise StateError(f"events: container {c.id} is not running")
    ooms = stats.oom_kills(c.cgroup)
    next_stats = time.monotonic()
    while c.status() != "stopped":
        now = time.monotonic()
        if now >= next_stats:
            _emit("stats", c.id, stats.read(c.cgroup))
            next_stats = now + interval
        count = stats.oom_kills(c.cgroup)
        if count > ooms:
            _emit("oom", c.id)
            ooms = count
        time.sleep(min(0.1, max(0.0, next_stats - time.monotonic())))
    return 0
