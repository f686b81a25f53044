"""`hutch` container commands: run, ps, stop, rm, logs, with podman's flags, output and exit codes.

podman's exit codes: `run` exits with the container's own code, 125 for an engine error, 126 when the command
cannot be invoked, 127 when it is not found; `rm` exits 1 when a container does not exist and 2 when one runs
(without -f). Registered into the main parser by `register`.
"""

from __future__ import annotations

import argparse
import os.path
import sys
import time

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record

DEFAULT_STORAGE = "/var/lib/hutch/storage"


def _engine(args: argparse.Namespace) -> Engine:
    from hutch.engine.containers import Engine

    return Engine(args.root or DEFAULT_STORAGE, args.db_path)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"Error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from hutch.engine.containers import InvokeError, protect_interpreter
    from hutch.engine.spec import Options

    protect_interpreter()
    if args.detach and args.tty:
        raise HutchError("run: -t with -d needs a terminal monitor, which hutch does not have yet")
    seccomp = "default"
    for opt in args.security_opt:
        key, _, value = opt.partition("=")
        if key == "seccomp" and value:
            seccomp = value
        else:
            raise HutchError(f"--security-opt {opt!r}: only seccomp=unconfined|PROFILE is supported yet")
    opts = Options(
        command=list(args.command),
        entrypoint=args.entrypoint,
        env=list(args.env),
        workdir=args.workdir or "",
        user=args.user or "",
        hostname=args.hostname or "",
        read_only=args.read_only,
        network=args.network,
        seccomp=seccomp,
        tty=args.tty,
    )
    with _engine(args) as engine:
        rec = engine.create(
            args.image, opts, name=args.name or "", remove=args.rm, pull=args.pull, tls_verify=args.tls_verify
        )
        try:
            if args.detach:
                engine.run_detached(rec)
                print(rec.id, flush=True)
                return 0
            sys.stdout.flush()
            return engine.run_foreground(rec, tty=args.tty, interactive=args.interactive)
        except InvokeError as e:
            return _fail(str(e), e.exit_code)


