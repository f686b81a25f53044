"""`hutch` container management commands, with podman's flags, output and exit codes: top, stats, pause,
unpause, rename, cp, diff, commit, export (each also under `hutch container`), `container prune`, and
version, info and system (info, df, prune, reset).

`commands` is called from cli/containerops.py's `_commands` (so both `hutch X` and `hutch container X` work),
`register_system` from cli/argparser.py. (`port` is cli/networks.py's.)
"""

from __future__ import annotations

import os
import sys
import time

from hutch.cli.fastargs import REMAINDER
from hutch.cli.main import fail
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.copy import Entry
    from hutch.engine.db import Record
    from hutch.engine.stats import Sample


def _engine(args: argparse.Namespace) -> Engine:
    from hutch.cli.main import engine_of

    return engine_of(args)


def _json(doc: object) -> str:
    import json

    return json.dumps(doc, indent=4)


def _render(template: str, doc: Any) -> str:
    from hutch.cli.templates import render

    return render(template.removeprefix("table "), doc)


def _confirm(warning: str) -> bool:
    """podman's prompt: `[y/N]`; anything but y/yes is no."""
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _targets(engine: Engine, args: argparse.Namespace, live: bool) -> list[str]:
    if getattr(args, "all", False):
        return [r.id for r in engine.list(all=not live) if not live or r.state in ("running", "paused")]
    if not args.containers:
        raise HutchError("you must provide at least one name or id")
    return list(args.containers)


# --- top, stats -------------------------------------------------------------------------------------------


