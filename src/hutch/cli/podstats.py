"""`hutch pod stats`: a row per container of each pod (POD, CID, NAME, CPU %, MEM USAGE / LIMIT, ...), as
podman prints it; `--format json` has podman's keys, templates its fields (.Pod .CID .Name .CPU .MemUsage
.Mem .NetIO .BlockIO .PIDS); without --no-stream a table every --interval seconds until SIGINT."""

from __future__ import annotations

import argparse
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.stats import Sample

HEADER = ["POD", "CID", "NAME", "CPU %", "MEM USAGE/ LIMIT", "MEM %", "NET IO", "BLOCK IO", "PIDS"]
_JSON_KEYS = ("pod", "cid", "name", "cpu_percent", "mem_usage", "mem_percent", "net_io", "block_io", "pids")
_TITLES = {
    "Pod": "POD", "CID": "CID", "Name": "NAME", "CPU": "CPU %", "MemUsage": "MEM USAGE/ LIMIT",
    "MemUsageBytes": "MEM USAGE/ LIMIT", "Mem": "MEM %", "NetIO": "NET IO", "BlockIO": "BLOCK IO",
    "PIDS": "PIDS",
}  # fmt: skip


def _fields(pod_id: str, s: Sample) -> dict[str, Any]:
    from hutch.cli.manage import _stats_fields

    d = _stats_fields(s)
    return {
        "pod": pod_id[:12], "cid": s.id[:12], "name": s.name, "cpu_percent": d["cpu_percent"],
        "mem_usage": d["mem_usage"], "mem_percent": d["mem_percent"], "net_io": d["net_io"],
        "block_io": d["block_io"], "pids": d["pids"],
        "Pod": pod_id[:12], "CID": s.id[:12], "Name": s.name, "CPU": d["cpu_percent"],
        "MemUsage": d["mem_usage"], "MemUsageBytes": d["mem_usage"], "Mem": d["mem_percent"],
        "NetIO": d["net_io"], "BlockIO": d["block_io"], "PIDS": d["pids"],
    }  # fmt: skip


def _text(rows: list[dict[str, Any]], fmt_: str | None) -> str:
    from hutch.cli import format as fmt
    from hutch.cli import templates
    from hutch.cli.main import _json

    if fmt_ == "json":
        return _json([{k: d[k] for k in _JSON_KEYS} for d in rows]) + "\n"
    if fmt_:
        body = fmt_.removeprefix("table ")
        head = [templates.render(body, _TITLES) + "\n"] if fmt_.startswith("table ") else []
        return "".join(head + [templates.render(body, d) + "\n" for d in rows])
    table = [HEADER] + [[d[k] for k in _JSON_KEYS] for d in rows]
    return fmt.table(table)


def _pods(engine: Engine, args: argparse.Namespace) -> list[dict[str, Any]]:
    from hutch.engine import pods

    if args.pods:
        return [pods.find(engine, name) for name in args.pods]
    return pods.all_pods(engine)


def show(args: argparse.Namespace, open_engine: Callable[[argparse.Namespace], Engine]) -> int:
    """Print samples of the pods' containers: once with --no-stream, else until SIGINT (exit 0)."""
    from hutch.engine import podops

    previous: dict[str, Sample] = {}
    clear = sys.stdout.isatty() and not args.no_stream and not args.no_reset
    try:
        while True:
            rows: list[dict[str, Any]] = []
            with open_engine(args) as engine:
                for pod in _pods(engine, args):
                    samples = podops.stats(engine, pod, previous)
                    previous.update({s.id: s for s in samples})
                    rows += [_fields(pod["Id"], s) for s in samples]
            sys.stdout.write(("\033[2J\033[H" if clear else "") + _text(rows, args.format))
            sys.stdout.flush()
            if args.no_stream:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
