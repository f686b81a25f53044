"""The monitor's flags of `hutch run`/`create`: --runtime, --restart, --log-driver and --log-opt, checked
before anything is made and recorded in the container's config JSON."""

from __future__ import annotations

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


def create_flags(c: argparse.ArgumentParser) -> None:
    """run/create: --runtime and --restart."""
    c.add_argument("--runtime", default="", help="hutch (default, in-process), runc, crun, runsc or a PATH")
    c.add_argument("--restart", default="", help="no, on-failure[:N], always or unless-stopped")
    c.add_argument("--log-driver", default="", help="k8s-file (default), none or passthrough")
    c.add_argument("--log-opt", action="append", default=[], metavar="max-size=N", help="log options")


def checked_options(args: argparse.Namespace) -> dict[str, object]:
    """--runtime and --restart, checked before anything is created: the config JSON fields they set."""
    fields: dict[str, object] = {}
    if getattr(args, "runtime", ""):  # none given: hutch's own (nothing recorded, nothing imported)
        from hutch.engine import runtimes

        fields["OCIRuntime"] = runtimes.resolve(args.runtime).name
    if getattr(args, "restart", ""):
        from hutch.engine import restart

        policy = restart.parse(args.restart)
        if policy["Name"] and getattr(args, "rm", False):
            raise HutchError(
                'the --rm option conflicts with --restart, when the restartPolicy is not "" and "no"'
            )
        fields["RestartPolicy"] = policy
    if getattr(args, "tty", False) and getattr(args, "detach_keys", None) is not None:
        from hutch.engine import attach

        attach.parse_detach_keys(args.detach_keys)  # run -t attaches (cli/runattach.py): checked first
    if getattr(args, "log_driver", "") or getattr(args, "log_opt", []):
        from hutch.engine import logwriter

        fields.update(logwriter.parse_flags(args.log_driver, args.log_opt, getattr(args, "detach", False)))
    return fields


def record_options(engine: Engine, rec: Record, fields: dict[str, object]) -> None:
    """Add the checked --runtime/--restart fields to the container's config JSON."""
    if not fields:
        return
    from hutch import jsonfast
    from hutch.engine.monitor import config_of

    cfg = config_of(rec)
    cfg.update(fields)
    rec.config = jsonfast.dumps(cfg)
    engine.db.update(rec.id, config=rec.config)
