"""`hutch network` (create, ls, inspect, rm, prune, connect, disconnect, reload, exists), `hutch port`,
with podman's flags, output and exit codes (network rm: 1 for no such network, 2 for one in use). Registered
into the main parser by `register`. run's network flags are hutch.cli.runflags's.
"""

from __future__ import annotations

import sys

from hutch.cli.fastargs import REMAINDER
from hutch.cli.main import DEFAULT_STORAGE, _json, fail
from hutch.errors import HutchError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from hutch.engine.containers import Engine


def network_mode(args: argparse.Namespace) -> str:
    """run's --network value (hutch.cli.runflags.network_mode, its home)."""
    from hutch.cli import runflags

    return runflags.network_mode(args)


def _engine(args: argparse.Namespace) -> Engine:
    from hutch.engine.containers import Engine

    return Engine(args.root or DEFAULT_STORAGE, args.db_path)


def _root(args: argparse.Namespace) -> str:
    import os

    return os.path.abspath(args.root or DEFAULT_STORAGE)


def cmd_create(args: argparse.Namespace) -> int:
    from hutch.cli.runflags import _pairs
    from hutch.engine.network import config

    net = config.create(
        _root(args),
        args.name or "",
        subnets=list(args.subnet),
        gateways=list(args.gateway),
        ip_ranges=list(args.ip_range),
        internal=args.internal,
        ipv6=args.ipv6,
        labels=_pairs(args.label, "--label"),
        driver=args.driver,
        dns=not args.disable_dns,
        options=list(args.opt),
    )
    print(net.name)
    return 0


def _fields(net: Any) -> dict[str, Any]:
    from hutch.engine.network import manage

    doc = manage.inspect(net)
    doc.update(
        Name=net.name,
        ID=net.id[:12],
        Driver="bridge",
        Labels=dict(net.labels),
        Internal=net.internal,
        IPv6Enabled=net.ipv6,
        DNSEnabled=net.dns,
        NetworkInterface=net.bridge,
        Created=doc["created"],
        Subnets=doc["subnets"],
    )
    return doc


