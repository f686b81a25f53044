"""`hutch volume`: create, ls, inspect, rm, prune, with podman's flags, output and exit codes (`rm` of a
missing volume exits 1, of one in use without -f 2)."""

from __future__ import annotations

import sys

from hutch.cli.fastargs import REMAINDER
from hutch.cli.main import fail
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from hutch.engine.containers import Engine


def _engine(args: argparse.Namespace) -> Engine:
    from hutch.cli.main import engine_of

    return engine_of(args)


def cmd_create(args: argparse.Namespace) -> int:
    from hutch.engine import volumes

    labels = {}
    for text in args.label:
        key, _, value = text.partition("=")
        if not key:
            raise HutchError(f"--label {text!r}: the key is empty")
        labels[key] = value
    with _engine(args) as engine:
        vol = volumes.create(engine, args.name or "", labels)
    print(vol.name)
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt
    from hutch.cli.main import _json
    from hutch.engine import volumedb, volumes

    with _engine(args) as engine:
        docs = [volumes.inspect(engine, v) for v in volumedb.all(engine.db)]
    if args.quiet:
        for doc in docs:
            print(doc["Name"])
    elif args.format == "json":
        print(_json(docs))
    elif args.format:
        from hutch.cli.templates import render

        for doc in docs:
            print(render(args.format.removeprefix("table "), doc))
    else:
        rows = [["DRIVER", "VOLUME NAME"]] + [[str(d["Driver"]), str(d["Name"])] for d in docs]
        sys.stdout.write(fmt.table(rows[1:] if args.noheading else rows))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from hutch.cli.templates import print_documents
    from hutch.engine import volumedb, volumes

    docs = []
    missing = ""
    with _engine(args) as engine:
        names = [v.name for v in volumedb.all(engine.db)] if args.all else args.names
        for name in names:
            try:
                docs.append(volumes.inspect(engine, volumes.get(engine, name)))
            except volumes.NoSuchVolume:
                missing = missing or f"no such volume {name}"
    print_documents(args.format, docs)
    return fail(missing, 125) if missing else 0


def cmd_rm(args: argparse.Namespace) -> int:
    from hutch.engine import volumedb, volumes

    code = 0
    with _engine(args) as engine:
        names = [v.name for v in volumedb.all(engine.db)] if args.all else args.names
        if not names and not args.all:
            raise HutchError("volume rm: at least one volume name is needed (or --all)")
        for name in names:
            try:
                volumes.remove(engine, name, force=args.force)
            except volumes.NoSuchVolume as e:
                code = fail(str(e), 1)  # each failure is printed; the last one's code stands, as podman
                continue
            except volumes.VolumeInUse as e:
                code = fail(str(e), 2)
                continue
            print(name)
    return code


def cmd_prune(args: argparse.Namespace) -> int:
    from hutch.engine import volumes

    if not args.force:
        with _engine(args) as engine:
            names = "".join(name + "\n" for name in volumes.unused(engine))
        sys.stdout.write(
            "WARNING! This will remove all volumes not used by at least one container. The following volumes "
            f"will be removed:\n{names}Are you sure you want to continue? [y/N] "
        )
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    with _engine(args) as engine:
        for name in volumes.prune(engine):
            print(name)
    return 0


def _help(args: argparse.Namespace) -> int:
    raise HutchError("volume: a subcommand is needed (create, ls, inspect, rm, prune)")


def _commands(sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser]) -> None:
    c = add(sub, "create", cmd_create, "create a volume; print its name")
    c.add_argument("name", nargs="?", metavar="NAME")
    c.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE", help="set a label")
    c.add_argument("-d", "--driver", default="local", choices=("local",), help="the driver (local)")

    c = add(sub, "ls", cmd_ls, "list volumes", ("list",))
    c.add_argument("-q", "--quiet", action="store_true", help="print only the names")
    c.add_argument("--format", help="json, or a Go template such as '{{.Name}}'")
    c.add_argument("-n", "--noheading", action="store_true", help="no header line")

    c = add(sub, "inspect", cmd_inspect, "show volumes' details as JSON")
    c.add_argument("names", nargs="*", metavar="NAME")
    c.add_argument("-a", "--all", action="store_true", help="every volume")
    c.add_argument("-f", "--format", help="json (default) or a Go template such as '{{.Mountpoint}}'")

    c = add(sub, "rm", cmd_rm, "remove volumes", ("remove",))
    c.add_argument("names", nargs="*", metavar="NAME")
    c.add_argument("-a", "--all", action="store_true", help="every volume")
    c.add_argument("-f", "--force", action="store_true", help="remove the containers that use them first")

    c = add(sub, "prune", cmd_prune, "remove every volume no container uses")
    c.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")


def register(sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser]) -> None:
    """`hutch volume ...`; its parser is built only when it is used."""
    group = add(sub, "volume", _help, "manage volumes (create, ls, inspect, rm, prune)")
    group.add_argument("rest", nargs=REMAINDER, metavar="COMMAND ...")
    parser_class = type(group)

    def volume(args: argparse.Namespace) -> int:
        p = parser_class(prog="hutch volume")
        _commands(p.add_subparsers(dest="volume_command", metavar="COMMAND"), add)
        p.parse_args(args.rest, namespace=args)
        if args.handler is volume:
            return _help(args)
        return int(args.handler(args))

    group.set_defaults(handler=volume)