def cmd_ps(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt

    with _engine(args) as engine:
        records = engine.list(all=args.all)
    if args.last is not None and args.last >= 0:
        records = records[-args.last :] if args.last else []
    if args.latest:
        records = records[-1:]
    records.reverse()  # newest first, as podman lists them
    if args.quiet:
        for rec in records:
            print(rec.id if args.no_trunc else rec.id[:12])
        return 0
    if args.format == "json":
        import json

        print(json.dumps([_ps_json(r) for r in records], indent=4))
        return 0
    if args.format:
        raise HutchError(f"--format {args.format!r}: only json is supported yet")
    now = time.time()
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
    for rec in records:
        command = rec.command if args.no_trunc or len(rec.command) <= 17 else rec.command[:17] + "..."
        rows.append(
            [
                rec.id if args.no_trunc else rec.id[:12],
                rec.image_name,
                command,
                fmt.human_duration(now - rec.created) + " ago",
                status_text(rec, now),
                "",
                rec.name,
            ]
        )
    sys.stdout.write(fmt.table(rows))
    return 0


def status_text(rec: Record, now: float) -> str:
    from hutch.cli import format as fmt

    if rec.state == "running":
        return "Up " + fmt.human_duration(now - (rec.started or rec.created))
    if rec.state == "exited":
        code = rec.exit_code if rec.exit_code is not None else -1
        return f"Exited ({code}) " + fmt.human_duration(now - (rec.finished or rec.created)) + " ago"
    return "Created"


def _ps_json(rec: Record) -> dict[str, Any]:
    return {
        "Id": rec.id,
        "Names": [rec.name],
        "Image": rec.image_name,
        "ImageID": rec.image_id,
        "Command": rec.command.split(" ") if rec.command else [],
        "Created": int(rec.created),
        "StartedAt": int(rec.started or 0),
        "ExitedAt": int(rec.finished or 0),
        "State": rec.state,
        "Exited": rec.state == "exited",
        "ExitCode": rec.exit_code or 0,
        "AutoRemove": rec.remove,
    }


def cmd_stop(args: argparse.Namespace) -> int:
    from hutch.engine.db import NoSuchContainer

    code = 0
    with _engine(args) as engine:
        names = [r.id for r in engine.list()] if args.all else args.containers
        if not names and not args.all:
            raise HutchError("you must provide at least one name or id")
        for name in names:
            try:
                engine.stop(name, args.time)
            except NoSuchContainer as e:
                code = _fail(str(e), 125)
                continue
            print(name)
    return code


def cmd_rm(args: argparse.Namespace) -> int:
    from hutch.engine.containers import RunningError
    from hutch.engine.db import NoSuchContainer

    code = 0
    with _engine(args) as engine:
        names = [r.id for r in engine.list(all=True)] if args.all else args.containers
        if not names and not args.all:
            raise HutchError("you must provide at least one name or id")
        for name in names:
            try:
                engine.remove(name, force=args.force)
            except NoSuchContainer as e:
                if args.ignore:
                    continue
                code = code or _fail(str(e), 1)
                continue
            except RunningError as e:
                code = _fail(str(e), 2)
                continue
            print(name)
    return code


def cmd_logs(args: argparse.Namespace) -> int:
    from hutch.engine.db import NoSuchContainer

    with _engine(args) as engine:
        rec = engine.find(args.container)
        path = engine.log_path(rec)
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        out = sys.stdout.buffer
        while True:
            chunk = f.read(65536)
            if chunk:
                out.write(chunk)
                continue
            out.flush()
            if not args.follow:
                break
            with _engine(args) as engine:
                try:
                    running = engine.find(rec.id).state == "running"
                except NoSuchContainer:
                    running = False  # --rm removed it; its log stays readable through our fd
            if not running:
                out.write(f.read())
                break
            time.sleep(0.1)
    out.flush()
    return 0


def _bool(text: str) -> bool:
    value = text.lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


def register(
    sub: argparse._SubParsersAction[Any],
    add: Callable[..., argparse.ArgumentParser],
) -> None:
    """Add the container commands to the `hutch` parser's subcommands (`add` is main's helper)."""
    c = add(sub, "run", cmd_run, "run a command in a new container")
    c.add_argument("-d", "--detach", action="store_true", help="run in the background; print the id")
    c.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    c.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    c.add_argument("--rm", action="store_true", help="remove the container when it exits")
    c.add_argument("--name", help="the container's name")
    c.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE", help="set an env var")
    c.add_argument("-w", "--workdir", help="working directory inside the container")
    c.add_argument("-u", "--user", help="user[:group] (names or ids)")
    c.add_argument("--entrypoint", help="override the image's ENTRYPOINT (a string or a JSON array)")
    c.add_argument("--hostname", help="the container's hostname")
    c.add_argument("--read-only", action="store_true", help="mount the rootfs read-only")
    c.add_argument("--network", "--net", default="none", choices=("none", "host"), help="none or host")
    c.add_argument("--security-opt", action="append", default=[], help="seccomp=unconfined|PROFILE")
    c.add_argument("--pull", default="missing", help="always, missing (default), never or newer")
    c.add_argument(
        "--tls-verify",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="require HTTPS and verify certificates when pulling (default true)",
    )
    c.add_argument("image", metavar="IMAGE")
    c.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")

    for name, aliases in (("ps", ("list", "ls")),):
        c = add(sub, name, cmd_ps, "list containers", aliases)
        c.add_argument("-a", "--all", action="store_true", help="all containers, not only running ones")
        c.add_argument("-q", "--quiet", action="store_true", help="print only the ids")
        c.add_argument("--no-trunc", action="store_true", help="full ids and commands")
        c.add_argument("-n", "--last", type=int, help="the N last created containers")
        c.add_argument("-l", "--latest", action="store_true", help="the last created container")
        c.add_argument("--format", help="json")

    c = add(sub, "stop", cmd_stop, "stop containers")
    c.add_argument("containers", nargs="*", metavar="CONTAINER")
    c.add_argument("-t", "--time", type=int, default=10, help="seconds before SIGKILL (default 10)")
    c.add_argument("-a", "--all", action="store_true", help="stop every running container")

    c = add(sub, "rm", cmd_rm, "remove containers")
    c.add_argument("containers", nargs="*", metavar="CONTAINER")
    c.add_argument("-f", "--force", action="store_true", help="kill running containers first")
    c.add_argument("-a", "--all", action="store_true", help="remove every container")
    c.add_argument("-i", "--ignore", action="store_true", help="no error for a missing container")

    c = add(sub, "logs", cmd_logs, "show a detached container's output")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument("-f", "--follow", action="store_true", help="follow until the container exits")