def cmd_ls(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt
    from hutch.cli import templates
    from hutch.engine.network import config, manage

    nets = config.all_networks(_root(args))
    for f in args.filter:
        key, _, value = f.partition("=")
        if key == "name":
            nets = [n for n in nets if value in n.name]
        elif key == "driver":
            nets = [n for n in nets if value == "bridge"]
        elif key == "label":
            k, sep, v = value.partition("=")
            nets = [n for n in nets if k in n.labels and (not sep or n.labels[k] == v)]
        else:
            raise HutchError(f"--filter {f!r}: expected name=, driver= or label=")
    if args.quiet:
        for n in nets:
            print(n.name)
        return 0
    if args.format == "json":
        print(_json([manage.inspect(n) for n in nets]))
        return 0
    if args.format:  # `table ...` has podman's header (--noheading drops it) and padded columns
        titles = {k: templates.title(k) for k in _fields(config.default_network())}
        titles.update(ID="NETWORK ID", Name="NAME", Driver="DRIVER")
        rows_ = [_fields(n) for n in nets]
        default = "{{.ID}}\t{{.Name}}\t{{.Driver}}"
        sys.stdout.write(templates.render_rows(args.format, rows_, titles, not args.noheading, default))
        return 0
    rows = [["NETWORK ID", "NAME", "DRIVER"]]
    rows += [[n.id[:12], n.name, "bridge"] for n in nets]
    sys.stdout.write(fmt.table(rows[1:] if args.noheading else rows))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from hutch.cli.templates import print_documents
    from hutch.engine.network import config, manage

    docs = []
    missing = ""
    for name in args.names:
        try:
            net = config.find(_root(args), name)
        except NotFoundError as e:
            missing = missing or str(e)
            continue
        docs.append(manage.inspect(net) if not args.format or args.format == "json" else _fields(net))
    print_documents(args.format, docs)
    return fail(missing, 125) if missing else 0


def cmd_exists(args: argparse.Namespace) -> int:
    from hutch.engine.network import config

    try:
        config.find(_root(args), args.name)
    except NotFoundError:
        return 1
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from hutch.engine.network import manage

    code = 0
    with _engine(args) as engine:
        for name in args.names:
            try:
                print(manage.remove(engine, name, force=args.force), flush=True)
            except NotFoundError as e:
                code = fail(str(e), 1)
            except manage.InUseError as e:
                code = fail(str(e), 2)
            except HutchError as e:  # each network's error said, the others still removed (podman)
                code = fail(str(e), 125)
    return code


def cmd_prune(args: argparse.Namespace) -> int:
    from hutch.engine.network import manage

    if not args.force:
        sys.stdout.write(
            "WARNING! This will remove all networks not used by at least one container.\n"
            "Are you sure you want to continue? [y/N] "
        )
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    with _engine(args) as engine:
        for name in manage.prune(engine):
            print(name)
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    from hutch.engine.network import connect

    with _engine(args) as engine:
        rec = engine.find(args.container)
        with engine.lock(rec.id):
            connect.connect(engine, rec, args.network, list(args.alias), args.ip, args.mac_address)
    return 0


def cmd_disconnect(args: argparse.Namespace) -> int:
    from hutch.engine.network import connect

    with _engine(args) as engine:
        rec = engine.find(args.container)
        with engine.lock(rec.id):
            connect.disconnect(engine, rec, args.network)
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    from hutch.engine.network import connect

    with _engine(args) as engine:
        if args.all:
            from hutch.engine.containers import LIVE

            recs = [r for r in engine.list() if r.state in LIVE]
        elif args.containers:
            recs = [engine.find(n) for n in args.containers]
        else:
            raise HutchError("network reload: give containers or --all")
        code = 0
        for rec in recs:  # as podman: each container's error said, the others still reloaded
            try:
                with engine.lock(rec.id):
                    connect.reload(engine, rec)
            except HutchError as e:
                code = fail(str(e), 125)
                continue
            print(rec.id, flush=True)
    return code


def cmd_port(args: argparse.Namespace) -> int:
    """podman port CONTAINER [PRIVATE_PORT[/PROTO]]: its published ports."""
    from hutch.engine.network import ports

    with _engine(args) as engine:
        if args.all:
            recs = engine.list()
        elif args.container:
            recs = [engine.find(args.container)]
        else:
            raise HutchError("port: give a container or --all")
        for rec in recs:
            if rec.state != "running":
                continue  # as podman: only a running container's mappings are listed
            mappings = ports.published(engine, rec)
            if args.port:
                port, _, proto = args.port.partition("/")
                found = [
                    m
                    for m in mappings
                    if str(m["containerPort"]) == port and m["protocol"] == (proto or "tcp")
                ]
                if not found:
                    return fail(f"failed to find published port {args.port!r}", 125)
                for m in found:
                    print(f"{m['hostIP'] or '0.0.0.0'}:{m['hostPort']}")
                continue
            for line in ports.text(mappings):
                print(f"{rec.id[:12]}\t{line}" if args.all else line)
    return 0


def _network_help(args: argparse.Namespace) -> int:
    raise HutchError(
        "network: a subcommand is needed (create, ls, inspect, rm, prune, connect, disconnect, reload, exists)"
    )


def _commands(sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser]) -> None:
    c = add(sub, "create", cmd_create, "create a bridge network")
    c.add_argument("name", nargs="?", metavar="NAME")
    c.add_argument("-d", "--driver", default="bridge", help="bridge (the only driver)")
    c.add_argument("--subnet", action="append", default=[], help="a CIDR subnet")
    c.add_argument("--gateway", action="append", default=[], help="the gateway of the subnet")
    c.add_argument("--ip-range", action="append", default=[], help="allocate addresses from this CIDR range")
    c.add_argument("--internal", action="store_true", help="no route out of the network")
    c.add_argument("--ipv6", action="store_true", help="an IPv6 subnet too")
    c.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="a label")
    c.add_argument("-o", "--opt", action="append", default=[], help="driver options: mtu=N")
    c.add_argument("--disable-dns", action="store_true", help="no name resolution on the network")

    c = add(sub, "ls", cmd_ls, "list networks", ("list",))
    c.add_argument("-q", "--quiet", action="store_true", help="only the names")
    c.add_argument("--format", help="json, or a Go template such as '{{.Name}} {{.ID}}'")
    c.add_argument("-f", "--filter", action="append", default=[], help="name=, driver=, label=")
    c.add_argument("--noheading", action="store_true", help="no header line")

    c = add(sub, "inspect", cmd_inspect, "show networks' configuration")
    c.add_argument("names", nargs="+", metavar="NETWORK")
    c.add_argument("-f", "--format", help="json (default) or a Go template")

    c = add(sub, "exists", cmd_exists, "exit 0 when the network exists, 1 when not")
    c.add_argument("name", metavar="NETWORK")

    c = add(sub, "rm", cmd_rm, "remove networks", ("remove",))
    c.add_argument("names", nargs="+", metavar="NETWORK")
    c.add_argument("-f", "--force", action="store_true", help="remove the containers using them too")

    c = add(sub, "prune", cmd_prune, "remove every network no container uses")
    c.add_argument("-f", "--force", action="store_true", help="do not ask")

    c = add(sub, "connect", cmd_connect, "connect a container to a network")
    c.add_argument("network", metavar="NETWORK")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument("--alias", action="append", default=[], help="another name on the network")
    c.add_argument("--ip", default="", help="the container's IPv4 address on the network")
    c.add_argument("--mac-address", default="", help="the container's MAC address on the network")

    c = add(sub, "disconnect", cmd_disconnect, "disconnect a container from a network")
    c.add_argument("network", metavar="NETWORK")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument("-f", "--force", action="store_true", help="(accepted, as podman does)")

    c = add(sub, "reload", cmd_reload, "set the firewall rules of containers up again")
    c.add_argument("containers", nargs="*", metavar="CONTAINER")
    c.add_argument("-a", "--all", action="store_true", help="every running container")


def register(sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser]) -> None:
    """`hutch network ...` (its parser built only when used) and `hutch port`."""
    group = add(sub, "network", _network_help, "manage networks")
    group.add_argument("rest", nargs=REMAINDER, metavar="COMMAND ...")
    parser_class = type(group)

    def network(args: argparse.Namespace) -> int:
        p = parser_class(prog="hutch network")
        _commands(p.add_subparsers(dest="network_command", metavar="COMMAND"), add)
        p.parse_args(args.rest, namespace=args)
        if args.handler is network:
            return _network_help(args)
        return int(args.handler(args))

    group.set_defaults(handler=network)
    c = add(sub, "port", cmd_port, "list a container's published ports")
    c.add_argument("container", nargs="?", metavar="CONTAINER")
    c.add_argument("port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
    c.add_argument("-a", "--all", action="store_true", help="every running container")
