"""`hutch version`, `hutch info`, `hutch system info|df|prune|reset`: podman's output (info as YAML, or
json, or a Go template), prompts (`[y/N]`, skipped with -f) and exit codes. Registered by
hutch.cli.manage.register_system.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from hutch.cli.manage import _confirm, _engine, _json, _render
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


def cmd_version(args: argparse.Namespace) -> int:
    from hutch.engine import system

    doc = {"Client": system.version()}
    if args.format == "json":
        print(_json(doc))
        return 0
    if args.format:
        print(_render(args.format, doc))
        return 0
    c = doc["Client"]
    rows = [
        ("Client:", "hutch Engine"),
        ("Version:", c["Version"]),
        ("API Version:", c["APIVersion"]),
        ("Python Version:", c["PythonVersion"]),
        ("Built:", c["BuiltTime"]),
        ("OS/Arch:", c["OsArch"]),
    ]
    width = max(len(k) for k, _ in rows) + 2  # as Go's tabwriter pads podman's
    sys.stdout.write("".join(f"{k:<{width}}{v}\n" for k, v in rows))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from hutch.engine import system

    with _engine(args) as engine:
        doc = system.info(engine)
    if args.format == "json":
        print(_json(doc))
    elif args.format:
        print(_render(args.format, doc))
    else:
        sys.stdout.write(_yaml(doc))
    return 0


def _yaml(doc: Any, indent: int = 0) -> str:
    """podman info's YAML, for the plain values it holds."""
    pad = "  " * indent
    out = []
    for key, value in doc.items():
        if isinstance(value, dict):
            out.append(f"{pad}{key}:" + (" {}\n" if not value else "\n" + _yaml(value, indent + 1)))
        elif isinstance(value, list):
            out.append(
                f"{pad}{key}:" + (" []\n" if not value else "\n" + "".join(f"{pad}- {v}\n" for v in value))
            )
        elif isinstance(value, bool):
            out.append(f"{pad}{key}: {'true' if value else 'false'}\n")
        elif isinstance(value, str) and (not value or value[0] in "{[&*!|>'\"%@`" or ": " in value):
            out.append(f"{pad}{key}: {_json(value)}\n")
        else:
            out.append(f"{pad}{key}: {value}\n")
    return "".join(out)


