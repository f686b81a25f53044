"""`hutch` container commands: run, ps, stop, rm, logs, with podman's flags, output and exit codes.

podman's exit codes: `run` exits with the container's own code, 125 for an engine error, 126 when the command
cannot be invoked, 127 when it is not found; `rm` exits 1 when a container does not exist and 2 when one runs
(without -f). Registered into the main parser by `register`.
"""

from __future__ import annotations

import os.path
import sys
import time

from hutch.cli.fastargs import REMAINDER
from hutch.cli.main import DEFAULT_STORAGE, _json, bool_flag, login_flags, login_of, tls_flag
from hutch.cli.networks import ports_column
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.engine.spec import Options
    from hutch.image.progress import Progress


def _engine(args: argparse.Namespace) -> Engine:
    from hutch.engine.containers import Engine

    return Engine(args.root or DEFAULT_STORAGE, args.db_path, leave_open=True)  # we exit next


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"Error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    return code


def _options(args: argparse.Namespace) -> Options:
    from hutch.cli import health, networks, runflags
    from hutch.engine.spec import Options

    opts = Options(
        command=list(args.command),
        entrypoint=args.entrypoint,
        env=list(args.env),
        workdir=args.workdir or "",
        user=args.user or "",
        hostname=args.hostname or "",
        read_only=args.read_only,
        network=networks.network_mode(args),
        net=networks.net_options(args),
        tty=args.tty,
    )
    opts.health = health.flags(args)
    return runflags.apply(opts, args)  # the flags of hutch.cli.runflags (mounts, security, resources, ...)


def _create(engine: Engine, args: argparse.Namespace) -> Record:
    from hutch.cli import monitor

    extra = monitor.checked_options(args)  # --runtime, --restart: checked before anything is made
    rec = engine.create(
        args.image,
        _options(args),
        name=args.name or "",
        remove=args.rm,
        pull=args.pull,
        tls_verify=args.tls_verify,
        interactive=args.interactive,
        platform=args.platform or "",
        pull_progress=_no_progress if args.quiet else _pull_progress,
        login=login_of(args),
    )
    monitor.record_options(engine, rec, extra)
    return rec


def _pull_progress() -> Progress:
    """A pull of a missing image shows pull's bars on a terminal, its lines otherwise (imported only then)."""
    from hutch.cli.progress import for_stderr

    return for_stderr()


def _no_progress() -> None:
    return None


def cmd_run(args: argparse.Namespace) -> int:
    from hutch.engine.containers import InvokeError, prepare_launch

    prepare_launch()
    with _engine(args) as engine:
        rec = _create(engine, args)
        try:
            if args.detach:
                engine.run_detached(rec)
                print(rec.id, flush=True)
                return 0
            sys.stdout.flush()
            if args.tty:  # under conmon, attached: the detach keys leave it running (cli/runattach.py)
                from hutch.cli import runattach

                return runattach.run(
                    engine,
                    rec,
                    interactive=args.interactive,
                    detach_keys=args.detach_keys,
                    sig_proxy=args.sig_proxy,
                )
            return engine.run_foreground(
                rec, tty=args.tty, interactive=args.interactive, sig_proxy=args.sig_proxy
            )
        except InvokeError as e:
            return _fail(str(e), e.exit_code)


def cmd_ps(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt
    from hutch.cli import psview  # --filter's keys, --sort, --size, --pod

    filters = psview.parse(args.filter)
    extra: dict[str, dict[str, str]] = {}
    with _engine(args) as engine:
        records = engine.list(all=args.all or psview.implies_all(filters))
        if filters:
            records = list(filter(psview.Matcher(engine, filters), records))
        if args.last is not None and args.last >= 0:
            records = records[-args.last :] if args.last else []
        if args.latest:
            records = records[-1:]
        records.reverse()  # newest first, as podman lists them
        if args.sort:
            records = psview.sort(engine, records, args.sort)
        extra = psview.columns(engine, records, size=args.size, pod=args.pod)
    if args.quiet:
        for rec in records:
            print(rec.id if args.no_trunc else rec.id[:12])
        return 0
    if args.format == "json":
        print(_json([_ps_json(r) for r in records]))
        return 0
    now = time.time()
    if args.format:  # `table ...` gets podman's titles and padding (psview.render)
        docs = [_ps_fields(rec, now, args.no_trunc) for rec in records]
        sys.stdout.write(psview.render(args.format, docs, not args.noheading))
        return 0
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES", *extra]]
    for rec in records:
        command = rec.command if args.no_trunc or len(rec.command) <= 17 else rec.command[:17] + "..."
        rows.append(
            [
                rec.id if args.no_trunc else rec.id[:12],
                rec.image_name,
                command,
                fmt.human_duration(now - rec.created) + " ago",
                status_text(rec, now),
                ports_column(rec),
                rec.name,
                *(values[rec.id] for values in extra.values()),
            ]
        )
    sys.stdout.write(fmt.table(rows[1:] if args.noheading else rows))
    return 0


def _ps_fields(rec: Record, now: float, no_trunc: bool) -> dict[str, Any]:
    """The fields of a ps --format template, as podman names them."""
    from hutch.cli import format as fmt

    doc = _ps_json(rec)
    doc.update(
        ID=rec.id if no_trunc else rec.id[:12],
        Names=rec.name,
        Command=rec.command,
        Status=status_text(rec, now),
        CreatedAt=time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(rec.created)),
        RunningFor=fmt.human_duration(now - rec.created) + " ago",
        Ports=ports_column(rec),
    )
    return doc


