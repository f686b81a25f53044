"""podman wait --condition: until a container reaches one of the states asked for (stopped/exited by
default); the exit code for an exit, -1 for the other conditions, as podman prints them."""

from __future__ import annotations

import time

from hutch.engine.db import NoSuchContainer
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.containers import Engine
    from hutch.engine.db import Record

CONDITIONS = ("configured", "created", "exited", "healthy", "unhealthy", "paused", "running", "stopped")


def check(conditions: list[str]) -> list[str]:
    for c in conditions:
        if c not in CONDITIONS:
            raise HutchError(f"--condition {c!r}: expected one of {', '.join(CONDITIONS)}")
    return conditions or ["stopped"]


def parse_interval(text: str) -> float:
    """--interval: podman's duration (250ms, 1s), or a number of milliseconds as it took before; seconds."""
    from hutch import duration

    try:
        return int(text) / 1000 if text.isdigit() else duration.parse_seconds(text)
    except ValueError as e:
        raise HutchError(f"--interval {text!r}: expected a duration (250ms) or milliseconds: {e}") from None


def _reached(rec: Record, conditions: list[str]) -> str:
    """The condition `rec` meets now, or ""."""
    state = rec.state
    for c in conditions:
        if c in ("stopped", "exited") and state == "exited":
            return c
        if c in ("configured", "created") and state == "created":
            return c
        if c in ("running", "paused") and state == c:
            return c
        if c in ("healthy", "unhealthy") and '"Healthcheck"' in rec.config:
            from hutch.engine import health

            doc = health.state(rec)
            if doc and doc.get("Status") == c:
                return c
    return ""


def wait(engine: Engine, name_or_id: str, conditions: list[str], interval: float = 0.05) -> int:
    """Until the container meets a condition; its exit code when it exited, else -1."""
    rec = engine.find(name_or_id)
    while True:
        try:
            rec = engine.refresh(engine.db.get(rec.id))
        except NoSuchContainer:
            break  # removed (--rm) once it exited
        met = _reached(rec, conditions)
        if met in ("stopped", "exited"):
            break
        if met:
            return -1
        time.sleep(interval)
    return rec.exit_code if rec.exit_code is not None else -1
