"""`hutch-runtime`: runc's command line over the runtime library, so callers of runc need no changes."""

from __future__ import annotations

import os
import sys

from hutch import OCI_VERSION, __version__, jsonfast
from hutch.errors import HutchError, NotFoundError
from hutch.runtime import container, log
from hutch.runtime.args import Command
from hutch.runtime.container import DEFAULT_ROOT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import SimpleNamespace

    from hutch.oci.config import Process, Spec
    from hutch.runtime.foreground import ConsoleReceiver


# The commands of resources_cli, registered only when the command line may name one (~1 ms of imports).
_RESOURCE_COMMANDS = frozenset(("pause", "resume", "update", "ps", "events"))


def _parser(argv: list[str]) -> Command:
    p = Command("hutch-runtime", "an OCI runtime")
    p.flag("--root", default=DEFAULT_ROOT, help=f"state directory (default {DEFAULT_ROOT})")
    p.flag("--log", help="log file")
    p.flag("--log-format", default="text", choices=("text", "json"), help="text or json")
    p.flag("--debug", kind="bool", help="log debug messages")
    p.flag("--systemd-cgroup", kind="bool", help="use systemd for cgroups (not supported yet)")
    p.flag("--rootless", default="auto", choices=("true", "false", "auto"))
    p.flag("--criu")
    p.flag("-v", "--version", kind="bool", help="print the version")

    def create_flags(c: Command) -> Command:
        c.flag("-b", "--bundle", default=".", help="the bundle directory")
        c.flag("--console-socket", help="unix socket that receives the pty master")
        c.flag("--pid-file", help="file to write the init pid to")
        c.flag("--no-pivot", kind="bool", help="use MS_MOVE and chroot instead of pivot_root")
        c.flag("--no-new-keyring", kind="bool", help="keep the caller's session keyring")
        c.flag("--preserve-fds", kind="int", default=0, help="pass N fds after stdio to the container")
        return c.arg("id")

    create_flags(p.command("create", "create a container", _create))
    run = create_flags(p.command("run", "create and start a container", _run))
    run.flag("-d", "--detach", kind="bool", help="do not wait for the container")
    run.flag("--keep", kind="bool", help="keep the container after it exits")
    p.command("start", "start a created container", _start).arg("id")
    p.command("state", "print the state of a container", _state).arg("id")
    kill = p.command("kill", "send a signal to a container's init", _kill)
    kill.flag("-a", "--all", kind="bool", help="signal every process of the container").arg("id")
    kill.arg("signal", "optional")
    delete = p.command("delete", "delete a container", _delete)
    delete.flag("-f", "--force", kind="bool", help="kill it first if it runs").arg("id")
    ls = p.command("list", "list containers", _list)
    ls.flag("-f", "--format", default="table", choices=("table", "json"))
    ls.flag("-q", "--quiet", kind="bool", help="only ids")
    ex = p.command("exec", "run a process in a container", _exec)
    ex.flag("--console-socket", help="unix socket that receives the pty master")
    ex.flag("--cwd", help="working directory inside the container")
    ex.flag("-e", "--env", kind="list", default=[], help="KEY=VALUE to add")
    ex.flag("-t", "--tty", kind="bool", help="allocate a terminal")
    ex.flag("-u", "--user", help="UID[:GID]")
    ex.flag("-g", "--additional-gids", kind="intlist", default=[])
    ex.flag("-p", "--process", help="process.json to run")
    ex.flag("-d", "--detach", kind="bool", help="do not wait for the process")
    ex.flag("--pid-file", help="file to write the process pid to")
    ex.flag("--process-label")
    ex.flag("--apparmor")
    ex.flag("--no-new-privs", kind="bool")
    ex.flag("-c", "--cap", kind="list", default=[], help="capability to add")
    ex.flag("--preserve-fds", kind="int", default=0)
    ex.flag("--cgroup", kind="list", default=[])
    ex.flag("--ignore-paused", kind="bool")
    ex.arg("id").arg("process_args", "rest")  # not "command": that names the subcommand
    p.command("features", "print the features of this runtime", _features)
    spec = p.command("spec", "write a default config.json", _spec)
    spec.flag("--rootless", kind="bool", help="for a runtime run by an unprivileged user")
    spec.flag("-b", "--bundle", default=".")
    # Also when no command of ours is named: the usage and an unknown command's error list them all.
    if _RESOURCE_COMMANDS.intersection(argv) or not any(word in p.subcommands for word in argv):
        from hutch.runtime import resources_cli

        resources_cli.register(p)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    finally:
        prespawn = sys.modules.get("hutch.runtime.prespawn")
        if prespawn is not None:
            prespawn.discard()  # the init the launcher started ahead, if no create took it: gone with us


