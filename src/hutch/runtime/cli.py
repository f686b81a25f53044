"""`hutch-runtime`: runc's command line over the runtime library, so callers of runc need no changes."""

import argparse
import json
import os
import sys
from collections.abc import Callable

from hutch import OCI_VERSION, __version__
from hutch.errors import HutchError, NotFoundError
from hutch.runtime import container, log
from hutch.runtime.container import DEFAULT_ROOT

Handler = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hutch-runtime", description="an OCI runtime", allow_abbrev=False)
    p.add_argument("--root", default=DEFAULT_ROOT, help="state directory (default %(default)s)")
    p.add_argument("--log", default=None, help="log file")
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    p.add_argument("--debug", action="store_true")
    p.add_argument("--systemd-cgroup", action="store_true")
    p.add_argument("--rootless", default="auto", choices=["true", "false", "auto"])
    p.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, allow_abbrev=False)
        sp.set_defaults(handler=handler)
        return sp

    def create_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-b", "--bundle", default=".")
        sp.add_argument("--console-socket", default=None)
        sp.add_argument("--pid-file", default=None)
        sp.add_argument("--no-pivot", action="store_true")
        sp.add_argument("--no-new-keyring", action="store_true")
        sp.add_argument("--preserve-fds", type=int, default=0)
        sp.add_argument("id")

    create_flags(cmd("create", _create, "create a container"))
    sp = cmd("run", _run, "create and start a container")
    create_flags(sp)
    sp.add_argument("-d", "--detach", action="store_true")
    sp.add_argument("--keep", action="store_true")
    cmd("start", _start, "start a created container").add_argument("id")
    cmd("state", _state, "print the state of a container").add_argument("id")
    sp = cmd("kill", _kill, "send a signal to a container's init")
    sp.add_argument("-a", "--all", action="store_true")
    sp.add_argument("id")
    sp.add_argument("signal", nargs="?", default="SIGTERM")
    sp = cmd("delete", _delete, "delete a container")
    sp.add_argument("-f", "--force", action="store_true")
    sp.add_argument("id")
    sp = cmd("list", _list, "list containers")
    sp.add_argument("-f", "--format", choices=["table", "json"], default="table")
    sp.add_argument("-q", "--quiet", action="store_true")
    sp = cmd("exec", _exec, "run a process in a container")
    sp.add_argument("--console-socket", default=None)
    sp.add_argument("--cwd", default=None)
    sp.add_argument("-e", "--env", action="append", default=[])
    sp.add_argument("-t", "--tty", action="store_true")
    sp.add_argument("-u", "--user", default=None)
    sp.add_argument("-g", "--additional-gids", action="append", type=int, default=[])
    sp.add_argument("-p", "--process", default=None)
    sp.add_argument("-d", "--detach", action="store_true")
    sp.add_argument("--pid-file", default=None)
    sp.add_argument("--process-label", default=None)
    sp.add_argument("--apparmor", default=None)
    sp.add_argument("--no-new-privs", action="store_true")
    sp.add_argument("-c", "--cap", action="append", default=[])
    sp.add_argument("--preserve-fds", type=int, default=0)
    sp.add_argument("--cgroup", action="append", default=[])
    sp.add_argument("--ignore-paused", action="store_true")
    sp.add_argument("id")
    sp.add_argument("command", nargs=argparse.REMAINDER)
    cmd("features", _features, "print the features of this runtime")
    sp = cmd("spec", _spec, "write a default config.json")
    sp.add_argument("--rootless", action="store_true")
    sp.add_argument("-b", "--bundle", default=".")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log.configure(args.log, args.log_format, args.debug)
    if args.version:
        print(f"hutch-runtime version {__version__}\nspec: {OCI_VERSION}\npython: {sys.version.split()[0]}")
        return 0
    if not args.command:
        _parser().print_help()
        return 0
    try:
        if args.systemd_cgroup:
            raise HutchError("--systemd-cgroup: hutch-runtime has no systemd cgroup driver yet; use cgroupfs")
        return int(args.handler(args))
    except HutchError as e:
        log.error(str(e))
        return 1
    except OSError as e:
        log.error(f"{args.command}: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        return 1
    except KeyboardInterrupt:
        return 130


def _load(args: argparse.Namespace) -> container.Container:
    return container.load(args.root, args.id)


def _console_fd(path: str | None) -> int | None:
    if path is None:
        return None
    from hutch.runtime import console

    return console.connect(path).detach()


def _create(args: argparse.Namespace) -> int:
    from hutch.oci import config
    from hutch.runtime import launch

    spec = config.load(args.bundle)
    fd = _console_fd(args.console_socket)
    try:
        launch.create(
            args.root,
            args.id,
            args.bundle,
            spec,
            pid_file=args.pid_file,
            console_fd=fd,
            no_pivot=args.no_pivot,
            no_new_keyring=args.no_new_keyring,
            preserve_fds=args.preserve_fds,
        )
    finally:
        if fd is not None:
            os.close(fd)
    return 0


def _run(args: argparse.Namespace) -> int:
    from hutch.oci import config
    from hutch.runtime import foreground, launch, lifecycle

    spec = config.load(args.bundle)
    terminal = spec.require_process().terminal
    receiver = None
    fd = _console_fd(args.console_socket)
    if terminal and fd is None:
        if args.detach:
            raise HutchError("process.terminal is true: --console-socket is required with --detach")
        receiver = foreground.ConsoleReceiver()
        fd = receiver.their_fd
    if not args.detach:
        foreground.become_subreaper()
    try:
        c = launch.create(
            args.root,
            args.id,
            args.bundle,
            spec,
            pid_file=args.pid_file,
            console_fd=fd,
            no_pivot=args.no_pivot,
            no_new_keyring=args.no_new_keyring,
            preserve_fds=args.preserve_fds,
        )
    finally:
        if fd is not None:
            os.close(fd)
    master = receiver.receive() if receiver else None
    try:
        lifecycle.start(c)
    except HutchError:
        lifecycle.delete(c, force=True)
        raise
    if args.detach:
        return 0
    code = foreground.wait(c.pid, master)
    if not args.keep:
        lifecycle.delete(c, force=True)
    return code


def _start(args: argparse.Namespace) -> int:
    from hutch.runtime import lifecycle

    lifecycle.start(_load(args))
    return 0


def _state(args: argparse.Namespace) -> int:
    from hutch.runtime import lifecycle

    print(json.dumps(lifecycle.state(_load(args)), indent=2))
    return 0


def _kill(args: argparse.Namespace) -> int:
    from hutch.runtime import lifecycle

    lifecycle.kill(_load(args), lifecycle.parse_signal(args.signal), args.all)
    return 0


def _delete(args: argparse.Namespace) -> int:
    from hutch.runtime import lifecycle

    try:
        c = _load(args)
    except NotFoundError:
        if not args.force:
            raise
        try:
            lifecycle.delete_leftover(args.root, args.id)
        except NotFoundError:
            pass
        return 0
    lifecycle.delete(c, args.force)
    return 0


def _list(args: argparse.Namespace) -> int:
    from hutch.runtime import lifecycle

    states = [lifecycle.state(c) for c in lifecycle.list_all(args.root)]
    if args.quiet:
        for s in states:
            print(s["id"])
    elif args.format == "json":
        print(json.dumps(states))
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[str(s[k]) for k in ("id", "pid", "status", "bundle", "created", "owner")] for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _exec(args: argparse.Namespace) -> int:
    from hutch.runtime import execute, foreground, lifecycle

    c = _load(args)
    spec = lifecycle.spec_of(c)
    proc = _exec_process(args, spec)
    receiver = None
    fd = _console_fd(args.console_socket)
    if proc.terminal and fd is None:
        if args.detach:
            raise HutchError("--tty: --console-socket is required with --detach")
        receiver = foreground.ConsoleReceiver()
        fd = receiver.their_fd
    if not args.detach:
        foreground.become_subreaper()
    try:
        pid = execute.exec_process(
            c, spec, proc, console_fd=fd, pid_file=args.pid_file, preserve_fds=args.preserve_fds
        )
    finally:
        if fd is not None:
            os.close(fd)
    if args.detach:
        return 0
    return foreground.wait(pid, receiver.receive() if receiver else None)


def _exec_process(args: argparse.Namespace, spec: "config.Spec") -> "config.Process":  # noqa: F821
    """The process to exec: --process FILE, or the container's process with the flags applied, as runc does."""
    from hutch.oci import config

    if args.process:
        return config.load_process(args.process)
    if not args.command:
        raise HutchError("exec: a command is required (or --process FILE)")
    doc = json.loads(json.dumps(spec.raw.get("process") or {}))
    doc["args"] = args.command
    doc["terminal"] = args.tty
    doc["env"] = list(doc.get("env") or []) + args.env
    if args.cwd:
        doc["cwd"] = args.cwd
    if args.user:
        uid, _, gid = args.user.partition(":")
        user = doc.setdefault("user", {})
        try:
            user["uid"] = int(uid)
            user["gid"] = int(gid) if gid else 0
        except ValueError:
            raise HutchError(f"--user {args.user!r}: expected UID[:GID]") from None
    if args.additional_gids:
        doc.setdefault("user", {})["additionalGids"] = args.additional_gids
    if args.no_new_privs:
        doc["noNewPrivileges"] = True
    if args.cap:
        caps = doc.setdefault("capabilities", {})
        for key in ("bounding", "effective", "permitted"):
            caps[key] = list(dict.fromkeys([*caps.get(key, []), *args.cap]))
    doc.pop("consoleSize", None)
    return config.parse_process(doc, "exec process")


def _features(args: argparse.Namespace) -> int:
    from hutch.runtime import features

    print(json.dumps(features.features(), indent=4))
    return 0


def _spec(args: argparse.Namespace) -> int:
    from hutch.runtime.default_spec import default_spec

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise HutchError(f"File {path} exists. Remove it first")
    with open(path, "w") as f:
        json.dump(default_spec(rootless=args.rootless), f, indent="\t")
    return 0


if __name__ == "__main__":
    sys.exit(main())
