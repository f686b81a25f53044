"""A healthcheck run once (`hutch healthcheck run`, called by the check loop of hutch.engine.health): the
check command executed in the container with its timeout, and the result recorded in the container's
State.Health."""

from __future__ import annotations

import contextlib
import os
import time

from hutch import jsonfast
from hutch.engine.health import (
    LOG_ENTRIES,
    OUTPUT_LIMIT,
    SECOND,
    STATE_FILE,
    Paused,
    command,
    number,
    of,
    state,
)
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


def _save(engine: Engine, rec: Record, doc: dict[str, object]) -> None:
    path = engine.path(rec, f"userdata/{STATE_FILE}")
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(jsonfast.dumps(doc))
    os.rename(tmp, path)


def run_check(engine: Engine, name_or_id: str, hutch: list[str]) -> str:
    """Run the container's check once (through `hutch exec`, so that the timeout can end it) and record the
    result; returns the status: healthy, unhealthy or starting. `hutch` is the command that runs hutch."""
    rec = engine.find(name_or_id)
    check = of(rec)
    if check is None:
        raise HutchError(f"container {rec.id} has no defined healthcheck")
    if rec.state == "paused":
        raise Paused(f"container {rec.id} is paused")
    if rec.state != "running":
        raise HutchError(f"container {rec.id} is not running")
    import signal
    import subprocess

    timeout = number(check, "Timeout") / SECOND
    start = time.time()
    proc = subprocess.Popen(
        [*hutch, "exec", rec.id, *command(check)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        # `hutch exec` passes SIGTERM on to the check; the check's stdout may outlive it (a process left in
        # the container holds the pipe), so it is not read to its end.
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        code = -1
        output = f"healthcheck command exceeded timeout of {number(check, 'Timeout') // SECOND}s".encode()
    end = time.time()
    return _record(engine, rec, check, start, end, code, output.decode(errors="replace")[:OUTPUT_LIMIT])


def _record(
    engine: Engine, rec: Record, check: dict[str, object], start: float, end: float, code: int, output: str
) -> str:
    with engine.lock(rec.id):
        doc = state(rec) or {}
        log = list(doc.get("Log") or [])  # type: ignore[call-overload]
        log.append({"Start": _rfc3339(start), "End": _rfc3339(end), "ExitCode": code, "Output": output})
        streak = number(doc, "FailingStreak")
        in_start_period = (
            rec.started is not None and start - rec.started < number(check, "StartPeriod") / SECOND
        )
        if code == 0:
            status, streak = "healthy", 0
        elif in_start_period:
            status = str(doc.get("Status") or "starting")
        else:
            streak += 1
            retries = number(check, "Retries")
            status = "unhealthy" if streak >= retries else str(doc.get("Status") or "starting")
        _save(engine, rec, {"Status": status, "FailingStreak": streak, "Log": log[-LOG_ENTRIES:]})
    return status


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
