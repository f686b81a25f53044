"""`hutch` commands that rest on the monitor (conmon): logs, attach, and the hidden `container cleanup` that
conmon runs when a container exits (run/create's --runtime and --restart are hutch.cli.runflags's).
"""

from __future__ import annotations

import os
import sys

from hutch.cli.fastargs import SUPPRESS
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import socket
    from collections.abc import Callable
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


def _engine(args: argparse.Namespace) -> Engine:
    from hutch.cli.main import engine_of

    return engine_of(args)


def cmd_logs(args: argparse.Namespace) -> int:
    """podman logs: the k8s-file log, stdout lines to stdout and stderr lines to stderr; with several
    containers each line starts with the container's short id (its name with --names), as podman's."""
    from hutch.engine import logs
    from hutch.engine.monitor import config_of

    since = logs.parse_time(args.since, "--since") if args.since else None
    until = logs.parse_time(args.until, "--until") if args.until else None
    with _engine(args) as engine:
        recs = [engine.find(name) for name in args.containers]
        for rec in recs:
            driver = config_of(rec).get("LogDriver") or "k8s-file"
            if driver != "k8s-file":
                raise HutchError(
                    f"this container is using the {driver!r} log driver, cannot read logs: "
                    f"container {rec.id[:12]} is not logging output"
                )
        paths = [engine.log_path(rec) for rec in recs]
        db_path = engine.db.path
    multi = len(recs) > 1
    streams = []
    for rec, path in zip(recs, paths, strict=True):
        prefix = ((rec.name if args.names else rec.id[:12]) + " ").encode() if multi else b""
        found = logs.lines(
            path,
            since=since,
            until=until,
            tail=args.tail,
            follow=args.follow,
            running=_running(db_path, rec.id),
        )
        streams.append((prefix, found))
    if args.follow and multi:
        _follow_all(streams, args.timestamps)
        return 0
    if multi:  # every log read to its end: one sequence, in time order
        merged = sorted(
            ((line, prefix) for prefix, found in streams for line in found), key=lambda x: x[0].time_ns
        )
        for line, prefix in merged:
            _print_line(line, prefix, args.timestamps)
        return 0
    for line in streams[0][1]:
        _print_line(line, b"", args.timestamps)
    return 0


def _running(db_path: str, container_id: str) -> Callable[[], bool]:
    def running() -> bool:
        from hutch.engine.db import ContainerDB, NoSuchContainer

        db = ContainerDB(db_path)
        try:
            return db.get(container_id).state in ("running", "paused")
        except NoSuchContainer:
            return False  # --rm removed it; its log stays readable through our fd
        finally:
            db.close()

    return running


def _print_line(line: Any, prefix: bytes, timestamps: bool) -> None:
    from hutch.engine import logs

    out = sys.stderr if line.stream == "stderr" else sys.stdout
    head = prefix + (logs.format_time(line.time_ns).encode() + b" " if timestamps else b"")
    out.buffer.write(head + line.text + (b"\n" if line.complete else b""))
    out.buffer.flush()


