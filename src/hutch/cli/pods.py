"""`hutch pod`: create, ps, inspect, start, stop, restart, kill, pause, unpause, top, stats, logs, rm, prune,
exists, with podman's output.
Registered into the main parser by `register`; `run --pod` is a flag of hutch.cli.runflags.
"""

from __future__ import annotations

import sys
import time

from hutch.cli.fastargs import REMAINDER
from hutch.cli.main import DEFAULT_STORAGE, _json, fail
from hutch.errors import HutchError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from hutch.engine.containers import Engine


def _engine(args: argparse.Namespace) -> Engine:
    from hutch.engine.containers import Engine

    return Engine(args.root or DEFAULT_STORAGE, args.db_path)


def cmd_create(args: argparse.Namespace) -> int:
    from hutch.cli.runflags import _pairs
    from hutch.engine import pods
    from hutch.engine.network.plan import NetOptions

    infra = _bool(args.infra, "--infra")
    share = pods.parse_share(args.share, infra)
    if args.name and args.pod_name and args.name != args.pod_name:
        raise HutchError(f"pod create: the name is given twice ({args.pod_name!r} and --name {args.name!r})")
    net = NetOptions(publish=list(args.publish), add_hosts=list(args.add_host), dns=list(args.dns))
    with _engine(args) as engine:
        pod = pods.create(
            engine,
            args.name or args.pod_name or "",
            share=share,
            labels=_pairs(args.label, "--label"),
            network=args.network or "bridge",
            net=net,
            infra=infra,
            hostname=args.hostname or "",
            cgroup_parent=args.cgroup_parent or "",
            share_parent=_bool(args.share_parent, "--share-parent"),
            resources=_resources(args),
        )
    print(pod["Id"])
    return 0


def _bool(text: str, flag: str) -> bool:
    if text.lower() in ("true", "1", "yes", ""):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise HutchError(f"{flag} {text!r}: expected true or false")


def _resources(args: argparse.Namespace) -> dict[str, Any]:
    """The pod's limits (`pod create --cpus --cpuset-cpus --memory --memory-swap --pids-limit`), for its
    cgroup: no podman defaults (the pod's containers have their own)."""
    from hutch.engine.resources import ResourceFlags, resources

    flags = ResourceFlags(
        memory=args.memory,
        memory_swap=args.memory_swap,
        cpus=args.cpus,
        cpu_shares=args.cpu_shares,
        cpuset_cpus=args.cpuset_cpus,
        pids_limit=args.pids_limit,
    )
    doc = resources(flags, create=False)
    if "memory" in doc and "swap" not in doc["memory"]:
        doc["memory"]["swap"] = 2 * doc["memory"]["limit"]  # podman: as much swap as memory
    return doc


_DOC_KEYS = (
    "Id",
    "Name",
    "Created",
    "State",
    "Hostname",
    "Labels",
    "CreateCgroup",
    "CgroupParent",
    "CgroupPath",
    "CreateInfra",
    "InfraContainerID",
    "SharedNamespaces",
    "NumContainers",
    "Containers",
)  # fmt: skip  (_doc's, for the titles of a `table` format's header)


def _doc(engine: Engine, pod: dict[str, Any]) -> dict[str, Any]:
    """podman's pod inspect document."""
    from hutch.engine import pods
    from hutch.engine.inspect import _go_time

    containers = []
    for rec in pods.containers(engine, pod):
        containers.append({"Id": rec.id, "Name": rec.name, "State": rec.state})
    return {
        "Id": pod["Id"],
        "Name": pod["Name"],
        "Created": _go_time(pod["Created"]),
        "State": pods.status(engine, pod),
        "Hostname": pod.get("Hostname", pod["Name"]),
        "Labels": pod.get("Labels", {}),
        "CreateCgroup": True,
        "CgroupParent": pod.get("CgroupParent", ""),
        "CgroupPath": pod.get("CgroupPath", ""),
        "CreateInfra": bool(pod["InfraContainerID"]),
        "InfraContainerID": pod["InfraContainerID"],
        "SharedNamespaces": pod["SharedNamespaces"],
        "NumContainers": len(containers),
        "Containers": containers,
    }