def cmd_top(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt
    from hutch.engine import top

    words = list(args.descriptors)
    if any(w.startswith("-") for w in words):
        return _ps_inside(args, words)
    wanted = top.descriptors(words)
    with _engine(args) as engine:
        rows = top.table(engine, engine.find(args.container), wanted)
    sys.stdout.write(fmt.table(rows))
    return 0


def _ps_inside(args: argparse.Namespace, words: list[str]) -> int:
    """`top CONTAINER -ef`: ps options are no psgo descriptors; podman then runs ps(1) in the container."""
    from hutch.engine.containers import InvokeError

    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    with _engine(args) as engine:
        rec = engine.find(args.container)
        if rec.state not in ("running", "paused"):
            raise HutchError(f"top can only be used on running containers: {rec.id} is {rec.state}")
        sys.stdout.flush()
        try:
            code = engine.exec(rec.id, ["ps", *words])
        except InvokeError as e:
            raise HutchError(f"ps(1) failed in the container for the descriptors {words}: {e}") from None
    if code != 0:
        raise HutchError(f"ps(1) in the container exited {code} for {' '.join(words)}")
    return 0


def _human(n: float) -> str:
    """go-units HumanSize: four significant digits, decimal units, no space (`1.208MB`)."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.4g}{units[i]}"


def _stats_fields(s: Sample) -> dict[str, Any]:
    """podman's stats fields (the JSON keys, and the template's .ID, .Name, .CPUPerc, ...)."""
    pair = "{} / {}".format
    if s.running:
        mem_pct = 100 * s.mem_usage / s.mem_limit if s.mem_limit else 0.0
        cpu, mem, mem_p = (
            f"{s.cpu_percent:.2f}%",
            pair(_human(s.mem_usage), _human(s.mem_limit)),
            f"{mem_pct:.2f}%",
        )
        net, block, pids = (
            pair(_human(s.net_rx), _human(s.net_tx)),
            pair(_human(s.block_read), _human(s.block_write)),
            str(s.pids),
        )
    else:
        mem_pct, cpu, mem, mem_p, net, block, pids = 0.0, "--", "-- / --", "--", "-- / --", "-- / --", "--"
    return {
        "id": s.id[:12],
        "name": s.name,
        "cpu_time": f"{s.cpu_ns / 1e9:.3f}s",
        "cpu_percent": cpu,
        "mem_usage": mem,
        "mem_percent": mem_p,
        "net_io": net,
        "block_io": block,
        "pids": pids,
        # template names
        "ID": s.id[:12], "ContainerID": s.id, "Name": s.name, "CPUPerc": cpu, "CPU": s.cpu_percent,
        "MemUsage": mem, "MemUsageBytes": s.mem_usage, "MemLimit": s.mem_limit, "MemPerc": mem_p,
        "MemPercent": mem_pct, "NetIO": net, "BlockIO": block, "PIDs": pids, "PIDS": s.pids,
    }  # fmt: skip


_STATS_JSON_KEYS = (
    "id",
    "name",
    "cpu_time",
    "cpu_percent",
    "mem_usage",
    "mem_percent",
    "net_io",
    "block_io",
    "pids",
)


_STATS_TITLES = {
    "ID": "ID", "ContainerID": "ID", "Name": "NAME", "CPUPerc": "CPU %", "CPU": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT", "MemUsageBytes": "MEM USAGE / LIMIT", "MemLimit": "LIMIT",
    "MemPerc": "MEM %", "MemPercent": "MEM %", "NetIO": "NET IO", "BlockIO": "BLOCK IO", "PIDs": "PIDS",
    "PIDS": "PIDS",
}  # fmt: skip


def _stats_records(engine: Engine, args: argparse.Namespace) -> list[Record]:
    if args.containers:
        return [engine.find(name) for name in args.containers]
    return [r for r in engine.list(all=args.all)]


def _stats_text(samples: list[Sample], fmt_: str | None, no_trunc: bool) -> str:
    from hutch.cli import format as fmt

    docs = [_stats_fields(s) for s in samples]
    if fmt_ == "json":
        return _json([{k: d[k] for k in _STATS_JSON_KEYS} for d in docs]) + "\n"
    if fmt_:
        # `table {{.ID}} ...` has podman's column titles first.
        head = [_render(fmt_, _STATS_TITLES) + "\n"] if fmt_.startswith("table ") else []
        return "".join(head + [_render(fmt_, d) + "\n" for d in docs])
    rows = [["ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET IO", "BLOCK IO", "PIDS"]]
    for s, d in zip(samples, docs, strict=True):
        ident = s.id if no_trunc else s.id[:12]
        rows.append(
            [ident, d["Name"], d["CPUPerc"], d["MemUsage"], d["MemPerc"], d["NetIO"], d["BlockIO"], d["PIDs"]]
        )
    return fmt.table(rows)


def cmd_stats(args: argparse.Namespace) -> int:
    from hutch.engine import stats

    if args.interval < 1:  # as podman (0 would redraw without a pause)
        raise HutchError("invalid interval, must be a positive number greater zero")
    previous: dict[str, Sample] = {}
    clear = sys.stdout.isatty() and not args.no_stream
    try:
        while True:
            with _engine(args) as engine:
                records = _stats_records(engine, args)
                samples = [stats.sample(engine, r, previous.get(r.id)) for r in records]
            previous = {s.id: s for s in samples}
            text = _stats_text(samples, args.format, args.no_trunc)
            sys.stdout.write(("\033[2J\033[H" if clear else "") + text)
            sys.stdout.flush()
            if args.no_stream:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


# --- pause, unpause, rename -----------------------------------------------------------------------------------


def cmd_pause(args: argparse.Namespace) -> int:
    return _each(args, "pause", live=True)


def cmd_unpause(args: argparse.Namespace) -> int:
    return _each(args, "unpause", live=True)


def _each(args: argparse.Namespace, action: str, live: bool) -> int:
    code = 0
    with _engine(args) as engine:
        names = _targets(engine, args, live)
        if args.all:  # podman pause --all skips what is already (un)paused
            want = "running" if action == "pause" else "paused"
            names = [n for n in names if engine.find(n).state == want]
        for name in names:
            try:
                getattr(engine, action)(name)
            except HutchError as e:
                code = fail(str(e))
                continue
            print(name, flush=True)
    return code


def cmd_rename(args: argparse.Namespace) -> int:
    with _engine(args) as engine:
        engine.rename(args.container, args.name)
    return 0


# --- cp, diff, commit, export -----------------------------------------------------------------------------


def cmd_cp(args: argparse.Namespace) -> int:
    import contextlib

    from hutch.engine import copy

    src, dst = copy.split_arg(args.source), copy.split_arg(args.destination)
    if src and dst:
        raise HutchError("copying between containers is not supported")
    if not src and not dst:
        raise HutchError(f'"{args.source}" and "{args.destination}": one of them must be CONTAINER:PATH')
    with _engine(args) as engine, contextlib.ExitStack() as stack:
        name, path = src or dst  # type: ignore[misc]
        rec = engine.find(name)
        where = f"{name}:{path}"
        rootfd, path = stack.enter_context(copy.container_root(engine, rec, copy.container_path(rec, path)))
        hostfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        stack.callback(os.close, hostfd)
        if src:
            inside = copy.Side(rootfd, path, None, where)
            if args.destination == "-":
                copy.copy_out_tar(inside, sys.stdout.buffer)
                sys.stdout.flush()
                return 0
            owner = None if args.archive else (os.getuid(), os.getgid())
            copy.copy(inside, copy.Side(hostfd, _host_path(args.destination), owner, args.destination))
            return 0
        owner = None if args.archive else copy.process_owner(engine, rec)
        inside = copy.Side(rootfd, path, owner, where)
        if args.source == "-":
            copy.copy_in_tar(sys.stdin.buffer, inside)
        else:
            copy.copy(copy.Side(hostfd, _host_path(args.source), None, args.source), inside)
    return 0


def _host_path(path: str) -> str:
    """A host path, absolute (the host side resolves below / too)."""
    full = os.path.abspath(path)
    return full + "/" if path.endswith("/") and full != "/" else full + ("/." if path.endswith("/.") else "")


def cmd_diff(args: argparse.Namespace) -> int:
    from hutch.engine import changes

    with _engine(args) as engine:
        found = changes.diff(engine, engine.find(args.container))
    if args.format == "json":
        doc: dict[str, list[str]] = {}
        for kind, key in (("C", "changed"), ("A", "added"), ("D", "deleted")):
            paths = [p for k, p in found if k == kind]
            if paths:
                doc[key] = paths
        print(_json(doc))
        return 0
    if args.format:
        for kind, path in found:
            print(_render(args.format, {"ChangeType": kind, "Path": path}))
        return 0
    for kind, path in found:
        print(f"{kind} {path}")
    return 0


def cmd_commit(args: argparse.Namespace) -> int:
    from hutch.engine.commit import commit

    if args.format not in ("oci", "docker"):
        raise HutchError(f"--format {args.format!r}: expected oci or docker")

    def say(line: str) -> None:
        if not args.quiet:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    with _engine(args) as engine:
        rec = engine.find(args.container)
        image = commit(
            engine,
            rec,
            args.image or "",
            changes=list(args.change),
            message=args.message or "",
            author=args.author or "",
            pause=args.pause,
            docker=args.format == "docker",
            say=say,
        )
    print(image.id.hex, flush=True)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from hutch.engine import copy

    if not args.output and sys.stdout.isatty():
        raise HutchError("refusing to export to terminal. Use -o flag or redirect")
    with _engine(args) as engine:
        rec = engine.find(args.container)
        with copy.rootfs(engine, rec) as rootfd:
            if not args.output:
                copy.write_tar(_no_top(copy.walk(rootfd, ".", ".")), sys.stdout.buffer)
                sys.stdout.flush()
                return 0
            tmp = os.path.join(
                os.path.dirname(os.path.abspath(args.output)), f".{os.path.basename(args.output)}.tmp"
            )
            try:
                with open(tmp, "wb") as f:
                    copy.write_tar(_no_top(copy.walk(rootfd, ".", ".")), f)
                os.rename(tmp, args.output)
            except BaseException as e:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                if isinstance(e, OSError) and e.filename == tmp:  # the file asked for, as podman names it
                    raise HutchError(f"open {args.output}: {(e.strerror or str(e)).lower()}") from None
                raise
    return 0


def _no_top(entries: Iterator[Entry]) -> Iterator[Entry]:
    """An export's entries without the rootfs's own `.`, as podman's tar has none."""
    return (e for e in entries if e[0].name != ".")


