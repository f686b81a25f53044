"""`hutch`: the engine's command line, with podman's command names, flags and output.

Image commands: pull, push, images (image ls), rmi (image rm), tag (image tag), image inspect, image prune,
history, save, load, import (each also under `image`), login, logout. `--root DIR` moves the storage (and its
database, DIR/hutch.db) as podman's --root does.
Errors print one line, `Error: ...`, and exit 125; `--log-level debug` shows the trace.

The command line is argparse's, but `run`, `create` and `ps` are read first by hutch.cli.fastargs from the
same declarations, without importing argparse (~5 ms); HTTP (urllib3) is imported only by the commands that
talk to registries.
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
    from typing import Any, BinaryIO

    from hutch.image.auth import Login
    from hutch.image.db import Image
    from hutch.image.storage import Storage

DEFAULT_STORAGE = "/var/lib/hutch/storage"
DEFAULT_DB = "/var/lib/hutch/hutch.db"
EXIT_ENGINE = 125


class UsageError(HutchError):
    """A command line that does not parse."""


def _parser_class() -> type[argparse.ArgumentParser]:
    """hutch's argparse parser, made when a command line needs argparse (see hutch.cli.fastargs)."""
    import argparse

    class Formatter(argparse.HelpFormatter):
        """argparse's help formatter, told the terminal's width: left to find it, it imports shutil (~2 ms)
        for every parser it builds, `hutch ps` included."""

        def __init__(
            self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
        ) -> None:
            if width is None:
                try:
                    width = int(os.environ.get("COLUMNS") or os.get_terminal_size(1).columns)
                except (OSError, ValueError):
                    width = 80
                width -= 2  # as argparse does with shutil's answer
            super().__init__(prog, indent_increment, max_help_position, width)

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("formatter_class", Formatter)
            super().__init__(*args, **kwargs)

        def error(self, message: str) -> None:  # type: ignore[override]
            raise UsageError(f"{self.prog}: {message}")

    return Parser


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


def _storage(args: argparse.Namespace) -> Storage:
    from hutch.image.storage import Storage

    if args.root:
        storage = Storage(args.root, args.db_path or os.path.join(args.root, "hutch.db"))
    else:
        storage = Storage(DEFAULT_STORAGE, args.db_path or DEFAULT_DB)
    storage.in_use = _containers_using(storage.root)
    return storage


def _containers_using(root: str) -> Callable[[str], list[str]]:
    """The engine's in-use hook for the storage at `root`: the containers made from an image."""

    def in_use(image_id: str) -> list[str]:
        path = os.path.join(root, "containers.db")
        if not os.path.exists(path):
            return []
        from hutch.engine.db import ContainerDB

        db = ContainerDB(path)
        try:
            return db.uses_image(image_id)
        finally:
            db.close()

    return in_use


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# --- commands -----------------------------------------------------------------------------------------------


def cmd_pull(args: argparse.Namespace) -> int:
    from hutch.cli.progress import for_stderr
    from hutch.image.pull import pull
    from hutch.oci.image import Platform

    platform = Platform.parse(args.platform) if args.platform else None
    login = login_of(args)
    with _storage(args) as storage:
        for name in args.images:
            image = pull(
                name,
                storage=storage,
                platform=platform,
                tls_verify=args.tls_verify,
                progress=None if args.quiet else for_stderr(),
                registries_conf=args.registries_conf,
                login=login,
            )
            print(image.id.hex, flush=True)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from hutch.cli.progress import for_stderr
    from hutch.image.push import push

    with _storage(args) as storage:
        digest = push(
            args.image,
            args.destination,
            storage=storage,
            tls_verify=args.tls_verify,
            progress=None if args.quiet else for_stderr(),
            registries_conf=args.registries_conf,
            login=login_of(args),
        )
    if args.digestfile:
        with open(args.digestfile, "w") as f:
            f.write(str(digest))
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    from hutch.cli.images import list_images

    with _storage(args) as storage:
        return list_images(args, storage)


def _json_only(args: argparse.Namespace) -> None:
    if args.format and args.format != "json":
        raise UsageError(f"--format {args.format!r}: only json is supported")


def _json(doc: object) -> str:
    import json

    return json.dumps(doc, indent=4)


