"""`hutch ps`, with podman's flags and output: the table, -q, --format json or a Go template (`table ...` with
podman's titles), and the parsing of --filter (the matching, --sort, --size and --pod are
hutch.cli.psquery's, imported only when asked for)."""

from __future__ import annotations

import sys
import time

from hutch.cli.main import _json, engine_of
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from hutch.engine.db import Record

STATES = ("created", "running", "exited", "paused", "stopped", "unknown")
KEYS = (
    "status", "name", "id", "label", "ancestor", "exited", "before", "since", "network", "volume", "health", "pod",
)  # fmt: skip
HEALTH = ("starting", "healthy", "unhealthy", "none")
# ps --format table's column titles where podman's are not the field's name in capitals
FIELDS = (
    "ID", "Id", "Image", "ImageID", "Command", "Created", "CreatedAt", "RunningFor", "StartedAt", "ExitedAt",
    "State", "Status", "Exited", "ExitCode", "AutoRemove", "Ports", "Names",
)  # fmt: skip
TITLES = {"ID": "CONTAINER ID", "RunningFor": "CREATED", "CreatedHuman": "CREATED", "Pod": "POD ID"}


def parse(texts: list[str]) -> dict[str, list[str]]:
    """--filter KEY=VALUE: values of one key match any, different keys must all match."""
    out: dict[str, list[str]] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or key not in KEYS:
            raise HutchError(f"--filter {text!r}: expected one of {', '.join(k + '=' for k in KEYS)}")
        if key == "status" and value not in STATES:
            raise HutchError(f"--filter {text!r}: invalid status, expected one of {', '.join(STATES)}")
        if key == "health" and value not in HEALTH:
            raise HutchError(f"--filter {text!r}: invalid health, expected one of {', '.join(HEALTH)}")
        if key == "exited" and not value.lstrip("-").isdigit():
            raise HutchError(f"--filter {text!r}: the exit code must be a number")
        if key == "name":
            import re

            try:
                re.compile(value)
            except re.error as e:
                raise HutchError(f"--filter {text!r}: invalid regular expression: {e}") from None
        out.setdefault(key, []).append(value)
    return out


def implies_all(filters: dict[str, list[str]]) -> bool:
    """podman lists stopped containers too when a filter asks about them."""
    return any(k in filters for k in ("status", "exited", "before", "since"))


def cmd_ps(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt

    filters = parse(args.filter)
    extra: dict[str, dict[str, str]] = {}
    with engine_of(args) as engine:
        records = engine.list(all=args.all or implies_all(filters))
        if filters:
            from hutch.cli import psquery

            records = list(filter(psquery.Matcher(engine, filters), records))
        if args.last is not None and args.last >= 0:
            records = records[-args.last :] if args.last else []
        if args.latest:
            records = records[-1:]
        records.reverse()  # newest first, as podman lists them
        if args.sort or args.size or args.pod:
            from hutch.cli import psquery

            if args.sort:
                records = psquery.sort(engine, records, args.sort)
            extra = psquery.columns(engine, records, size=args.size, pod=args.pod)
    if args.quiet:
        for rec in records:
            print(rec.id if args.no_trunc else rec.id[:12])
        return 0
    if args.format == "json":
        print(_json([_ps_json(r) for r in records]))
        return 0
    now = time.time()
    if args.format:  # `table ...` gets podman's titles and padding (render)
        docs = [_ps_fields(rec, now, args.no_trunc) for rec in records]
        sys.stdout.write(render(args.format, docs, not args.noheading))
        return 0
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES", *extra]]
    for rec in records:
        command = rec.command if args.no_trunc or len(rec.command) <= 17 else rec.command[:17] + "..."
        rows.append(
            [
                rec.id if args.no_trunc else rec.id[:12],
                rec.image_name,
                command,
                fmt.human_duration(now - rec.created) + " ago",
                status_text(rec, now),
                ports_column(rec),
                rec.name,
                *(values[rec.id] for values in extra.values()),
            ]
        )
    sys.stdout.write(fmt.table(rows[1:] if args.noheading else rows))
    return 0


def _ps_fields(rec: Record, now: float, no_trunc: bool) -> dict[str, Any]:
    """The fields of a ps --format template, as podman names them."""
    from hutch.cli import format as fmt

    doc = _ps_json(rec)
    doc.update(
        ID=rec.id if no_trunc else rec.id[:12],
        Names=rec.name,
        Command=rec.command,
        Status=status_text(rec, now),
        CreatedAt=time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(rec.created)),
        RunningFor=fmt.human_duration(now - rec.created) + " ago",
        Ports=ports_column(rec),
    )
    return doc


