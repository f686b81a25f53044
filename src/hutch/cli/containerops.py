"""`hutch` container commands other than run, create and ps, with podman's flags, output and exit codes:
start, stop, restart, kill, wait, exec, inspect, rm (1 when a container does not exist, 2 when one runs,
without -f), update; and their registration with the others (run/create: hutch.cli.containers, ps:
hutch.cli.psview, top..export: hutch.cli.manage, logs/attach: hutch.cli.monitor), at the top and under
`hutch container`.
"""

from __future__ import annotations

import os
import sys

from hutch.cli.fastargs import REMAINDER
from hutch.cli.main import engine_of, fail
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from hutch.engine.containers import Engine


def _names(engine: Engine, args: argparse.Namespace, stopped: bool = False) -> list[str]:
    """The CONTAINER arguments, or with --all every running container (and every stopped one with `stopped`)."""
    if args.all:
        if args.containers:
            raise HutchError("when using the --all switch, you may not pass any containers names or IDs")
        return [r.id for r in engine.list(all=stopped)]
    if not args.containers:
        raise HutchError("you must provide at least one name or id")
    return list(args.containers)


def cmd_stop(args: argparse.Namespace) -> int:
    from hutch.engine import stopping
    from hutch.engine.db import NoSuchContainer

    code = 0
    with engine_of(args) as engine:
        names = _names(engine, args)
        for name in names:
            try:
                stopping.stop(engine, name, args.time)
            except NoSuchContainer as e:
                code = fail(str(e), 125)
                continue
            print(name)
    return code


def cmd_rm(args: argparse.Namespace) -> int:
    from hutch.engine import pods, stopping
    from hutch.engine.db import NoSuchContainer

    code = 0
    with engine_of(args) as engine:
        names = _names(engine, args, stopped=True)
        if args.depend:
            from hutch.engine import depends

            names = depends.removal_order(engine, names)
        for name in names:
            try:
                pods.refuse_infra(engine, name)  # it goes with its pod (pod rm)
                if args.force and args.time is not None:  # rm -f -t N: stop (signal, N s, kill) first
                    stopping.stop(engine, name, args.time)
                stopping.remove(engine, name, force=args.force, volumes=args.volumes)
            except NoSuchContainer as e:
                if args.ignore:
                    continue
                failed = fail(str(e), 1)  # each one is reported; the first failure's code is kept
                code = code or failed
                continue
            except stopping.RunningError as e:
                code = fail(str(e), 2)
                continue
            except pods.InfraContainerError as e:
                code = fail(str(e), 125)
                continue
            print(name)
    return code


def cmd_update(args: argparse.Namespace) -> int:
    """podman update: new resource limits for a container (applied now if it runs, and kept)."""
    from hutch.cli import runflags
    from hutch.engine import update

    with engine_of(args) as engine:
        rec = update.update(engine, args.container, runflags.resource_flags(args))
    print(rec.id)
    return 0


def _start_one(
    engine: Engine, name: str, attach: bool = False, interactive: bool = False, keys: str = "ctrl-p,ctrl-q"
) -> int | None:
    """Start a created or exited container: detached under a monitor, or (`attach`) in the foreground, where
    the container's exit code is returned."""
    from hutch import jsonfast

    cfg = jsonfast.loads(engine.find(name).config or "{}")
    tty = bool(cfg.get("Tty"))
    rec, previous = engine.claim_start(name)
    if previous is None:
        return None  # it runs already
    from hutch.engine import monitor

    monitor.started_by_user(engine, rec)
    if attach:  # a failed launch puts the container back as it was
        sys.stdout.flush()
        if tty:  # under conmon, attached (cli/runattach.py): the detach keys leave it running
            from hutch.cli import runattach

            stdin = interactive or bool(cfg.get("OpenStdin"))
            return runattach.run(engine, rec, interactive=stdin, detach_keys=keys, restore=previous)
        return engine.run_foreground(
            rec, tty=tty, interactive=interactive or bool(cfg.get("OpenStdin")), restore=previous
        )
    engine.start_detached(rec, previous)
    return None


def cmd_start(args: argparse.Namespace) -> int:
    from hutch.engine.containers import InvokeError, prepare_launch
    from hutch.engine.db import NoSuchContainer

    prepare_launch()
    if args.attach and len(args.containers) > 1:
        raise HutchError("you cannot start and attach multiple containers at once")
    code = 0
    with engine_of(args) as engine:
        for name in args.containers:
            try:
                result = _start_one(
                    engine, name, attach=args.attach, interactive=args.interactive, keys=args.detach_keys
                )
            except InvokeError as e:
                code = fail(str(e), e.exit_code if args.attach else 125)
                continue
            except NoSuchContainer as e:  # reported; the others are still started
                code = fail(str(e), 125)
                continue
            if args.attach:
                return result if result is not None else 0
            print(name, flush=True)
    return code


