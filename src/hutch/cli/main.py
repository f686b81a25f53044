"""`hutch`: the engine's command line, with podman's command names, flags and output.

`--root DIR` moves the storage (and its database, DIR/hutch.db) as podman's --root does. Errors print one
line, `Error: ...`, and exit 125; `--log-level debug` shows the trace.

This module is what every command imports: the global options, the flag helpers the commands share, and the
dispatch. `run`, `create`, `ps`, `start`, `stop`, `rm`, `exec` and a few more (fastargs.COMMANDS) are read by
hutch.cli.fastargs from their declarations alone (in hutch.cli.containers, psview and containerops), without
argparse (~5 ms) nor any other command's code; the other command lines go to argparse, through
hutch.cli.argparser. HTTP (urllib3) is imported only by the commands that talk to registries.
"""

from __future__ import annotations

import os
import sys

from hutch import __version__
from hutch.cli import fastargs
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.image.auth import Login

DEFAULT_STORAGE = "/var/lib/hutch/storage"
DEFAULT_DB = "/var/lib/hutch/hutch.db"
EXIT_ENGINE = 125


class UsageError(HutchError):
    """A command line that does not parse."""


def _bool(text: str) -> bool:
    value = text.lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    import argparse

    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


def bool_flag(p: argparse.ArgumentParser, *names: str, help: str) -> None:
    """A podman-style boolean flag, true by default: `--flag`, `--flag=false`."""
    p.add_argument(*names, type=_bool, nargs="?", const=True, default=True, metavar="BOOL", help=help)


def tls_flag(
    p: argparse.ArgumentParser, help: str = "require HTTPS and verify certificates (default true)"
) -> None:
    bool_flag(p, "--tls-verify", help=help)


def login_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--authfile", help="the auth file to read credentials from (or $REGISTRY_AUTH_FILE)")
    p.add_argument("--creds", metavar="USERNAME[:PASSWORD]", help="credentials for the registry")


def login_of(args: argparse.Namespace) -> Login | None:
    """--creds and --authfile as podman reads them; None when neither is given. A --creds without a password
    asks for it on a terminal."""
    if not (args.authfile or args.creds):
        return None
    from hutch.image.auth import Credentials, Login

    if args.authfile and not os.path.exists(args.authfile):
        raise UsageError(f"--authfile {args.authfile}: credential file is not accessible: no such file")
    creds = None
    if args.creds:
        username, sep, password = args.creds.partition(":")
        if not username:
            raise UsageError(f"--creds {args.creds!r}: expected USERNAME[:PASSWORD]")
        if not sep:
            if not sys.stdin.isatty():
                raise UsageError("--creds: a password is needed (USERNAME:PASSWORD)")
            import getpass

            password = getpass.getpass("Password: ")
        creds = Credentials(username, password)
    return Login(creds, args.authfile)


def engine_of(args: argparse.Namespace) -> Engine:
    from hutch.engine.containers import Engine

    return Engine(args.root or DEFAULT_STORAGE, args.db_path, leave_open=True)  # we exit next


def cmd_images(args: argparse.Namespace) -> int:
    """`hutch images` (and `image ls`), registered from here by hutch.cli.imageops."""
    from hutch.cli.imageops import storage_of
    from hutch.cli.images import list_images

    with storage_of(args) as storage:
        return list_images(args, storage)


def _json(doc: object) -> str:
    import json

    return json.dumps(doc, indent=4)


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def fail(message: str, code: int = 125) -> int:
    """One `Error: ...` line, the message's line breaks and runs of spaces folded (a command that goes on
    after one object's error, as podman's do); returns `code` for its exit."""
    _err(f"Error: {' '.join(message.split())}")
    return code


# --- the parser ---------------------------------------------------------------------------------------------


_GLOBAL_WITH_VALUE = ("--root", "--db-path", "--log-level")
# The commands that move a process into a container's cgroups (hutch.engine.containers.prepare_launch).
_LAUNCHING = ("run", "start", "restart", "exec")