def status_text(rec: Record, now: float) -> str:
    from hutch.cli import format as fmt

    if rec.state == "running":
        up = "Up " + fmt.human_duration(now - (rec.started or rec.created))
        if '"Healthcheck"' in rec.config:  # read the health state only of a container that has one
            from hutch.engine import health

            doc = health.state(rec)
            return f"{up} ({doc['Status']})" if doc else up
        return up
    if rec.state == "paused":
        return "Paused"
    if rec.state == "exited":
        code = rec.exit_code if rec.exit_code is not None else -1
        return f"Exited ({code}) " + fmt.human_duration(now - (rec.finished or rec.created)) + " ago"
    return "Created"


def _ps_json(rec: Record) -> dict[str, Any]:
    return {
        "Id": rec.id,
        "Names": [rec.name],
        "Image": rec.image_name,
        "ImageID": rec.image_id,
        "Command": rec.command.split(" ") if rec.command else [],
        "Created": int(rec.created),
        "StartedAt": int(rec.started or 0),
        "ExitedAt": int(rec.finished or 0),
        "State": rec.state,
        "Exited": rec.state == "exited",
        "ExitCode": rec.exit_code or 0,
        "AutoRemove": rec.remove,
    }


def ports_column(rec: Record) -> str:
    """ps's PORTS: `0.0.0.0:8080->80/tcp, ...` from the container's network plan (no plan: none)."""
    import os

    from hutch.engine.network import plan

    doc = plan.load(os.path.join(rec.dir, "userdata")) or {}
    return ", ".join(
        f"{m['hostIP'] or '0.0.0.0'}:{m['hostPort']}->{m['containerPort']}/{m['protocol']}"
        for m in doc.get("ports", [])
    )


def render(template: str, docs: list[dict[str, Any]], heading: bool) -> str:
    """ps --format: each container's fields through the template; `table ...` with podman's titles."""
    from hutch.cli import templates

    titles = {f: TITLES.get(f, templates.title(f)) for f in FIELDS}
    default = "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    return templates.render_rows(template, docs, titles, heading, default)


def declare(sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser]) -> None:
    """`ps` (ls, list), its flags and handler, among the commands of `sub`."""
    c = add(sub, "ps", cmd_ps, "list containers", ("list", "ls"))
    c.add_argument("-a", "--all", action="store_true", help="all containers, not only running ones")
    c.add_argument("-q", "--quiet", action="store_true", help="print only the ids")
    c.add_argument("--no-trunc", action="store_true", help="full ids and commands")
    c.add_argument("-n", "--last", type=int, help="the N last created containers")
    c.add_argument("-l", "--latest", action="store_true", help="the last created container")
    c.add_argument("--format", help="json, or a Go template such as '{{.ID}} {{.Names}}'")
    c.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        help="KEY=VALUE: status, name (a regex), id, label, ...",
    )
    c.add_argument("--noheading", action="store_true", help="no header line")
    c.add_argument("-s", "--size", action="store_true", help="the SIZE each container wrote (and virtual)")
    c.add_argument("-p", "--pod", action="store_true", help="the POD ID and PODNAME of each container")
    c.add_argument("--sort", default="", help="command, created, id, image, names, runningfor, size, status")
