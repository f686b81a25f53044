"""What `hutch ps` asks beyond the container list, as podman has it: the --filter matcher (status, name, id,
label, ancestor, exited, before, since, network, volume, health, pod), --sort, and the --size and --pod
columns. Imported only when one of those flags is given (hutch.cli.psview)."""

from __future__ import annotations

import os

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record

SORTS = ("command", "created", "id", "image", "names", "runningfor", "size", "status")


class Matcher:
    """Matches records against parsed filters; before=/since= name containers, resolved once."""

    def __init__(self, engine: Engine, filters: dict[str, list[str]]) -> None:
        self.filters = filters
        self.engine = engine
        self.before = [engine.find(n).created for n in filters.get("before", [])]
        self.since = [engine.find(n).created for n in filters.get("since", [])]
        self.pods = [_pod_id(engine, p) for p in filters.get("pod", [])]
        self.ancestors = [_image_id(engine, a) for a in filters.get("ancestor", [])]

    def __call__(self, rec: Record) -> bool:
        return all(self._one(key, values, rec) for key, values in self.filters.items())

    def _one(self, key: str, values: list[str], rec: Record) -> bool:
        if key == "status":
            return rec.state in values or (rec.state == "exited" and "stopped" in values)
        if key == "name":
            import re

            return any(re.search(v, rec.name) for v in values)
        if key == "id":
            return any(rec.id.startswith(v) for v in values)
        if key == "label":
            labels = _config(rec).get("Labels") or {}
            return all(_label(v, labels) for v in values)  # podman: every label= must match
        if key == "ancestor":
            return any(_ancestor(v, rec) for v in values) or rec.image_id in self.ancestors
        if key == "exited":
            return rec.state == "exited" and str(rec.exit_code) in values
        if key == "before":
            return all(rec.created < t for t in self.before)
        if key == "since":
            return all(rec.created > t for t in self.since)
        if key == "network":
            return bool(set(values) & set(networks(rec)))
        if key == "volume":
            return any(_uses_volume(v, rec) for v in values)
        if key == "health":
            return health(rec) in values
        if key == "pod":
            return pod_of(rec) in self.pods
        return True


def _config(rec: Record) -> dict[str, Any]:
    from hutch.engine.monitor import config_of

    return config_of(rec)


def _label(text: str, labels: dict[str, str]) -> bool:
    key, sep, value = text.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _ancestor(text: str, rec: Record) -> bool:
    """An image id prefix, or the image's name, its registry and path prefix (library/) optional, its tag
    too when `text` has none."""
    if text and rec.image_id.startswith(text.removeprefix("sha256:")):
        return True
    name = rec.image_name
    if ":" not in text.rpartition("/")[2] and ":" in name.rpartition("/")[2]:
        name = name.rpartition(":")[0]
    return name == text or name.endswith("/" + text)


def _image_id(engine: Engine, name: str) -> str:
    """The id (hex) of the image `name` resolves to in the storage, "" for none."""
    try:
        return str(engine.storage().find(name).id.hex)
    except HutchError:
        return ""


def _plan(rec: Record) -> dict[str, Any]:
    from hutch.engine.network import plan

    return plan.load(os.path.join(rec.dir, "userdata")) or {}


def networks(rec: Record) -> list[str]:
    """The names of the container's networks (none, host, container:ID for the other modes)."""
    doc = _plan(rec)
    names = [str(e.get("name")) for e in doc.get("networks", []) if isinstance(e, dict)]
    return names or [str(doc.get("mode", "none"))]


def _uses_volume(text: str, rec: Record) -> bool:
    mounts = _config(rec).get("Mounts") or []
    return any(text in (m.get("Name"), m.get("Destination"), m.get("Source")) for m in mounts)


def health(rec: Record) -> str:
    if '"Healthcheck"' not in rec.config:
        return "none"
    from hutch.engine import health as _health

    doc = _health.state(rec)
    return str(doc["Status"]) if doc else "starting"


def pod_of(rec: Record) -> str:
    """The id of the pod the container belongs to ("" for none)."""
    return str(_plan(rec).get("pod") or "")


def _pod_id(engine: Engine, name_or_id: str) -> str:
    from hutch.engine import pods

    try:
        return str(pods.find(engine, name_or_id)["Id"])
    except HutchError:
        return "\0"  # no such pod: matches nothing, as podman


def pod_columns(engine: Engine, rec: Record) -> tuple[str, str]:
    """ps --pod: POD ID (12) and PODNAME; the pod's infra container is its pod's too."""
    from hutch.engine import pods

    pid = pod_of(rec)
    for pod in pods.all_pods(engine):
        if pod["Id"] == pid or pod.get("InfraContainerID") == rec.id:
            return str(pod["Id"])[:12], str(pod["Name"])
    return "", ""


def sizes(engine: Engine, records: list[Record]) -> dict[str, tuple[int, int]]:
    """ps --size: per container (what it wrote: its upper dir, that + its image's size)."""
    from hutch.engine import system

    images = {img.id.hex: img.size for img in engine.storage().iter_images()}
    out = {}
    for rec in records:
        rw = system.container_size(engine, rec)
        out[rec.id] = (rw, rw + (images.get(rec.image_id.removeprefix("sha256:"), 0) or 0))
    return out


def size_text(rw: int, virtual: int) -> str:
    from hutch.cli import format as fmt

    return f"{fmt.human_size(rw)} (virtual {fmt.human_size(virtual)})"


def sort(engine: Engine, records: list[Record], key: str) -> list[Record]:
    """--sort: podman's keys; runningfor and created order newest first as podman shows them."""
    if key not in SORTS:
        raise HutchError(f"--sort {key!r}: expected one of {', '.join(SORTS)}")
    found = sizes(engine, records) if key == "size" else {}
    keys: dict[str, Any] = {
        "command": lambda r: r.command,
        "created": lambda r: -r.created,
        "runningfor": lambda r: -r.created,
        "id": lambda r: r.id,
        "image": lambda r: r.image_name,
        "names": lambda r: r.name,
        "size": lambda r: found[r.id][0],
        "status": lambda r: r.state,
    }
    return sorted(records, key=keys[key])


def columns(engine: Engine, records: list[Record], *, size: bool, pod: bool) -> dict[str, dict[str, str]]:
    """The extra columns of ps --size and --pod: header -> container id -> text."""
    out: dict[str, dict[str, str]] = {}
    if size:
        found = sizes(engine, records)
        out["SIZE"] = {r.id: size_text(*found[r.id]) for r in records}
    if pod:
        pods = {r.id: pod_columns(engine, r) for r in records}
        out["POD ID"] = {i: p[0] for i, p in pods.items()}
        out["PODNAME"] = {i: p[1] for i, p in pods.items()}
    return out