def status_text(rec: Record, now: float) -> str:
    from hutch.cli import format as fmt

    if rec.state == "running":
        up = "Up " + fmt.human_duration(now - (rec.started or rec.created))
        if '"Healthcheck"' in rec.config:  # read the health state only of a container that has one
            from hutch.engine import health

            doc = health.state(rec)
            return f"{up} ({doc['Status']})" if doc else up
        return up
    if rec.state == "paused":
        return "Paused"
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
    from hutch.engine.db import NoSuchContainer

    code = 0
    with _engine(args) as engine:
        names = _names(engine, args)
        for name in names:
            try:
                engine.stop(name, args.time)
            except NoSuchContainer as e:
                code = _fail(str(e), 125)
                continue
            print(name)
    return code


def cmd_rm(args: argparse.Namespace) -> int:
    from hutch.engine import pods
    from hutch.engine.containers import RunningError
    from hutch.engine.db import NoSuchContainer

    code = 0
    with _engine(args) as engine:
        names = _names(engine, args, stopped=True)
        if args.depend:
            from hutch.engine import depends

            names = depends.removal_order(engine, names)
        for name in names:
            try:
                pods.refuse_infra(engine, name)  # it goes with its pod (pod rm)
                if args.force and args.time is not None:  # rm -f -t N: stop (signal, N s, kill) first
                    engine.stop(name, args.time)
                engine.remove(name, force=args.force, volumes=args.volumes)
            except NoSuchContainer as e:
                if args.ignore:
                    continue
                failed = _fail(str(e), 1)  # each one is reported; the first failure's code is kept
                code = code or failed
                continue
            except RunningError as e:
                code = _fail(str(e), 2)
                continue
            except pods.InfraContainerError as e:
                code = _fail(str(e), 125)
                continue
            print(name)
    return code


def cmd_update(args: argparse.Namespace) -> int:
    """podman update: new resource limits for a container (applied now if it runs, and kept)."""
    from hutch.cli import runflags
    from hutch.engine import resources

    with _engine(args) as engine:
        rec = resources.update(engine, args.container, runflags.resource_flags(args))
    print(rec.id)
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    with _engine(args) as engine:
        rec = _create(engine, args)
    print(rec.id, flush=True)
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
    with _engine(args) as engine:
        for name in args.containers:
            try:
                result = _start_one(
                    engine, name, attach=args.attach, interactive=args.interactive, keys=args.detach_keys
                )
            except InvokeError as e:
                code = _fail(str(e), e.exit_code if args.attach else 125)
                continue
            except NoSuchContainer as e:  # reported; the others are still started
                code = _fail(str(e), 125)
                continue
            if args.attach:
                return result if result is not None else 0
            print(name, flush=True)
    return code


def cmd_restart(args: argparse.Namespace) -> int:
    from hutch.engine.containers import prepare_launch

    prepare_launch()
    with _engine(args) as engine:
        names = _names(engine, args, stopped=True)  # podman's -a: every container, whatever its state
        for name in names:
            engine.stop(name, args.time)
            _start_one(engine, name)
            print(name, flush=True)
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    from hutch.errors import NotFoundError, StateError
    from hutch.runtime.lifecycle import parse_signal

    sig = parse_signal(args.signal)
    code = 0
    with _engine(args) as engine:
        names = _names(engine, args)
        for name in names:
            try:
                engine.kill(name, sig)
            except (NotFoundError, StateError) as e:  # reported; the others are still signalled
                code = _fail(str(e), 125)
                continue
            print(name, flush=True)
    return code