def _main(argv: list[str]) -> int:
    parser = _parser(argv)
    try:
        args = parser.parse(argv)
    except HutchError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    log.configure(args.log, args.log_format, args.debug)
    if args.version:
        print(f"hutch-runtime version {__version__}\nspec: {OCI_VERSION}\npython: {sys.version.split()[0]}")
        return 0
    if args.help or not args.command:
        print((parser.subcommands[args.command] if args.command else parser).usage())
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
    except Exception as e:  # a bug: still one error line (in the --log too, where containerd reads it)
        log.error(f"{args.command}: internal error: {type(e).__name__}: {e}")
        if args.debug:
            import traceback

            traceback.print_exc()
        return 1


def _load(args: SimpleNamespace) -> container.Container:
    return container.load(args.root, args.id)


def _console_fd(path: str | None) -> int | None:
    if path is None:
        return None
    from hutch.runtime import console

    return console.connect(path).detach()


def _terminal(terminal: bool, args: SimpleNamespace, what: str) -> tuple[int | None, ConsoleReceiver | None]:
    """The console fd for the container, and our own receiver when a foreground command relays the terminal."""
    fd = _console_fd(args.console_socket)
    if not terminal or fd is not None:
        return fd, None
    if args.detach:
        raise HutchError(f"{what}: --console-socket is required with --detach")
    from hutch.runtime.foreground import ConsoleReceiver

    receiver = ConsoleReceiver()
    return receiver.their_fd, receiver


def _create(args: SimpleNamespace) -> int:
    from hutch.runtime import cgroup_warmup, selfprotect

    selfprotect.ensure_sealed()
    cgroup_warmup.start()
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


def _run(args: SimpleNamespace) -> int:
    from hutch.runtime import cgroup_warmup, selfprotect

    selfprotect.ensure_sealed()
    cgroup_warmup.start()
    from hutch.oci import config
    from hutch.runtime import foreground, launch, lifecycle

    spec = config.load(args.bundle)
    fd, receiver = _terminal(spec.require_process().terminal, args, "process.terminal is true")
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
    try:
        master = receiver.receive() if receiver else None
        if not args.detach:  # before the process runs: a signal sent once it is up must reach it
            foreground.forward_signals(c.pid)
        lifecycle.start(c)
    except BaseException:
        lifecycle.delete(c, force=True)
        raise
    if args.detach:
        return 0
    code = foreground.wait(c.pid, master, proxy=False)
    if not args.keep:
        lifecycle.delete(c, force=True)
    return code


def _start(args: SimpleNamespace) -> int:
    from hutch.runtime import lifecycle

    lifecycle.start(_load(args))
    return 0


def _state(args: SimpleNamespace) -> int:
    from hutch.runtime import lifecycle

    print(jsonfast.dumps(lifecycle.state(_load(args)), indent=2))
    return 0


def _kill(args: SimpleNamespace) -> int:
    from hutch.runtime import lifecycle

    lifecycle.kill(_load(args), lifecycle.parse_signal(args.signal or "SIGTERM"), args.all)
    return 0


def _delete(args: SimpleNamespace) -> int:
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


def _list(args: SimpleNamespace) -> int:
    from hutch.runtime import lifecycle

    states = [lifecycle.state(c) for c in lifecycle.list_all(args.root)]
    if args.quiet:
        for s in states:
            print(s["id"])
    elif args.format == "json":
        print(jsonfast.dumps(states))
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[str(s[k]) for k in ("id", "pid", "status", "bundle", "created", "owner")] for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _exec(args: SimpleNamespace) -> int:
    from hutch.runtime import selfprotect

    selfprotect.ensure_sealed()
    from hutch.runtime import execute, foreground, lifecycle

    c = _load(args)
    spec = lifecycle.spec_of(c)
    proc = _exec_process(args, spec)
    fd, receiver = _terminal(proc.terminal, args, "--tty")
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


def _exec_process(args: SimpleNamespace, spec: Spec) -> Process:
    """The process to exec: --process FILE, or the container's process with the flags applied, as runc does."""
    from hutch.oci import config

    if args.process:
        return config.load_process(args.process)
    if not args.process_args:
        raise HutchError("exec: a command is required (or --process FILE)")
    doc = jsonfast.loads(jsonfast.dumps(spec.raw.get("process") or {}))
    doc["args"] = args.process_args
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


def _features(args: SimpleNamespace) -> int:
    from hutch.runtime import features

    print(jsonfast.dumps(features.features(), indent=4))
    return 0


def _spec(args: SimpleNamespace) -> int:
    from hutch.runtime.default_spec import default_spec

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise HutchError(f"File {path} exists. Remove it first")
    with open(path, "w") as f:
        f.write(jsonfast.dumps(default_spec(rootless=args.rootless), indent="\t"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
