"""`hutch` image commands, with podman's flags, output and exit codes: pull, push, rmi, tag, history, save,
load, import (each also under `hutch image`, with ls, inspect and prune), login and logout. `images` itself
is hutch.cli.main's (`cmd_images`). Registered into the parser by hutch.cli.argparser.
"""

from __future__ import annotations

import os
import sys

from hutch.cli.main import (
    DEFAULT_DB,
    DEFAULT_STORAGE,
    UsageError,
    _err,
    _json,
    _message,
    bool_flag,
    login_flags,
    login_of,
    tls_flag,
)
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any, BinaryIO

    from hutch.image.db import Image
    from hutch.image.storage import Storage


def storage_of(args: argparse.Namespace) -> Storage:
    from hutch.image.storage import Storage

    if args.root:
        storage = Storage(args.root, args.db_path or os.path.join(args.root, "hutch.db"))
    else:
        storage = Storage(DEFAULT_STORAGE, args.db_path or DEFAULT_DB)
    storage.in_use = containers_using(storage.root)
    return storage


def containers_using(root: str) -> Callable[[str], list[str]]:
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


# --- commands -----------------------------------------------------------------------------------------------


def cmd_pull(args: argparse.Namespace) -> int:
    from hutch.cli.progress import for_stderr
    from hutch.image.pull import pull
    from hutch.oci.image import Platform

    platform = Platform.parse(args.platform) if args.platform else None
    login = login_of(args)
    with storage_of(args) as storage:
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

    with storage_of(args) as storage:
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


def _json_only(args: argparse.Namespace) -> None:
    if args.format and args.format != "json":
        raise UsageError(f"--format {args.format!r}: only json is supported")


def cmd_rmi(args: argparse.Namespace) -> int:
    with storage_of(args) as storage:
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
    with storage_of(args) as storage:
        storage.tag(args.image, args.targets)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    _json_only(args)
    with storage_of(args) as storage:
        docs = []
        for name in args.images:
            docs.append(storage.inspect(storage.find(name)))
    print(_json(docs))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    with storage_of(args) as storage:
        for image_id in storage.prune(all=args.all):
            print(image_id)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from hutch.cli import format as fmt
    from hutch.image.history import MISSING, history

    with storage_of(args) as storage:
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
    with storage_of(args) as storage:
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
    with storage_of(args) as storage:
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
    with storage_of(args) as storage:

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


# --- the parsers ------------------------------------------------------------------------------------------


def _pull_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("images", nargs="+", metavar="IMAGE")
    c.add_argument("--platform", help="os/arch[/variant] to pull from an index")
    c.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    tls_flag(c)
    login_flags(c)
    c.add_argument("--registries-conf", help="registries.conf to use (or $CONTAINERS_REGISTRIES_CONF)")


def _push_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("image", metavar="IMAGE")
    c.add_argument("destination", nargs="?", metavar="DESTINATION")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    c.add_argument("--digestfile", help="write the pushed manifest digest to this file")
    tls_flag(c)
    login_flags(c)
    c.add_argument("--registries-conf", help="registries.conf to use (or $CONTAINERS_REGISTRIES_CONF)")


def _images_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("-q", "--quiet", action="store_true", help="print only image ids")
    c.add_argument("-a", "--all", action="store_true", help="all images (hutch keeps no intermediates)")
    c.add_argument("--format", help="json, or a Go template ({{.Repository}}, {{.Tag}}, {{.ID}}, ...)")
    c.add_argument("--noheading", "-n", action="store_true", help="no header row")
    c.add_argument("-f", "--filter", action="append", default=[], help="reference=, dangling=, label=...")
    c.add_argument("--digests", action="store_true", help="show the digests")
    c.add_argument("--no-trunc", action="store_true", help="full image ids")


def _rmi_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("images", nargs="*", metavar="IMAGE")
    c.add_argument("-f", "--force", action="store_true", help="remove an image with several tags by id")
    c.add_argument("-a", "--all", action="store_true", help="remove every image")


def _tag_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("image", metavar="IMAGE")
    c.add_argument("targets", nargs="+", metavar="TARGET_NAME")


def _history_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("image", metavar="IMAGE")
    c.add_argument("-q", "--quiet", action="store_true", help="print only the ids")
    c.add_argument("--format", help="json")
    c.add_argument("--no-trunc", "--notruncate", action="store_true", help="do not truncate the output")
    bool_flag(c, "-H", "--human", help="human times")


def _save_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("images", nargs="+", metavar="IMAGE")
    c.add_argument("-o", "--output", help="the archive to write (default: stdout)")
    c.add_argument("--format", default="docker-archive", choices=("docker-archive", "oci-archive"))
    c.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    c.add_argument("-m", "--multi-image-archive", action="store_true", help="(always possible)")


def _load_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("-i", "--input", help="the archive to read (default: stdin)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _import_flags(c: argparse.ArgumentParser) -> None:
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


def register(sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser]) -> None:
    """pull, push, images, rmi, tag, history, save, load and import (`add` is hutch.cli.argparser's)."""
    from hutch.cli.main import cmd_images

    _add_commands(sub, add, ("pull", "push"))
    _images_flags(add(sub, "images", cmd_images, "list images"))
    _rmi_flags(add(sub, "rmi", cmd_rmi, "remove images"))
    _add_commands(sub, add, ("tag", "history", "save", "load", "import"))


def _add_commands(
    sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser], names: tuple[str, ...]
) -> None:
    """The image commands the top level and `hutch image` both have, by name, in the order given."""
    commands = {
        "pull": (cmd_pull, "pull an image from a registry", _pull_flags),
        "push": (cmd_push, "push an image to a registry", _push_flags),
        "tag": (cmd_tag, "add names to an image", _tag_flags),
        "history": (cmd_history, "show an image's history", _history_flags),
        "save": (cmd_save, "write images to an archive", _save_flags),
        "load": (cmd_load, "load images from an archive", _load_flags),
        "import": (cmd_import, "make an image of a rootfs tarball", _import_flags),
    }
    for name in names:
        handler, help, flags = commands[name]
        flags(add(sub, name, handler, help))


def register_group(sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser]) -> None:
    """login, logout, and `hutch image ...`."""
    from hutch.cli.main import cmd_images

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
    isub = image.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=type(image))
    _images_flags(add(isub, "ls", cmd_images, "list images", ("list",)))
    _rmi_flags(add(isub, "rm", cmd_rmi, "remove images"))
    _add_commands(isub, add, ("tag", "pull", "push", "history", "save", "load", "import"))
    c = add(isub, "inspect", cmd_inspect, "show an image's configuration")
    c.add_argument("images", nargs="+", metavar="IMAGE")
    c.add_argument("-f", "--format", help="json")
    c = add(isub, "prune", cmd_prune, "remove unused images")
    c.add_argument(
        "-a", "--all", action="store_true", help="every image no container uses, not only dangling"
    )
    c.add_argument("-f", "--force", action="store_true", help="do not ask")


def _image_help(args: argparse.Namespace) -> int:
    raise UsageError(
        "image: a subcommand is needed (ls, rm, tag, inspect, prune, pull, push, history, save, load, import)"
    )