def cmd_container_prune(args: argparse.Namespace) -> int:
    from hutch.engine import system

    if not args.force and not _confirm("WARNING! This will remove all non running containers."):
        return 0
    with _engine(args) as engine:
        for cid, _size in system.prune_containers(engine):
            print(cid)
    return 0


# --- the parsers ------------------------------------------------------------------------------------------


def commands(
    sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser], top: bool
) -> None:
    """The management commands, at the top (`hutch top`) or under `hutch container` (`top` False)."""
    c = add(sub, "top", cmd_top, "show a container's processes")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument(
        "descriptors",
        nargs=REMAINDER,
        metavar="DESCRIPTOR",
        help="user pid ppid pcpu etime tty time args ...; ps(1) options (-ef) run ps in the container",
    )

    c = add(sub, "stats", cmd_stats, "show containers' resource usage")
    c.add_argument("containers", nargs="*", metavar="CONTAINER")
    c.add_argument("-a", "--all", action="store_true", help="all containers, not only running ones")
    c.add_argument("--no-stream", action="store_true", help="print once and exit")
    c.add_argument("--no-trunc", action="store_true", help="full ids")
    c.add_argument("--format", help="json, or a Go template such as '{{.Name}} {{.MemUsage}}'")
    c.add_argument("-i", "--interval", type=int, default=1, help="seconds between refreshes (default 1)")

    for name, handler, text in (("pause", cmd_pause, "freeze"), ("unpause", cmd_unpause, "thaw")):
        c = add(sub, name, handler, f"{text} every process of containers")
        c.add_argument("containers", nargs="*", metavar="CONTAINER")
        c.add_argument("-a", "--all", action="store_true", help=f"{name} every running container")

    c = add(sub, "rename", cmd_rename, "rename a container")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument("name", metavar="NAME")

    c = add(sub, "cp", cmd_cp, "copy files between a container and the host")
    c.add_argument("source", metavar="SRC")
    c.add_argument("destination", metavar="DEST")
    c.add_argument("-a", "--archive", action="store_true", help="keep the files' uid/gid")

    c = add(sub, "diff", cmd_diff, "show what a container changed in its filesystem")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument("--format", help="json, or a Go template ({{.ChangeType}} {{.Path}})")

    c = add(sub, "commit", cmd_commit, "make an image of a container's changes")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument("image", nargs="?", metavar="IMAGE")
    c.add_argument(
        "-c", "--change", action="append", default=[], help="CMD=..., ENTRYPOINT=..., ENV=..., ..."
    )
    c.add_argument("-m", "--message", help="the commit message (history comment)")
    c.add_argument("-a", "--author", help="the image's author")
    c.add_argument("-p", "--pause", action="store_true", help="pause the container while committing")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    c.add_argument(
        "-f", "--format", default="oci", help="the image's manifest format: oci (default) or docker"
    )

    c = add(sub, "export", cmd_export, "write a container's filesystem as a tar")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument("-o", "--output", help="the tar file (default: stdout)")

    if not top:
        c = add(sub, "prune", cmd_container_prune, "remove every container that is not running")
        c.add_argument("-f", "--force", action="store_true", help="do not ask")


