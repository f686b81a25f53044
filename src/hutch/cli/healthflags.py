"""The healthcheck flags of `hutch run`/`create` (--health-cmd, --health-interval, ..., --no-healthcheck)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


def add_flags(c: argparse.ArgumentParser) -> None:
    """run's and create's healthcheck flags (each replaces that field of the image's healthcheck)."""
    c.add_argument("--health-cmd", metavar="COMMAND", help="the check: a shell command, or a JSON array")
    c.add_argument("--health-interval", metavar="DURATION", help="time between checks (default 30s)")
    c.add_argument("--health-retries", type=int, metavar="N", help="failures before unhealthy (default 3)")
    c.add_argument("--health-timeout", metavar="DURATION", help="time a check may take (default 30s)")
    c.add_argument("--health-start-period", metavar="DURATION", help="failures within it do not count")
    c.add_argument("--no-healthcheck", action="store_true", help="no healthcheck, not even the image's")


def flags(args: argparse.Namespace) -> dict[str, Any]:
    """The healthcheck flags given, as hutch.engine.health.resolve takes them."""
    names = ("cmd", "interval", "retries", "timeout", "start_period")
    given = {name: getattr(args, f"health_{name}") for name in names}
    return {**given, "disabled": bool(args.no_healthcheck)}