def cmd_rmi(args: argparse.Namespace) -> int:
    with _storage(args) as storage:
        if args.all:
            names = [img.id.hex for img in storage.iter_images()]
        else:
            names = args.images
            if not names:
                raise UsageError("rmi: image name or ID must be specified")
        from hutch.image.storage import UsedByContainerError

        try:
            for line in storage.remove(names, force=args.force or args.all, skip_in_use=args.all):
                print(line)
        except UsedByContainerError as e:
            _err(f"Error: {_message(e)}")
            return 2
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    with _storage(args) as storage:
        storage.tag(args.image, args.targets)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    _json_only(args)
    with _storage(args) as storage:
        docs = []
        for name in args.images:
            docs.append(storage.inspect(storage.find(name)))
    print(_json(docs))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    with _storage(args) as storage:
        for image_id in storage.prune(all=args.all):
            print(image_id)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt
    from hutch.image.history import MISSING, history

    with _storage(args) as storage:
        entries = history(storage, storage.find(args.image))
    _json_only(args)

    def short(entry_id: str) -> str:
        return entry_id if args.no_trunc or entry_id == MISSING else entry_id[:12]

    if args.quiet:
        for e in entries:
            print(short(e.id))
        return 0
    if args.format == "json":
        out = []
        for e in entries:
            created = fmt.parse_time(e.created)
            doc: dict[str, object] = {"id": e.id, "created": e.created or "0001-01-01T00:00:00Z"}
            if e.created_by:
                doc["CreatedBy"] = e.created_by
            doc["size"] = e.size
            if e.comment:
                doc["comment"] = e.comment
            doc["Created"] = created.strftime("%Y-%m-%dT%H:%M:%SZ") if created else "0001-01-01T00:00:00Z"
            out.append(doc)
        print(_go_json(out))
        return 0
    rows = [["ID", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
    for e in entries:
        created_by = e.created_by
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:42] + "..."
        if args.human:
            when = fmt.ago(e.created)
        else:
            t = fmt.parse_time(e.created)
            when = t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else "0001-01-01T00:00:00Z"
        rows.append([short(e.id), when, created_by, fmt.human_size(e.size), e.comment])
    sys.stdout.write(fmt.table(rows))
    return 0


def _go_json(doc: object) -> str:
    """Compact JSON as Go's encoding/json writes it (HTML characters escaped), as podman history prints it."""
    import json

    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def cmd_save(args: argparse.Namespace) -> int:
    from hutch.image.archive import save

    if args.output is None and sys.stdout.isatty():
        raise UsageError("refusing to save to terminal. Use -o flag or redirect")
    with _storage(args) as storage:
        if args.output is None:
            sys.stdout.flush()
            save(args.images, None, storage=storage, format=args.format, stream=sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            save(args.images, args.output, storage=storage, format=args.format)
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from hutch.image.archive import load

    progress = None if args.quiet else _err
    with _storage(args) as storage:
        if args.input is None or args.input == "-":
            if sys.stdin.isatty():
                raise UsageError(
                    "cannot read from terminal, use command-line redirection or the --input flag"
                )
            names = load(sys.stdin.buffer, storage=storage, label="stdin", progress=progress)
        else:
            with open(args.input, "rb") as f:
                names = load(f, storage=storage, label=args.input, progress=progress)
    for name in names:
        print(f"Loaded image: {name}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from hutch.image.importer import import_tarball
    from hutch.oci.image import Platform, host_platform

    host = host_platform()
    platform = Platform(args.os or host.os, args.arch or host.architecture, args.variant or "")
    if not args.arch and not args.variant:
        platform.variant = host.variant
    progress = None if args.quiet else _err
    with _storage(args) as storage:

        def run(stream: BinaryIO, label: str) -> Image:
            return import_tarball(
                stream,
                args.reference,
                storage=storage,
                changes=args.change,
                message=args.message or "",
                label=label,
                platform=platform,
                progress=progress,
            )

        if args.tarball == "-":
            image = run(sys.stdin.buffer, "stdin")
        else:
            with open(args.tarball, "rb") as f:
                image = run(f, args.tarball)
    print(f"sha256:{image.id.hex}")
    return 0


def _registry_host(text: str) -> str:
    for prefix in ("https://", "http://", "docker://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text.rstrip("/")


def cmd_login(args: argparse.Namespace) -> int:
    from hutch.image import auth
    from hutch.image.registry import Registry

    host = _registry_host(args.registry)
    username = args.username
    password = args.password
    if args.password_stdin:
        if password:
            raise UsageError("login: --password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\n").rstrip("\r")
    if not username:
        if not sys.stdin.isatty():
            raise UsageError("login: a username is needed (-u)")
        username = input("Username: ")
    if password is None or password == "":
        if args.password_stdin or not sys.stdin.isatty():
            raise UsageError("login: a password is needed (-p or --password-stdin)")
        import getpass

        password = getpass.getpass("Password: ")
    creds = auth.Credentials(username, password)
    server = host.partition("/")[0]
    with Registry(server, credentials=creds, use_auth_files=False, tls_verify=args.tls_verify) as reg:
        reg.ping()
    auth.save(host, creds, args.authfile)
    print("Login Succeeded!")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from hutch.image import auth

    if args.all:
        auth.remove_all(args.authfile)
        print("Removed login credentials for all registries")
        return 0
    if not args.registry:
        raise UsageError("logout: a registry must be given (or --all)")
    host = _registry_host(args.registry)
    if not auth.remove(host, args.authfile):
        raise HutchError(f"not logged into {host}")
    print(f"Removed login credentials for {host}")
    return 0


# --- the parser ---------------------------------------------------------------------------------------------


class _Unused:
    """Stands in for the parser of a command this invocation does not run: it swallows add_argument and the
    rest, so that only the chosen command's parser is built (argparse costs milliseconds per command)."""

    def __getattr__(self, name: str) -> Callable[..., _Unused]:
        return lambda *args, **kwargs: self


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


def _parser(command: str | None = None, recorder: fastargs.Recorder | None = None) -> argparse.ArgumentParser:
    """The `hutch` parser; given `command`, only that command's subparser is built (see _Unused). With
    `recorder`, the declarations go to it instead (hutch.cli.fastargs)."""
    parser_class: Any = fastargs.Recorder if recorder is not None else _parser_class()
    p: Any = recorder or parser_class(prog="hutch", description="a daemonless container engine")
    p.add_argument("--root", help=f"storage root (default {DEFAULT_STORAGE}); its database is ROOT/hutch.db")
    p.add_argument("--db-path", help=f"image database (default {DEFAULT_DB}, or ROOT/hutch.db with --root)")
    p.add_argument(
        "--log-level", default="warn", choices=("debug", "info", "warn", "error", "fatal", "panic", "trace")
    )
    p.add_argument("-v", "--version", action="version", version=f"hutch version {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    built: list[str] = []

    def add(
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Callable[[argparse.Namespace], int],
        help: str,
        aliases: tuple[str, ...] = (),
    ) -> argparse.ArgumentParser:
        if isinstance(parent, _Unused) or (
            command is not None and parent is sub and command != name and command not in aliases
        ):
            return _Unused()  # type: ignore[return-value]
        built.append(name)
        c = parent.add_parser(name, help=help, aliases=list(aliases))
        c.set_defaults(handler=handler)
        return c

    def pull_flags(c: argparse.ArgumentParser) -> None:
        c.add_argument("images", nargs="+", metavar="IMAGE")
        c.add_argument("--platform", help="os/arch[/variant] to pull from an index")
        c.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
        tls_flag(c)
        login_flags(c)
        c.add_argument("--registries-conf", help="registries.conf to use (or $CONTAINERS_REGISTRIES_CONF)")

    def push_flags(c: argparse.ArgumentParser) -> None:
        c.add_argument("image", metavar="IMAGE")
        c.add_argument("destination", nargs="?", metavar="DESTINATION")
        c.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        c.add_argument("--digestfile", help="write the pushed manifest digest to this file")
        tls_flag(c)
        login_flags(c)
        c.add_argument("--registries-conf", help="registries.conf to use (or $CONTAINERS_REGISTRIES_CONF)")

    def images_flags(c: argparse.ArgumentParser) -> None:
        c.add_argument("-q", "--quiet", action="store_true", help="print only image ids")
        c.add_argument("-a", "--all", action="store_true", help="all images (hutch keeps no intermediates)")
        c.add_argument("--format", help="json, or a Go template ({{.Repository}}, {{.Tag}}, {{.ID}}, ...)")
        c.add_argument("--noheading", "-n", action="store_true", help="no header row")
        c.add_argument("-f", "--filter", action="append", default=[], help="reference=, dangling=, label=...")
        c.add_argument("--digests", action="store_true", help="show the digests")
        c.add_argument("--no-trunc", action="store_true", help="full image ids")

    def rmi_flags(c: argparse.ArgumentParser) -> None:
        c.add_argument("images", nargs="*", metavar="IMAGE")
        c.add_argument("-f", "--force", action="store_true", help="remove an image with several tags by id")
        c.add_argument("-a", "--all", action="store_true", help="remove every image")

    def tag_flags(c: argparse.ArgumentParser) -> None:
        c.add_argument("image", metavar="IMAGE")
        c.add_argument("targets", nargs="+", metavar="TARGET_NAME")

    def history_flags(c: argparse.ArgumentParser) -> None:
        c.add_argument("image", metavar="IMAGE")
        c.add_argument("-q", "--quiet", action="store_true", help="print only the ids")
        c.add_argument("--format", help="json")
        c.add_argument("--no-trunc", "--notruncate", action="store_true", help="do not truncate the output")
        bool_flag(c, "-H", "--human", help="human times")

    def save_flags(c: argparse.ArgumentParser) -> None:
        c.add_argument("images", nargs="+", metavar="IMAGE")
        c.add_argument("-o", "--output", help="the archive to write (default: stdout)")
        c.add_argument("--format", default="docker-archive", choices=("docker-archive", "oci-archive"))
        c.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        c.add_argument("-m", "--multi-image-archive", action="store_true", help="(always possible)")

    def load_flags(c: argparse.ArgumentParser) -> None:
        c.add_argument("-i", "--input", help="the archive to read (default: stdin)")
        c.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    def import_flags(c: argparse.ArgumentParser) -> None:
        c.add_argument(
            "tarball", metavar="TARBALL", help="a rootfs tarball (plain or compressed), or - for stdin"
        )
        c.add_argument("reference", nargs="?", metavar="REFERENCE")
        c.add_argument("-c", "--change", action="append", default=[], help="CMD=..., ENTRYPOINT=..., ENV=...")
        c.add_argument("-m", "--message", help="the history comment")
        c.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        c.add_argument("--os", help="the image's os (default: the host's)")
        c.add_argument("--arch", help="the image's architecture (default: the host's)")
        c.add_argument("--variant", help="the image's architecture variant")

    pull_flags(add(sub, "pull", cmd_pull, "pull an image from a registry"))
    push_flags(add(sub, "push", cmd_push, "push an image to a registry"))
    images_flags(add(sub, "images", cmd_images, "list images"))
    rmi_flags(add(sub, "rmi", cmd_rmi, "remove images"))
    tag_flags(add(sub, "tag", cmd_tag, "add names to an image"))
    history_flags(add(sub, "history", cmd_history, "show an image's history"))
    save_flags(add(sub, "save", cmd_save, "write images to an archive"))
    load_flags(add(sub, "load", cmd_load, "load images from an archive"))
    import_flags(add(sub, "import", cmd_import, "make an image of a rootfs tarball"))
    from hutch.cli import containers  # run, ps, stop, rm, logs

    containers.register(sub, add)
    if recorder is not None:  # fastargs.COMMANDS are all cli.containers's: the other modules stay unimported
        return recorder  # type: ignore[return-value]
    from hutch.cli import manage

    manage.register_system(sub, add)  # version, info, system info|df|prune|reset
    from hutch.cli import volumes

    volumes.register(sub, add)  # volume create, ls, inspect, rm, prune
    from hutch.cli import health

    health.register(sub, add)
    from hutch.cli import networks

    networks.register(sub, add)  # network create, ls, inspect, rm, prune, connect, disconnect, reload; port
    from hutch.cli import pods

    pods.register(sub, add)  # pod create, ps, inspect, start, stop, restart, kill, rm, prune, exists

    for name in ("login", "logout"):
        c = add(
            sub,
            name,
            cmd_login if name == "login" else cmd_logout,
            "log in to a registry" if name == "login" else "log out of a registry",
        )
        c.add_argument("registry", nargs="?" if name == "logout" else None, metavar="REGISTRY")
        c.add_argument("--authfile", help="the auth.json to use")
        if name == "login":
            c.add_argument("-u", "--username")
            c.add_argument("-p", "--password")
            c.add_argument("--password-stdin", action="store_true")
            tls_flag(c)
        else:
            c.add_argument("-a", "--all", action="store_true")

    image = add(sub, "image", _image_help, "manage images")
    isub = image.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=parser_class)
    images_flags(add(isub, "ls", cmd_images, "list images", ("list",)))
    rmi_flags(add(isub, "rm", cmd_rmi, "remove images"))
    tag_flags(add(isub, "tag", cmd_tag, "add names to an image"))
    pull_flags(add(isub, "pull", cmd_pull, "pull an image from a registry"))
    push_flags(add(isub, "push", cmd_push, "push an image to a registry"))
    history_flags(add(isub, "history", cmd_history, "show an image's history"))
    save_flags(add(isub, "save", cmd_save, "write images to an archive"))
    load_flags(add(isub, "load", cmd_load, "load images from an archive"))
    import_flags(add(isub, "import", cmd_import, "make an image of a rootfs tarball"))
    c = add(isub, "inspect", cmd_inspect, "show an image's configuration")
    c.add_argument("images", nargs="+", metavar="IMAGE")
    c.add_argument("-f", "--format", help="json")
    c = add(isub, "prune", cmd_prune, "remove unused images")
    c.add_argument(
        "-a", "--all", action="store_true", help="every image no container uses, not only dangling"
    )
    c.add_argument("-f", "--force", action="store_true", help="do not ask")
    if command is not None and not built:
        return _parser()  # an unknown command: the full parser names the known ones in its error
    parser: argparse.ArgumentParser = p
    return parser


def _image_help(args: argparse.Namespace) -> int:
    raise UsageError(
        "image: a subcommand is needed (ls, rm, tag, inspect, prune, pull, push, history, save, load, import)"
    )


def main(argv: list[str] | None = None) -> int:
    debug = False
    try:
        argv = sys.argv[1:] if argv is None else argv
        command = command_of(argv)
        if command in _LAUNCHING:
            from hutch.runtime import cgroup_warmup

            cgroup_warmup.start()  # before the imports: see prepare_launch
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
