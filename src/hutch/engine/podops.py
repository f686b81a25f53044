"""What podman does across a pod's containers at once: `pod top` (every container's processes), `pod stats`
(a sample per container, its memory limit bounded by the pod's cgroup) and `pod logs` (the containers' logs
interleaved by time, each line prefixed with its container's id or name, followed until they all stop).
"""

from __future__ import annotations

import time

from hutch.errors import StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.engine.logs import Line
    from hutch.engine.stats import Sample


def top(engine: Engine, pod: dict[str, Any], wanted: list[str]) -> list[list[str]]:
    """The header and a row per process of every running container of the pod (the infra first)."""
    from hutch.engine import pods
    from hutch.engine import top as _top

    live = [r for r in pods.containers(engine, pod) if r.state in ("running", "paused")]
    if not live:
        raise StateError(f"pod {pod['Id']} is not running: no running containers in the pod")
    rows: list[list[str]] = []
    for rec in live:
        try:
            table = _top.table(engine, rec, wanted)
        except StateError:
            continue  # stopped meanwhile
        rows += table if not rows else table[1:]
    return rows


def stats(engine: Engine, pod: dict[str, Any], previous: dict[str, Sample]) -> list[Sample]:
    """A sample of each running container of the pod (podman skips the others). The pod's memory limit
    bounds each container's, as the kernel applies it (the container's cgroup lies below the pod's)."""
    from hutch.engine import pods
    from hutch.engine import stats as _stats

    limit = int((pod.get("Resources") or {}).get("memory", {}).get("limit", 0))
    out = []
    for rec in pods.containers(engine, pod):
        s = _stats.sample(engine, rec, previous.get(rec.id))
        if not s.running:
            continue
        if limit and (not s.mem_limit or s.mem_limit > limit):
            s.mem_limit = limit
        out.append(s)
    return out


def log_targets(engine: Engine, pod: dict[str, Any], only: list[str]) -> list[Record]:
    """The containers whose logs `pod logs` shows: the members (the infra logs nothing), or `-c` ones."""
    from hutch.engine import pods

    members = pods.members(engine, pod)
    if not only:
        return members
    chosen = []
    for name in only:
        rec = engine.find(name)
        if rec.id not in {m.id for m in members}:
            raise StateError(f"container {name} is not in pod {pod['Name']}")
        chosen.append(rec)
    return chosen


def logs(
    engine: Engine,
    recs: list[Record],
    *,
    since: int | None = None,
    until: int | None = None,
    tail: int = -1,
    follow: bool = False,
    interval: float = 0.1,
) -> Iterator[tuple[Record, Line]]:
    """The containers' log lines, oldest first across them (`tail` per container, as podman counts it);
    with `follow`, then the lines written after, until none of them runs."""
    from hutch.engine import logs as _logs

    def within(line: Line) -> bool:
        return (since is None or line.time_ns >= since) and (until is None or line.time_ns <= until)

    opened = []
    first: list[tuple[Record, Line]] = []
    try:
        for rec in recs:
            try:
                f = open(engine.log_path(rec), "rb")  # noqa: SIM115 (closed below)
            except FileNotFoundError:
                continue
            reader = _logs.Reader()
            opened.append((rec, f, reader))  # before reading: a failure below closes it too
            found = [ln for ln in reader.feed(f.read()) if within(ln)]
            if not follow:
                found += [ln for ln in reader.pending() if within(ln)]
            found = found[-tail:] if tail > 0 else [] if tail == 0 else found
            first += [(rec, ln) for ln in found]
        yield from sorted(first, key=lambda pair: pair[1].time_ns)
        while follow and opened:
            got = False
            for rec, f, reader in opened:
                data = f.read()
                if data:
                    got = True
                    yield from ((rec, ln) for ln in reader.feed(data) if within(ln))
            if got:
                continue
            if not _any_running(engine, [rec.id for rec, _, _ in opened]):
                for rec, f, reader in opened:
                    yield from ((rec, ln) for ln in reader.feed(f.read()) if within(ln))
                    yield from ((rec, ln) for ln in reader.pending() if within(ln))
                return
            time.sleep(interval)
    finally:
        for _, f, _ in opened:
            f.close()


def _any_running(engine: Engine, ids: list[str]) -> bool:
    from hutch.engine.db import ContainerDB, NoSuchContainer

    db = ContainerDB(engine.db.path)
    try:
        for cid in ids:
            try:
                if db.get(cid).state in ("running", "paused"):
                    return True
            except NoSuchContainer:
                continue
        return False
    finally:
        db.close()


def prefix(rec: Record, names: bool) -> bytes:
    """podman's prefix of a pod's log line: the container's short id, or its name with --names."""
    return (rec.name if names else rec.id[:12]).encode() + b" "