def command_of(argv: list[str]) -> str | None:
    """The command `argv` names after the global options; None for help, version or no command."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in _GLOBAL_WITH_VALUE:
            i += 2
            continue
        if word in ("-h", "--help", "-v", "--version"):
            return None
        if not word.startswith("-"):
            return word
        i += 1
    return None


def global_flags(p: Any, parser_class: Any) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The options before the command, on `p`; returns the commands' subparsers."""
    p.add_argument("--root", help=f"storage root (default {DEFAULT_STORAGE}); its database is ROOT/hutch.db")
    p.add_argument("--db-path", help=f"image database (default {DEFAULT_DB}, or ROOT/hutch.db with --root)")
    p.add_argument(
        "--log-level", default="warn", choices=("debug", "info", "warn", "error", "fatal", "panic", "trace")
    )
    p.add_argument("-v", "--version", action="version", version=f"hutch version {__version__}")
    sub: argparse._SubParsersAction[argparse.ArgumentParser]
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    return sub


def _parser(command: str | None = None, recorder: fastargs.Recorder | None = None) -> argparse.ArgumentParser:
    """The `hutch` parser (hutch.cli.argparser); given `command`, only that command's subparser is built.
    With `recorder`, for a command of fastargs.COMMANDS, its declarations go to it instead."""
    if recorder is None:
        from hutch.cli import argparser

        return argparser.parser(command)
    sub = global_flags(recorder, fastargs.Recorder)

    def add(
        parent: Any,
        name: str,
        handler: Callable[[argparse.Namespace], int],
        help: str,
        aliases: tuple[str, ...] = (),
    ) -> Any:
        """The declarations of `command` alone: another command's go to a recorder that is thrown away."""
        if parent is sub and command != name:
            parent = fastargs.Recorder()
        c = parent.add_parser(name, help=help, aliases=list(aliases))
        c.set_defaults(handler=handler)
        return c

    if command == "ps":
        from hutch.cli import psview

        psview.declare(sub, add)
    elif command in ("run", "create"):
        from hutch.cli import containers

        containers.declare(sub, add, command == "run")
    else:
        from hutch.cli import containerops

        containerops.register(sub, add, command)  # start, stop, rm, exec, ...
    return recorder  # type: ignore[return-value]


def _parser_class() -> type[argparse.ArgumentParser]:
    from hutch.cli import argparser

    return argparser.parser_class()


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    finally:
        prespawn = sys.modules.get("hutch.runtime.prespawn")
        if prespawn is not None:
            prespawn.discard()  # the init `run` spawned ahead, if no create took it: gone with us


def _main(argv: list[str] | None = None) -> int:
    debug = False
    try:
        argv = sys.argv[1:] if argv is None else argv
        command = command_of(argv)
        if command in _LAUNCHING:
            from hutch.runtime import cgroup_warmup

            cgroup_warmup.start()  # before the imports: see prepare_launch
        if command == "run":
            from hutch.runtime import prespawn

            prespawn.spawn()  # init, while we make the container (a detached or terminal run discards it)
        args: Any = None
        if command in fastargs.COMMANDS:
            recorder = fastargs.Recorder()
            _parser(command, recorder)
            args = fastargs.parse(argv, recorder)
        if args is None:
            parser = _parser(command)
            args = parser.parse_args(argv)
        debug = args.log_level in ("debug", "trace")
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 0
        return int(handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except (HutchError, OSError) as e:
        if debug:
            import traceback

            traceback.print_exc()
        _err(f"Error: {_message(e)}")
        return EXIT_ENGINE
    except Exception as e:  # a bug: still one line (the trace with --log-level debug), as podman reports
        if debug:
            import traceback

            traceback.print_exc()
        _err(f"Error: internal error: {type(e).__name__}: {_message(e)} (--log-level debug shows where)")
        return EXIT_ENGINE


def _message(e: BaseException) -> str:
    if isinstance(e, OSError) and not isinstance(e, HutchError):
        text = e.strerror or str(e)
        return f"{e.filename}: {text}" if e.filename else text
    return " ".join(str(e).split("\n"))


if __name__ == "__main__":
    sys.exit(main())