def cmd_system_df(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt
    from hutch.engine import system

    with _engine(args) as engine:
        records = engine.list(all=True)
        sizes = {r.id: system.container_size(engine, r) for r in records}
        used = {r.image_id for r in records}
        images = list(engine.storage().iter_images())
        shared, twice = system.image_sharing(engine, images)
        vols = _volume_usage(engine, records)
    if args.verbose:
        return _df_verbose(records, sizes, images, shared, vols)

    def pct(part: int, total: int) -> str:
        return f"{fmt.human_size(part)} ({100 * part // total if total else 0}%)"

    img_total = sum(i.size for i in images) - twice  # shared layers once
    img_free = sum(i.size - shared[i.id.hex] for i in images if i.id.hex not in used)
    ctr_total = sum(sizes.values())
    ctr_free = sum(sizes[r.id] for r in records if r.state not in ("running", "paused"))
    vol_total = sum(s for _, _, s in vols)
    vol_free = sum(s for _, links, s in vols if links == 0)
    active = sum(1 for r in records if r.state in ("running", "paused"))
    rows = [
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        [
            "Images",
            str(len(images)),
            str(sum(1 for i in images if i.id.hex in used)),
            fmt.human_size(img_total),
            pct(img_free, img_total),
        ],
        ["Containers", str(len(records)), str(active), fmt.human_size(ctr_total), pct(ctr_free, ctr_total)],
        [
            "Local Volumes",
            str(len(vols)),
            str(sum(1 for _, links, _ in vols if links)),
            fmt.human_size(vol_total),
            pct(vol_free, vol_total),
        ],
    ]
    sys.stdout.write(fmt.table(rows))
    return 0


def _volume_usage(engine: Engine, records: list[Record]) -> list[tuple[str, int, int]]:
    """(name, containers using it, bytes) of each volume."""
    from hutch.engine import system, volumedb

    links: dict[str, int] = {}
    for rec in records:
        for name in _volumes_of(rec):
            links[name] = links.get(name, 0) + 1
    out = []
    volumes_dir = os.path.join(engine.root, "volumes")
    for vol in volumedb.all(engine.db):
        out.append((vol.name, links.get(vol.name, 0), system.du(os.path.join(volumes_dir, vol.name))))
    return out


def _volumes_of(rec: Record) -> list[str]:
    """The names of the volumes the container mounts (its record's Mounts)."""
    from hutch import jsonfast

    mounts = jsonfast.loads(rec.config or "{}").get("Mounts") or []
    return [str(m.get("Name")) for m in mounts if isinstance(m, dict) and m.get("Type") == "volume"]


def _df_verbose(
    records: list[Record],
    sizes: dict[str, int],
    images: list[Any],
    shared: dict[str, int],
    vols: list[tuple[str, int, int]],
) -> int:
    from hutch.cli import format as fmt
    from hutch.image.storage import repository_and_tag

    users: dict[str, int] = {}
    for r in records:
        users[r.image_id] = users.get(r.image_id, 0) + 1
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"]]
    for img in images:
        repo, tag = repository_and_tag(img.tags[0]) if img.tags else ("<none>", "<none>")
        size = fmt.human_size(img.size)
        rows.append(
            [
                repo,
                tag,
                img.id.short,
                fmt.ago(img.created),
                size,
                fmt.human_size(shared[img.id.hex]),
                fmt.human_size(img.size - shared[img.id.hex]),
                str(users.get(img.id.hex, 0)),
            ]
        )
    out = ["Images space usage:\n\n", fmt.table(rows), "\nContainers space usage:\n\n"]
    now = time.time()
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"]]
    from hutch.cli.psview import status_text

    for r in records:
        rows.append(
            [
                r.id[:12],
                r.image_id[:12],
                r.command,
                str(len(_volumes_of(r))),
                fmt.human_size(sizes[r.id]),
                fmt.human_duration(now - r.created) + " ago",
                status_text(r, now),
                r.name,
            ]
        )
    out += [fmt.table(rows), "\nLocal Volumes space usage:\n\n"]
    out.append(
        fmt.table(
            [["VOLUME NAME", "LINKS", "SIZE"]] + [[n, str(links), fmt.human_size(s)] for n, links, s in vols]
        )
    )
    sys.stdout.write("".join(out))
    return 0


def cmd_system_prune(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt
    from hutch.engine import system

    if not args.force:
        lines = [
            "WARNING! This command removes:",
            "\t- all stopped containers",
            "\t- all networks not used by at least one container",
        ]
        if args.volumes:
            lines.append("\t- all volumes not used by at least one container")
        lines.append(
            "\t- all images without at least one container associated with them"
            if args.all
            else "\t- all dangling images"
        )
        if not _confirm("\n".join(lines) + "\n"):
            return 0
    with _engine(args) as engine:
        from hutch.cli.imageops import containers_using

        engine.storage().in_use = containers_using(engine.root)
        report = system.prune(engine, all=args.all, volumes=args.volumes)
    for title, key in (
        ("Deleted Containers", "containers"),
        ("Deleted Networks", "networks"),
        ("Deleted Volumes", "volumes"),
        ("Deleted Images", "images"),
    ):
        if report[key]:
            print(title)
            for item in report[key]:
                print(item)
    print(f"Total reclaimed space: {fmt.human_size(report['freed'])}")
    return 0


def cmd_system_reset(args: argparse.Namespace) -> int:
    from hutch.engine import system

    if not args.force and not _confirm(
        "WARNING! This will remove all containers, images, volumes and state of the root "
        f"{os.path.abspath(args.root or '/var/lib/hutch/storage')}."
    ):
        return 0
    engine = _engine(args)
    try:
        system.reset(engine)
    finally:
        engine.close()
    return 0


def _system_help(args: argparse.Namespace) -> int:
    raise HutchError("system: a subcommand is needed (info, df, prune, reset)")
