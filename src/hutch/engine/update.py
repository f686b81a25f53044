"""podman update: new resource limits for a container, live on its cgroups when it runs, and kept in its
config.json."""

from __future__ import annotations

from hutch.engine.resources import ResourceFlags, resources
from hutch.errors import ConfigError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


def update(engine: Engine, name_or_id: str, flags: ResourceFlags) -> Record:
    """podman update: new limits applied to the running container's cgroups through the runtime library,
    and kept in its config.json (merged), so a restart keeps them."""
    import os

    from hutch import jsonfast
    from hutch.engine.containers import _write_json

    rec = engine.find(name_or_id)
    doc = resources(flags, create=False)
    if not doc:
        raise ConfigError("update: no resource flag given (such as --memory, --cpus or --pids-limit)")
    if "memory" in doc and "swap" not in doc["memory"] and "limit" in doc["memory"]:
        doc["memory"]["swap"] = 2 * doc["memory"]["limit"]
    with engine.lock(rec.id):
        rec = engine.db.get(rec.id)
        if rec.state in ("running", "paused"):
            _apply_live(rec, doc)
        path = os.path.join(engine.path(rec, "userdata"), "config.json")
        with open(path) as f:
            spec = jsonfast.loads(f.read())
        current = spec.setdefault("linux", {}).setdefault("resources", {})
        for section, values in doc.items():
            current.setdefault(section, {}).update(values)
        _write_json(path, spec)
    return rec


def _apply_live(rec: Record, doc: dict[str, Any]) -> None:
    """New limits on a live container: through the runtime library for hutch's own runtime, or `RUNTIME
    update --resources -` for another one (runc, crun; runsc runs without cgroups here)."""
    from hutch.engine import monitor, runtimes
    from hutch.engine.cliruntime import CliRuntime

    runtime = monitor.runtime_of(rec)
    if isinstance(runtime, CliRuntime):
        import subprocess

        from hutch import jsonfast

        proc = subprocess.run(
            runtime.command("update", "--resources", "-", rec.id),
            input=jsonfast.dumps(doc), capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise StateError(f"update: {runtime.name}: {last}")
        return
    from hutch.oci.reader import Reader
    from hutch.oci.resources import parse_resources
    from hutch.runtime import cgroups, container

    root = runtime.root if isinstance(runtime, runtimes.HutchRuntime) else runtimes.HUTCH_ROOT
    c = container.load(root, rec.id)
    if c.status() == "stopped":
        raise StateError(f"container {rec.id} is not running: cannot update it")
    cgroups.update(c.cgroup, parse_resources(Reader(doc, "linux.resources", "update flags")))