def register_system(
    sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser]
) -> None:
    """`hutch version`, `hutch info` and `hutch system ...` (their handlers are in hutch.cli.system, imported
    only when one runs: this is called on every command's parser build)."""
    _system_help, cmd_info, cmd_version = _later("_system_help"), _later("cmd_info"), _later("cmd_version")
    cmd_system_df, cmd_system_prune = _later("cmd_system_df"), _later("cmd_system_prune")
    cmd_system_reset = _later("cmd_system_reset")
    c = add(sub, "version", cmd_version, "show hutch's version")
    c.add_argument("-f", "--format", help="json, or a Go template such as '{{.Client.Version}}'")
    c = add(sub, "info", cmd_info, "show the host, store and runtime hutch uses")
    c.add_argument("-f", "--format", help="json, or a Go template such as '{{.Host.Kernel}}'")

    group = add(sub, "system", _system_help, "manage hutch itself (info, df, prune, reset)")
    ssub = group.add_subparsers(dest="system_command", metavar="COMMAND")
    c = add(ssub, "info", cmd_info, "show the host, store and runtime hutch uses")
    c.add_argument("-f", "--format", help="json, or a Go template")
    c = add(ssub, "df", cmd_system_df, "show disk usage")
    c.add_argument("-v", "--verbose", action="store_true", help="per image, container and volume")
    c = add(ssub, "prune", cmd_system_prune, "remove unused containers, images (and volumes)")
    c.add_argument("-a", "--all", action="store_true", help="every unused image, not only dangling ones")
    c.add_argument("-f", "--force", action="store_true", help="do not ask")
    c.add_argument("--volumes", action="store_true", help="unused volumes too")
    c = add(ssub, "reset", cmd_system_reset, "remove every container, image and volume of the root")
    c.add_argument("-f", "--force", action="store_true", help="do not ask")


def _later(name: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from hutch.cli import system

        return int(getattr(system, name)(args))

    return handler