def cmd_wait(args: argparse.Namespace) -> int:
    from hutch.engine import waiting  # --condition

    conditions = waiting.check(args.condition)
    interval = waiting.parse_interval(args.interval) if args.interval else 0.05
    with _engine(args) as engine:
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
    with _engine(args) as engine:
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
            return _fail(str(e), e.exit_code)
    if args.detach:
        import secrets

        print(secrets.token_hex(32), flush=True)
    return code


def cmd_inspect(args: argparse.Namespace) -> int:
    """podman inspect / container inspect: a JSON array, or a Go template per object."""
    from hutch.engine.db import NoSuchContainer

    docs: list[Any] = []
    missing = ""
    with _engine(args) as engine:
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
    if not args.format or args.format == "json":
        print(_json(docs))
    else:
        from hutch.cli.format import render

        for doc in docs:
            print(render(args.format, doc))
    return _fail(missing, 125) if missing else 0


def _container_help(args: argparse.Namespace) -> int:
    raise HutchError(
        "container: a subcommand is needed (create, start, run, ps, stop, restart, kill, wait, "
        "exec, inspect, logs, rm)"
    )


def _create_flags(c: argparse.ArgumentParser, run: bool) -> None:
    if run:
        c.add_argument("-d", "--detach", action="store_true", help="run in the background; print the id")
        bool_flag(c, "--sig-proxy", help="the signals hutch gets go to the container (default true)")
        c.add_argument("--detach-keys", default="ctrl-p,ctrl-q", help="with -t: the keys that detach")
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
    from hutch.cli import networks

    networks.add_run_flags(c)  # --network, --ip, --mac-address, -p, -P, --add-host, --dns*, --network-alias
    c.add_argument("--pull", default="missing", help="always, missing (default), never or newer")
    c.add_argument("--platform", help="os/arch[/variant] of the image to use (pulled if not stored)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress output when pulling the image")
    tls_flag(c, help="require HTTPS and verify certificates when pulling (default true)")
    login_flags(c)
    from hutch.cli import health, runflags

    runflags.add(c)
    health.add_flags(c)
    from hutch.cli import monitor

    monitor.create_flags(c)
    c.add_argument("image", metavar="IMAGE")
    c.add_argument("command", nargs=REMAINDER, metavar="COMMAND")


def _commands(
    sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser], top: bool
) -> None:
    """The container commands, at the top (`hutch ps`) or under `hutch container`."""
    from hutch.cli import manage

    manage.commands(sub, add, top)  # top, stats, pause, rename, cp, diff, commit, export, prune
    _create_flags(add(sub, "run", cmd_run, "run a command in a new container"), run=True)
    _create_flags(add(sub, "create", cmd_create, "create a container; print its id"), run=False)

    c = add(sub, "ps", cmd_ps, "list containers", ("list", "ls"))
    c.add_argument("-a", "--all", action="store_true", help="all containers, not only running ones")
    c.add_argument("-q", "--quiet", action="store_true", help="print only the ids")
    c.add_argument("--no-trunc", action="store_true", help="full ids and commands")
    c.add_argument("-n", "--last", type=int, help="the N last created containers")
    c.add_argument("-l", "--latest", action="store_true", help="the last created container")
    c.add_argument("--format", help="json, or a Go template such as '{{.ID}} {{.Names}}'")
    c.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        help="KEY=VALUE: status, name (a regex), id, label, ...",
    )
    c.add_argument("--noheading", action="store_true", help="no header line")
    c.add_argument("-s", "--size", action="store_true", help="the SIZE each container wrote (and virtual)")
    c.add_argument("-p", "--pod", action="store_true", help="the POD ID and PODNAME of each container")
    c.add_argument("--sort", default="", help="command, created, id, image, names, runningfor, size, status")

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

    c = add(sub, "update", cmd_update, "change the resource limits of a container")
    c.add_argument("container", metavar="CONTAINER")
    from hutch.cli import runflags

    runflags.add_resource_flags(c)

    from hutch.cli import monitor

    monitor.add_commands(sub, add, top)  # logs, attach, container cleanup


def register(
    sub: argparse._SubParsersAction[Any],
    add: Callable[..., argparse.ArgumentParser],
) -> None:
    """Add the container commands to the `hutch` parser's subcommands (`add` is main's helper), and the
    same under `hutch container`, whose parser is built only when it is used (`ps` starts faster)."""
    _commands(sub, add, top=True)
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
