"""Healthchecks, as podman runs them: a command run in the container (an exec) every interval; its exit code
makes the container `healthy` or, after `retries` failures in a row, `unhealthy`. Failures within the start
period do not count. The state lives in userdata/healthcheck.json (podman's State.Health document).

podman schedules checks with systemd timers; hutch has no daemon and no systemd, so a container with a
healthcheck gets a small shell loop (`/bin/sh`, about 1 MiB) that sleeps the interval and calls
`hutch healthcheck run --from-timer ID`; the loop ends by itself once the check reports the container gone
or stopped (any exit code but 0 and 1; a paused container is skipped with 0), and `stop_timer` ends it when
the container finishes.
"""

from __future__ import annotations

import contextlib
import os

from hutch import jsonfast
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.containers import Engine
    from hutch.engine.db import Record

SECOND = 1_000_000_000  # the image config's durations are in nanoseconds
DEFAULTS = {"Interval": 30 * SECOND, "Timeout": 30 * SECOND, "StartPeriod": 0, "Retries": 3}
LOG_ENTRIES = 5  # podman keeps the last five results
OUTPUT_LIMIT = 4096
STATE_FILE = "healthcheck.json"
TIMER_FILE = "healthcheck.pid"


def parse_duration(text: str, flag: str) -> int:
    """A --health-* duration (Go's syntax: 30s, 1m30s, 500ms) in nanoseconds."""
    from hutch import duration

    try:
        return duration.parse_ns(text)
    except ValueError as e:
        raise HutchError(f"{flag} {text!r}: {e}") from None


def resolve(
    image: dict[str, object] | None,
    *,
    cmd: str | None = None,
    interval: str | None = None,
    timeout: str | None = None,
    start_period: str | None = None,
    retries: int | None = None,
    disabled: bool = False,
) -> dict[str, object] | None:
    """The container's healthcheck: the image's, with each flag given replacing its field. None when there
    is none, or --no-healthcheck, or the test is NONE."""
    if disabled:
        return None
    doc: dict[str, object] = {**DEFAULTS, **(image or {})}
    if cmd is not None:
        doc["Test"] = _test(cmd)
    for key, text, flag in (
        ("Interval", interval, "--health-interval"),
        ("Timeout", timeout, "--health-timeout"),
        ("StartPeriod", start_period, "--health-start-period"),
    ):
        if text is not None:
            doc[key] = parse_duration(text, flag)
    if retries is not None:
        if retries < 1:
            raise HutchError(f"--health-retries {retries}: must be at least 1")
        doc["Retries"] = retries
    test = doc.get("Test")
    if not isinstance(test, list) or not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        raise HutchError(f"healthcheck test {test!r}: expected CMD or CMD-SHELL and a command")
    for key in ("Interval", "Timeout"):
        if number(doc, key) < SECOND // 1000:
            raise HutchError(f"--health-{key.lower()}: must be at least 1ms")
    return doc


def _test(cmd: str) -> list[str]:
    """--health-cmd: a JSON array is CMD (the array itself is the command), anything else CMD-SHELL."""
    if cmd.startswith("["):
        with contextlib.suppress(jsonfast.DecodeError):
            value = jsonfast.loads(cmd)
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                return value if value[0] in ("CMD", "CMD-SHELL", "NONE") else ["CMD", *value]
    if cmd.lower() == "none":
        return ["NONE"]
    return ["CMD-SHELL", cmd]


def of(rec: Record) -> dict[str, object] | None:
    """The healthcheck `rec` was created with, if any."""
    doc = jsonfast.loads(rec.config or "{}")
    check = doc.get("Healthcheck") if isinstance(doc, dict) else None
    return check if isinstance(check, dict) else None


def number(doc: dict[str, object], key: str) -> int:
    value = doc.get(key)
    return int(value) if isinstance(value, (int, float)) else 0


def command(check: dict[str, object]) -> list[str]:
    test = [str(t) for t in check["Test"]]  # type: ignore[attr-defined]
    return ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]


# --- the state ----------------------------------------------------------------------------------------------


def state(rec: Record) -> dict[str, object] | None:
    """podman's State.Health of `rec` (Status, FailingStreak, Log), or None without a healthcheck."""
    if of(rec) is None:
        return None
    try:
        with open(os.path.join(rec.dir, "userdata", STATE_FILE)) as f:
            doc = jsonfast.loads(f.read())
    except (OSError, jsonfast.DecodeError):
        doc = None
    if not isinstance(doc, dict):
        return {"Status": "starting", "FailingStreak": 0, "Log": None}
    return doc


class Paused(HutchError):
    """A paused container is not checked; the check loop waits for it to go on."""


# --- the timer ----------------------------------------------------------------------------------------------


def hutch_command(root: str, db_path: str | None) -> list[str]:
    """How to run this same hutch on the same root (as conmon's exit command does)."""
    from hutch.engine import conmon

    return [*conmon.exit_command(), "--root", root, *(["--db-path", db_path] if db_path else [])]


def start_timer(engine: Engine, rec: Record) -> None:
    """Begin running the container's checks every interval (a no-op without a healthcheck); a timer left
    from an earlier run of the container is ended first."""
    check = of(rec)
    if check is None:
        return
    stop_timer(engine, rec)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(engine.path(rec, f"userdata/{STATE_FILE}"))
    hutch = hutch_command(engine.root, engine.image_db_path)
    interval = max(number(check, "Interval") / SECOND, 0.001)
    # $0 names the loop (stop_timer looks for it), $1 is the interval, the rest the check command.
    script = 'i=$1; shift; while sleep "$i"; do "$@" >/dev/null 2>&1; [ "$?" -le 1 ] || exit 0; done'
    import subprocess

    null = os.open("/dev/null", os.O_RDWR)
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", script, f"hutch-healthcheck-{rec.id[:12]}", f"{interval:g}",
             *hutch, "healthcheck", "run", "--from-timer", rec.id],
            stdin=null,
            stdout=null,
            stderr=null,
            start_new_session=True,
            close_fds=True,
        )  # fmt: skip
    finally:
        os.close(null)
    with open(engine.path(rec, f"userdata/{TIMER_FILE}"), "w") as f:
        f.write(str(proc.pid))


def stop_timer(engine: Engine, rec: Record) -> None:
    """End the container's check loop, if one runs (checked by its command line, not only its pid)."""
    path = engine.path(rec, f"userdata/{TIMER_FILE}")
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return
    with contextlib.suppress(OSError):
        os.unlink(path)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return
    if f"hutch-healthcheck-{rec.id[:12]}".encode() in cmdline:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, 9)  # SIGKILL (the signal module costs an enum import on the run path)
