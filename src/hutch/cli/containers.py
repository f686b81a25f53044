"""`hutch run` and `hutch create`, with podman's flags and exit codes: `run` exits with the container's own
code, 125 for an engine error, 126 when the command cannot be invoked, 127 when it is not found.

This is run's whole command line (read by hutch.cli.fastargs); the other container commands are
hutch.cli.containerops's, `ps` is hutch.cli.psview's.
"""

from __future__ import annotations

import sys

from hutch.cli import runflags
from hutch.cli.fastargs import REMAINDER
from hutch.cli.main import bool_flag, engine_of, fail, login_flags, login_of, tls_flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.engine.spec import Options
    from hutch.image.progress import Progress


def _options(args: argparse.Namespace) -> Options:
    from hutch.engine.spec import Options

    opts = Options(
        command=list(args.command),
        entrypoint=args.entrypoint,
        env=list(args.env),
        workdir=args.workdir or "",
        user=args.user or "",
        hostname=args.hostname or "",
        read_only=args.read_only,
        network=runflags.network_mode(args),
        net=runflags.net_options(args),
        tty=args.tty,
    )
    opts.health = runflags.health_flags(args)
    return runflags.apply(opts, args)  # the flags of hutch.cli.runflags (mounts, security, resources, ...)


def _create(engine: Engine, args: argparse.Namespace) -> Record:
    extra = runflags.checked_options(args)  # --runtime, --restart: checked before anything is made
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
    runflags.record_options(engine, rec, extra)
    return rec


def _pull_progress() -> Progress:
    """A pull of a missing image shows pull's bars on a terminal, its lines otherwise (imported only then)."""
    from hutch.cli.progress import for_stderr

    return for_stderr()


def _no_progress() -> None:
    return None


def cmd_run(args: argparse.Namespace) -> int:
    from hutch.engine.containers import InvokeError, prepare_launch

    if args.detach or args.tty:  # conmon's run: the runtime it runs makes init
        from hutch.runtime import prespawn

        prespawn.discard()
    prepare_launch()
    with engine_of(args) as engine:
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
            return fail(str(e), e.exit_code)


def cmd_create(args: argparse.Namespace) -> int:
    with engine_of(args) as engine:
        rec = _create(engine, args)
    print(rec.id, flush=True)
    return 0


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
    runflags.add_network_flags(
        c
    )  # --network, --ip, --mac-address, -p, -P, --add-host, --dns*, --network-alias
    c.add_argument("--pull", default="missing", help="always, missing (default), never or newer")
    c.add_argument("--platform", help="os/arch[/variant] of the image to use (pulled if not stored)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress output when pulling the image")
    tls_flag(c, help="require HTTPS and verify certificates when pulling (default true)")
    login_flags(c)
    runflags.add(c)
    runflags.add_health_flags(c)
    runflags.add_monitor_flags(c)
    c.add_argument("image", metavar="IMAGE")
    c.add_argument("command", nargs=REMAINDER, metavar="COMMAND")


def declare(
    sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser], run: bool
) -> None:
    """`run` (or with `run` False, `create`), its flags and handler, among the commands of `sub`."""
    if run:
        _create_flags(add(sub, "run", cmd_run, "run a command in a new container"), run=True)
    else:
        _create_flags(add(sub, "create", cmd_create, "create a container; print its id"), run=False)
