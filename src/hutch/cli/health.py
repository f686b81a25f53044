"""`hutch healthcheck run CONTAINER`: run the container's healthcheck once, as podman does: silent with exit 0
when healthy; otherwise prints `unhealthy` (or `starting`, while failures fall in the start period) and exits
1; 125 when the container has no healthcheck or does not run. Registered by hutch.cli.argparser (run's
healthcheck flags are hutch.cli.runflags's)."""

from __future__ import annotations

from hutch.cli.fastargs import SUPPRESS

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any


def cmd_healthcheck_run(args: argparse.Namespace) -> int:
    from hutch.cli.main import DEFAULT_STORAGE
    from hutch.engine import health, healthrun
    from hutch.engine.containers import Engine

    with Engine(args.root or DEFAULT_STORAGE, args.db_path) as engine:
        try:
            status = healthrun.run_check(
                engine, args.container, health.hutch_command(engine.root, args.db_path)
            )
        except health.Paused:
            if args.from_timer:
                return 0  # the loop waits for the container to be unpaused
            raise
    if status == "healthy":
        return 0
    print(status, flush=True)
    return 1


def _help(args: argparse.Namespace) -> int:
    from hutch.cli.main import UsageError

    raise UsageError("healthcheck: a subcommand is needed (run)")


def register(sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser]) -> None:
    group = add(sub, "healthcheck", _help, "run containers' healthchecks")
    hsub = group.add_subparsers(dest="healthcheck_command", metavar="COMMAND", parser_class=type(group))
    c = add(hsub, "run", cmd_healthcheck_run, "run a container's healthcheck once")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument("--from-timer", action="store_true", help=SUPPRESS)  # the check loop's call