def _follow_all(streams: list[tuple[bytes, Any]], timestamps: bool) -> None:
    """logs -f of several containers: a thread follows each; lines are printed whole, as they come."""
    import threading

    lock = threading.Lock()

    def follow(prefix: bytes, found: Any) -> None:
        for line in found:
            with lock:
                _print_line(line, prefix, timestamps)

    threads = [threading.Thread(target=follow, args=s, daemon=True) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def cmd_attach(args: argparse.Namespace) -> int:
    """podman attach: the container's output, our stdin to it (when it was created with -i), a terminal
    for a -t container; the detach keys leave it running; else its exit code once it exits."""
    from hutch.engine import attach
    from hutch.engine.monitor import config_of

    keys = attach.parse_detach_keys(args.detach_keys)
    with _engine(args) as engine:
        rec = engine.find(args.container)
        if rec.state != "running":
            raise HutchError(
                f"you can only attach to running containers: container {rec.id[:12]} is {rec.state}"
            )
        cfg = config_of(rec)
        tty = bool(cfg.get("Tty"))
        stdin = bool(cfg.get("OpenStdin")) and not args.no_stdin
        sock = attach.connect(rec.id)
        detached = relay(engine, rec, sock, stdin=stdin, keys=keys, raw=tty and stdin, proxy=args.sig_proxy)
        if detached:
            return 0
        return attach.exit_code(engine, rec.id)


def relay(
    engine: Engine,
    rec: Record,
    sock: socket.socket,
    *,
    stdin: bool,
    keys: bytes,
    raw: bool,
    proxy: bool = False,
) -> bool:
    """attach's relay over conmon's socket `sock` (closed after), our terminal raw meanwhile with `raw` (a -t
    container's stdin, when ours is a terminal), and with `proxy` the signals we get sent on to the
    container's init (--sig-proxy); True when the user detached."""
    from hutch.engine import attach

    if proxy:
        from hutch.engine import monitor
        from hutch.runtime import foreground

        pid = monitor.runtime_of(rec).pid(rec.id)
        if pid > 0:
            foreground.forward_signals(pid)
    restore = _raw_terminal(engine, rec) if raw and os.isatty(0) else None
    try:
        return attach.relay(sock, stdin=stdin, detach_keys=keys)
    finally:
        sock.close()
        if restore is not None:
            restore()


def _raw_terminal(engine: Engine, rec: Record) -> Callable[[], None]:
    """Our terminal in raw mode and its size (now and on SIGWINCH) sent to conmon; undone by the result."""
    import signal
    import termios
    import tty

    from hutch.engine import attach

    userdata = engine.path(rec, "userdata")

    def send_size(*_: object) -> None:
        size = os.get_terminal_size(0)
        attach.resize(userdata, size.lines, size.columns)

    saved = termios.tcgetattr(0)
    tty.setraw(0, termios.TCSADRAIN)  # keep what was typed ahead (run -it: before the container ran)
    send_size()
    previous = signal.signal(signal.SIGWINCH, send_size)

    def restore() -> None:
        signal.signal(signal.SIGWINCH, previous)
        termios.tcsetattr(0, termios.TCSADRAIN, saved)

    return restore


def cmd_cleanup(args: argparse.Namespace) -> int:
    """conmon's exit command: record the exit, release the container's resources, apply --restart."""
    from hutch.engine import detached

    with _engine(args) as engine:
        rec = engine.db.find(args.container)  # no such container: 125, as podman
        detached.cleanup(engine, rec.id)
    return 0


def add_commands(
    sub: argparse._SubParsersAction[Any], add: Callable[..., argparse.ArgumentParser], top: bool
) -> None:
    """logs and attach (at the top and under `container`); cleanup only under `container`."""
    c = add(sub, "logs", cmd_logs, "show containers' output")
    c.add_argument("containers", nargs="+", metavar="CONTAINER")
    c.add_argument("-n", "--names", action="store_true", help="with several containers: name, not id, first")
    c.add_argument("-f", "--follow", action="store_true", help="follow until the container exits")
    c.add_argument("--since", help="only lines since this time (RFC 3339, Unix time, or a duration: 10m)")
    c.add_argument("--until", help="only lines until this time (RFC 3339, Unix time, or a duration: 10m)")
    c.add_argument("--tail", type=int, default=-1, help="only the last N lines (-1: all)")
    c.add_argument("-t", "--timestamps", action="store_true", help="each line's time first")

    c = add(sub, "attach", cmd_attach, "attach to a running container's terminal or output")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
    c.add_argument(
        "--detach-keys", default="ctrl-p,ctrl-q", help="the keys that detach (default ctrl-p,ctrl-q)"
    )
    from hutch.cli.main import bool_flag

    bool_flag(c, "--sig-proxy", help="the signals hutch gets go to the container (default true)")

    if not top:
        c = add(sub, "cleanup", cmd_cleanup, SUPPRESS)
        c.add_argument("container", metavar="CONTAINER")