def cmd_restart(args: argparse.Namespace) -> int:
    from hutch.engine import stopping
    from hutch.engine.containers import prepare_launch

    prepare_launch()
    with engine_of(args) as engine:
        names = _names(engine, args, stopped=True)  # podman's -a: every container, whatever its state
        for name in names:
            stopping.stop(engine, name, args.time)
            _start_one(engine, name)
            print(name, flush=True)
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    from hutch.engine import stopping
    from hutch.errors import NotFoundError, StateError
    from hutch.runtime.lifecycle import parse_signal

    sig = parse_signal(args.signal)
    code = 0
    with engine_of(args) as engine:
        names = _names(engine, args)
        for name in names:
            try:
                stopping.kill(engine, name, sig)
            except (NotFoundError, StateError) as e:  # reported; the others are still signalled
                code = fail(str(e), 125)
                continue
            print(name, flush=True)
    return code


def cmd_wait(args: argparse.Namespace) -> int:
    from hutch.engine import waiting  # --condition

    conditions = waiting.check(args.condition)
    interval = waiting.parse_interval(args.interval) if args.interval else 0.05
    with engine_of(args) as engine:
        for name in args.containers:
            print(waiting.wait(engine, name, conditions, interval), flush=True)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    from hutch.engine.containers import InvokeError, prepare_launch

    prepare_launch()
    if not args.interactive or args.detach:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    saved: list[int] = []
    if args.detach:  # the process keeps none of our output: podman prints only the session id
        saved = [os.dup(1), os.dup(2)]
        null = os.open("/dev/null", os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
    with engine_of(args) as engine:
        try:
            try:
                code = engine.exec(
                    args.container,
                    list(args.command),
                    env=list(args.env),
                    user=args.user or "",
                    workdir=args.workdir or "",
                    tty=args.tty,
                    detach=args.detach,
                )
            finally:  # our stdio back before an error is written
                for fd, copy in enumerate(saved, start=1):
                    os.dup2(copy, fd)
                    os.close(copy)
        except InvokeError as e:
            return fail(str(e), e.exit_code)
    if args.detach:
        import secrets

        print(secrets.token_hex(32), flush=True)
    return code


def cmd_inspect(args: argparse.Namespace) -> int:
    """podman inspect / container inspect: a JSON array, or a Go template per object."""
    from hutch.cli.templates import print_documents
    from hutch.engine.db import NoSuchContainer

    docs: list[Any] = []
    missing = ""
    with engine_of(args) as engine:
        for name in args.names:
            try:
                docs.append(engine.inspect(engine.find(name)))
                continue
            except NoSuchContainer:
                pass
            if getattr(args, "containers_only", False):
                missing = missing or f'no such container "{name}"'
                continue
            try:
                storage = engine.storage()
                docs.append(storage.inspect(storage.find(name)))
            except HutchError:
                missing = missing or f'no such object: "{name}"'
    print_documents(args.format, docs)
    return fail(missing, 125) if missing else 0


def _container_help(args: argparse.Namespace) -> int:
    raise HutchError(
        "container: a subcommand is needed (create, start, run, ps, stop, restart, kill, wait, "
        "exec, inspect, logs, rm)"
    )


def _commands(
    sub: argparse._SubParsersAction[Any],
    add: Callable[..., argparse.ArgumentParser],
    top: bool,
    command: str | None = None,
) -> None:
    """The container commands, at the top (`hutch ps`) or under `hutch container`; given `command`, only
    the module that declares it is imported."""

    def wanted(*names: str) -> bool:
        return command is None or command in names

    if wanted("top", "stats", "pause", "unpause", "rename", "cp", "diff", "commit", "export"):
        from hutch.cli import manage

        manage.commands(sub, add, top)  # top, stats, pause, rename, cp, diff, commit, export, prune
    if wanted("run", "create"):
        from hutch.cli import containers

        containers.declare(sub, add, run=True)
        containers.declare(sub, add, run=False)
    if wanted("ps", "list", "ls"):
        from hutch.cli import psview

        psview.declare(sub, add)

    c = add(sub, "start", cmd_start, "start created or exited containers")
    c.add_argument("containers", nargs="+", metavar="CONTAINER")
    c.add_argument("-a", "--attach", action="store_true", help="in the foreground: its output, its code")
    c.add_argument("-i", "--interactive", action="store_true", help="our stdin to the container (with -a)")
    c.add_argument("--detach-keys", default="ctrl-p,ctrl-q", help="with -a of a -t container: detach keys")

    c = add(sub, "stop", cmd_stop, "stop containers")
    c.add_argument("containers", nargs="*", metavar="CONTAINER")
    c.add_argument("-t", "--time", type=int, help="seconds before SIGKILL (default: --stop-timeout, else 10)")
    c.add_argument("-a", "--all", action="store_true", help="stop every running container")

    c = add(sub, "restart", cmd_restart, "stop and start containers")
    c.add_argument("containers", nargs="*", metavar="CONTAINER")
    c.add_argument("-t", "--time", type=int, help="seconds before SIGKILL (default: --stop-timeout, else 10)")
    c.add_argument("-a", "--all", action="store_true", help="restart every container, whatever its state")

    c = add(sub, "kill", cmd_kill, "send a signal to containers")
    c.add_argument("containers", nargs="*", metavar="CONTAINER")
    c.add_argument("-s", "--signal", default="KILL", help="the signal (default KILL)")
    c.add_argument("-a", "--all", action="store_true", help="every running container")

    c = add(sub, "wait", cmd_wait, "wait for containers to exit; print their exit codes")
    c.add_argument("containers", nargs="+", metavar="CONTAINER")
    c.add_argument("-i", "--interval", default="", help="time between checks: a duration (250ms) or ms")
    c.add_argument(
        "--condition",
        action="append",
        default=[],
        help="stopped (default), exited, running, paused, healthy, ...",
    )

    c = add(sub, "exec", cmd_exec, "run a process in a running container")
    c.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    c.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    c.add_argument("-d", "--detach", action="store_true", help="run in the background")
    c.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE", help="set an env var")
    c.add_argument("-u", "--user", help="user[:group] (names or ids)")
    c.add_argument("-w", "--workdir", help="working directory inside the container")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument("command", nargs=REMAINDER, metavar="COMMAND")

    c = add(sub, "inspect", cmd_inspect, "show containers' (or images') configuration and state")
    c.add_argument("names", nargs="+", metavar="NAME")
    c.add_argument("-f", "--format", help="json (default) or a Go template such as '{{.State.Status}}'")
    if not top:
        c.set_defaults(containers_only=True)

    c = add(sub, "rm", cmd_rm, "remove containers")
    c.add_argument("containers", nargs="*", metavar="CONTAINER")
    c.add_argument("-f", "--force", action="store_true", help="kill running containers first")
    c.add_argument("-a", "--all", action="store_true", help="remove every container")
    c.add_argument("-i", "--ignore", action="store_true", help="no error for a missing container")
    c.add_argument("-v", "--volumes", action="store_true", help="remove the container's anonymous volumes")
    c.add_argument("-t", "--time", type=int, help="with -f: seconds to wait for stop before killing")
    c.add_argument("--depend", action="store_true", help="also the containers that depend on them, first")

    if wanted("update"):
        c = add(sub, "update", cmd_update, "change the resource limits of a container")
        c.add_argument("container", metavar="CONTAINER")
        from hutch.cli import runflags

        runflags.add_resource_flags(c)
    if wanted("logs", "attach"):
        from hutch.cli import monitor

        monitor.add_commands(sub, add, top)  # logs, attach, container cleanup


def register(
    sub: argparse._SubParsersAction[Any],
    add: Callable[..., argparse.ArgumentParser],
    command: str | None = None,
) -> None:
    """Add the container commands to the `hutch` parser's subcommands (`add` is hutch.cli.argparser's;
    given `command`, only its declarations are read), and the same under `hutch container`, whose parser is
    built only when it is used."""
    _commands(sub, add, top=True, command=command)
    group = add(sub, "container", _container_help, "manage containers (the commands above, under container)")
    group.add_argument("rest", nargs=REMAINDER, metavar="COMMAND ...")
    parser_class = type(group)

    def container(args: argparse.Namespace) -> int:
        p = parser_class(prog="hutch container")
        _commands(p.add_subparsers(dest="container_command", metavar="COMMAND"), add, top=False)
        p.parse_args(args.rest, namespace=args)
        if args.handler is container:
            return _container_help(args)
        return int(args.handler(args))

    group.set_defaults(handler=container)