def cmd_ps(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt
    from hutch.cli import templates
    from hutch.engine import pods

    with _engine(args) as engine:
        listed = list(reversed(pods.all_pods(engine)))
        docs = [_doc(engine, p) for p in listed]
    width = 64 if args.no_trunc else 12  # the ids' (--no-trunc: whole, as podman)
    if args.quiet:
        for d in docs:
            print(d["Id"][:width])
        return 0
    if args.format == "json":
        print(_json(docs))
        return 0
    if args.format:  # `table ...` has podman's header (--noheading drops it) and padded columns
        rows_ = [{**d, "ID": d["Id"][:width], "Status": d["State"]} for d in docs]
        titles = {k: templates.title(k) for k in (*_DOC_KEYS, "ID", "Status")}
        titles.update(ID="POD ID", Name="NAME", Status="STATUS", InfraContainerID="INFRA ID")
        default = "{{.ID}}\t{{.Name}}\t{{.Status}}\t{{.InfraContainerID}}"
        sys.stdout.write(templates.render_rows(args.format, rows_, titles, not args.noheading, default))
        return 0
    now = time.time()
    rows = [["POD ID", "NAME", "STATUS", "CREATED", "INFRA ID", "# OF CONTAINERS"]]
    for d, p in zip(docs, listed, strict=True):  # p: the pod's record (its creation time as a number)
        rows.append(
            [
                d["Id"][:width],
                d["Name"],
                d["State"],
                fmt.human_duration(now - p["Created"]) + " ago",
                d["InfraContainerID"][:width],
                str(d["NumContainers"]),
            ]
        )
    sys.stdout.write(fmt.table(rows[1:] if args.noheading else rows))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from hutch.cli.templates import render
    from hutch.engine import pods

    with _engine(args) as engine:
        docs = [_doc(engine, pods.find(engine, n)) for n in args.pods]
    if args.format and args.format != "json":
        for d in docs:
            print(render(args.format, d))
    else:
        print(_json(docs[0] if len(docs) == 1 else docs))
    return 0


def _each(args: argparse.Namespace, action: Callable[[Engine, dict[str, Any]], None]) -> int:
    from hutch.engine import pods

    code = 0
    with _engine(args) as engine:
        chosen = pods.all_pods(engine) if getattr(args, "all", False) else None
        if chosen is None:
            if not args.pods:
                raise HutchError("you must provide at least one pod name or id")
            chosen = []
            for name in args.pods:
                try:
                    chosen.append(pods.find(engine, name))
                except NotFoundError as e:
                    code = fail(str(e))
        for pod in chosen:  # as podman: each pod's error said, the others still acted on
            try:
                action(engine, pod)
            except HutchError as e:
                code = fail(str(e))
                continue
            print(pod["Id"], flush=True)
    return code


def cmd_start(args: argparse.Namespace) -> int:
    from hutch.engine import pods
    from hutch.engine.containers import prepare_launch

    prepare_launch()
    return _each(args, pods.start)


def cmd_stop(args: argparse.Namespace) -> int:
    from hutch.engine import pods

    return _each(args, lambda e, p: pods.stop(e, p, args.time))


def cmd_restart(args: argparse.Namespace) -> int:
    from hutch.engine import pods
    from hutch.engine.containers import prepare_launch

    prepare_launch()

    def restart(engine: Engine, pod: dict[str, Any]) -> None:
        pods.stop(engine, pod, args.time)
        pods.start(engine, pod)

    return _each(args, restart)


def cmd_kill(args: argparse.Namespace) -> int:
    from hutch.engine import pods
    from hutch.runtime.lifecycle import parse_signal

    sig = parse_signal(args.signal)
    return _each(args, lambda e, p: pods.kill(e, p, sig))


def cmd_rm(args: argparse.Namespace) -> int:
    from hutch.engine import pods

    return _each(args, lambda e, p: pods.remove(e, p, force=args.force))


def cmd_prune(args: argparse.Namespace) -> int:
    from hutch.engine import pods

    if not args.force:
        sys.stdout.write(
            "WARNING! This will remove all stopped/exited pods..\nAre you sure you want to continue? [y/N] "
        )
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    with _engine(args) as engine:
        for pod in pods.all_pods(engine):
            if pods.status(engine, pod) in ("Exited", "Created"):
                pods.remove(engine, pod, force=True)
                print(pod["Id"])
    return 0


def cmd_exists(args: argparse.Namespace) -> int:
    from hutch.engine import pods

    with _engine(args) as engine:
        try:
            pods.find(engine, args.pod)
        except NotFoundError:
            return 1
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    from hutch.engine import pods

    return _each(args, pods.pause)


def cmd_unpause(args: argparse.Namespace) -> int:
    from hutch.engine import pods

    return _each(args, pods.unpause)


def cmd_top(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt
    from hutch.engine import podops, pods
    from hutch.engine import top as _top

    wanted = _top.descriptors(list(args.descriptors))
    with _engine(args) as engine:
        rows = podops.top(engine, pods.find(engine, args.pod), wanted)
    sys.stdout.write(fmt.table(rows))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from hutch.cli.podstats import show

    return show(args, _engine)


def cmd_logs(args: argparse.Namespace) -> int:
    """podman pod logs: the pod's containers' logs interleaved by time, each line after its container's id
    (or name, with --names); stdout lines to stdout, stderr lines to stderr."""
    from hutch.engine import logs, podops, pods

    since = logs.parse_time(args.since, "--since") if args.since else None
    until = logs.parse_time(args.until, "--until") if args.until else None
    with _engine(args) as engine:
        pod = pods.find(engine, args.pod)
        recs = podops.log_targets(engine, pod, [args.container] if args.container else [])
        for rec, line in podops.logs(
            engine, recs, since=since, until=until, tail=args.tail, follow=args.follow
        ):
            out = sys.stderr if line.stream == "stderr" else sys.stdout
            head = podops.prefix(rec, args.names)
            if args.timestamps:
                head += logs.format_time(line.time_ns).encode() + b" "
            out.buffer.write(head + line.text + (b"\n" if line.complete else b""))
            out.buffer.flush()
    return 0


def _pod_help(args: argparse.Namespace) -> int:
    raise HutchError(
        "pod: a subcommand is needed (create, ps, inspect, start, stop, restart, kill, pause, unpause, top, "
        "stats, logs, rm, prune, exists)"
    )


def _commands(sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser]) -> None:
    c = add(sub, "create", cmd_create, "create a pod and its infra container")
    c.add_argument("pod_name", nargs="?", metavar="NAME", help="the pod's name")
    c.add_argument("-n", "--name", help="the pod's name")
    c.add_argument("-p", "--publish", action="append", default=[], help="a port of the pod, on its infra")
    c.add_argument(
        "--network", "--net", default="bridge", help="the pod's network (bridge, NAME, none, host)"
    )
    c.add_argument(
        "--share",
        action="append",
        default=[],
        help="namespaces to share: cgroup, ipc, net, pid, uts; +pid adds",
    )
    c.add_argument("--infra", default="true", help="make an infra container (default true)")
    c.add_argument("--hostname", help="the pod's hostname (default its name)")
    c.add_argument("--cgroup-parent", help="the cgroup under which the pod's cgroup is made")
    c.add_argument("--share-parent", default="true", help="the pod's cgroup parents its containers'")
    c.add_argument("--cpus", help="CPUs of the whole pod")
    c.add_argument("--cpu-shares", help="the pod's CPU shares")
    c.add_argument("--cpuset-cpus", help="CPUs the pod may run on (0-2,4)")
    c.add_argument("-m", "--memory", help="memory limit of the whole pod")
    c.add_argument("--memory-swap", help="memory plus swap limit of the whole pod")
    c.add_argument("--pids-limit", help="processes limit of the whole pod")
    c.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="a label")
    c.add_argument("--add-host", action="append", default=[], metavar="HOST:IP", help="an /etc/hosts entry")
    c.add_argument("--dns", action="append", default=[], help="a DNS server")

    c = add(sub, "ps", cmd_ps, "list pods", ("ls", "list"))
    c.add_argument("-q", "--quiet", action="store_true", help="only the ids")
    c.add_argument("--no-trunc", action="store_true", help="full ids")
    c.add_argument("--format", help="json or a Go template")
    c.add_argument("--noheading", action="store_true", help="no header line")

    c = add(sub, "inspect", cmd_inspect, "show pods' configuration and state")
    c.add_argument("pods", nargs="+", metavar="POD")
    c.add_argument("-f", "--format", help="json (default) or a Go template")

    for name, handler, text in (
        ("start", cmd_start, "start pods (the infra container first)"),
        ("stop", cmd_stop, "stop pods (their containers, then the infra)"),
        ("restart", cmd_restart, "stop and start pods"),
        ("kill", cmd_kill, "signal every container of pods"),
        ("pause", cmd_pause, "pause every container of pods"),
        ("unpause", cmd_unpause, "unpause every container of pods"),
        ("rm", cmd_rm, "remove pods and their containers"),
    ):
        c = add(sub, name, handler, text)
        c.add_argument("pods", nargs="*", metavar="POD")
        c.add_argument("-a", "--all", action="store_true", help="every pod")
        if name in ("stop", "restart"):
            c.add_argument("-t", "--time", type=int, default=10, help="seconds before SIGKILL")
        if name == "kill":
            c.add_argument("-s", "--signal", default="KILL", help="the signal (default KILL)")
        if name == "rm":
            c.add_argument("-f", "--force", action="store_true", help="stop running containers first")

    c = add(sub, "top", cmd_top, "the processes of a pod's containers")
    c.add_argument("pod", metavar="POD")
    c.add_argument("descriptors", nargs="*", metavar="DESCRIPTOR")

    c = add(sub, "stats", cmd_stats, "resource usage of pods' containers")
    c.add_argument("pods", nargs="*", metavar="POD")
    c.add_argument("-a", "--all", action="store_true", help="every pod")
    c.add_argument("--no-stream", action="store_true", help="one sample, then exit")
    c.add_argument("--no-reset", action="store_true", help="do not clear the terminal between samples")
    c.add_argument("--format", help="json or a Go template")
    c.add_argument("-i", "--interval", type=float, default=5.0, help="seconds between samples")

    c = add(sub, "logs", cmd_logs, "the logs of a pod's containers")
    c.add_argument("pod", metavar="POD")
    c.add_argument("-c", "--container", help="only this container's log")
    c.add_argument("-f", "--follow", action="store_true", help="follow until the containers stop")
    c.add_argument("-n", "--names", action="store_true", help="container names instead of ids")
    c.add_argument("--since", help="lines since this time")
    c.add_argument("--until", help="lines until this time")
    c.add_argument("--tail", type=int, default=-1, help="the last N lines of each container")
    c.add_argument("-t", "--timestamps", action="store_true", help="show the time of each line")

    c = add(sub, "prune", cmd_prune, "remove every stopped pod")
    c.add_argument("-f", "--force", action="store_true", help="do not ask")

    c = add(sub, "exists", cmd_exists, "exit 0 when the pod exists, 1 when not")
    c.add_argument("pod", metavar="POD")


def register(sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser]) -> None:
    """`hutch pod ...`, its parser built only when used."""
    group = add(sub, "pod", _pod_help, "manage pods")
    group.add_argument("rest", nargs=REMAINDER, metavar="COMMAND ...")
    parser_class = type(group)

    def pod(args: argparse.Namespace) -> int:
        p = parser_class(prog="hutch pod")
        _commands(p.add_subparsers(dest="pod_command", metavar="COMMAND"), add)
        p.parse_args(args.rest, namespace=args)
        if args.handler is pod:
            return _pod_help(args)
        return int(args.handler(args))

    group.set_defaults(handler=pod)
