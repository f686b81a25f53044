"""pause, resume, ps and stats of a container run by another OCI runtime (`--runtime runc|crun|runsc|PATH`),
through that runtime's runc-compatible command line, as podman drives it: `pause`, `resume`,
`ps --format json` (the pids) and `events --stats` (runc's stats document, the shape the runtime library's
cgroups.stats.read gives for hutch's own containers).
"""

from __future__ import annotations

from hutch.errors import HutchError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.cliruntime import CliRuntime
    from hutch.engine.db import Record


def cli_runtime(rec: Record) -> CliRuntime | None:
    """The other runtime `rec` runs under, or None for hutch's own."""
    from hutch import jsonfast
    from hutch.engine import runtimes
    from hutch.engine.cliruntime import CliRuntime

    name = jsonfast.loads(rec.config or "{}").get("OCIRuntime")
    if not isinstance(name, str) or name in ("", runtimes.HUTCH):
        return None
    runtime = runtimes.resolve(name)
    return runtime if isinstance(runtime, CliRuntime) else None


def _run(runtime: CliRuntime, *args: str) -> str:
    import subprocess

    proc = subprocess.run(runtime.command(*args), capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise StateError(f"{runtime.name} {args[0]}: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


def pause(runtime: CliRuntime, container_id: str) -> None:
    _run(runtime, "pause", container_id)


def resume(runtime: CliRuntime, container_id: str) -> None:
    _run(runtime, "resume", container_id)


def pids(runtime: CliRuntime, container_id: str) -> list[int]:
    from hutch import jsonfast

    doc = jsonfast.loads(_run(runtime, "ps", "--format", "json", container_id) or "[]")
    if not isinstance(doc, list):
        raise HutchError(f"{runtime.name} ps: expected a JSON list of pids")
    return [int(p) for p in doc]


def stats(runtime: CliRuntime, container_id: str) -> dict[str, Any]:
    from hutch import jsonfast

    doc = jsonfast.loads(_run(runtime, "events", "--stats", container_id))
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise HutchError(f"{runtime.name} events --stats: no stats in its output")
    return data
