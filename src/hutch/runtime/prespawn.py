"""A container init started ahead, while the command that creates the container starts up.

Init forked at create (launch.py) first imports its ~15 modules, ~1.7 ms on the critical path, slowed by the
copy-on-write faults of a fork of a big process, while the other CPU idles. Started ahead, in a new PID
namespace whose PID 1 it is and on the other CPU, it imports them while we start, then waits on a socket;
create hands it the container (hand_over, from launch.create): the spec's document, the ids and paths (in
marshal, after their length), and by SCM_RIGHTS our stdio as it is by then and the fds (exec fifo, console,
seccomp pipe). From then on the socket carries launch's line protocol, and init goes on as a forked one would.

- `hutch run` spawns a fresh interpreter as the command begins (posix_spawn: no page tables copied, no
  copy-on-write for either side); the engine's ~10 ms before create give it time to start.
- hutch-runtime's launcher forks one before it imports the CLI, for create and run (`early`): create comes
  ~4 ms after that, too soon for a fresh interpreter (~6 ms to start), and the launcher is small to fork.

A container it does not fit (a PID namespace by path or none, a user or time namespace, a seccomp agent), a
detached or terminal `hutch run` (conmon's runtime makes init) and another runtime discard it: it is killed
before it holds anything. If we exit without a word, it reads EOF and exits.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.oci.config import Spec
    from hutch.runtime.init import InitContext
    from hutch.runtime.seccomp import Prepared
    from hutch.runtime.sync import Channel

_spawned: list[tuple[int, int]] = []  # (pid, our end of the socket), while one waits

# What the spawned interpreter runs: argv is [src dir, module cache ("" for none), socket fd]. It starts with
# SIGINT blocked (spawn) and ignores it before it unblocks it.
_BOOT = """import _signal
_signal.signal(2, _signal.SIG_IGN)
_signal.pthread_sigmask(_signal.SIG_UNBLOCK, [2])
import gc, sys
gc.set_threshold(100_000)
sys.path.insert(0, sys.argv[1])
if sys.argv[2]:
    from hutch import modcache
    modcache.install(sys.argv[2])
from hutch.runtime.prespawn import serve
serve(int(sys.argv[3]))
"""


# hutch-runtime's global flags that take a value (runtime/cli.py): the word after one is not the command.
_VALUED = frozenset(("--root", "--log", "--log-format", "--rootless", "--criu"))


def command(argv: list[str]) -> str:
    """The command a hutch-runtime command line names, "" for none: its first word that is neither a flag
    nor a global flag's value (`--root=DIR` is one word). A container named `run` is no `run`."""
    words = iter(argv[1:])
    for word in words:
        if word in _VALUED:
            next(words, None)
        elif not word.startswith("-") or word == "-":
            return word
    return ""


def early(argv: list[str]) -> None:
    """hutch-runtime's launcher, before it imports the CLI: the cgroup warm-up, and for create and run an init
    forked now (no fresh interpreter: create comes too soon after exec for one to be ready)."""
    from hutch.runtime import cgroup_warmup

    name = command(argv)
    cgroup_warmup.early(name)
    if name in ("create", "run"):
        spawn(fork=True)


def spawn(fork: bool = False) -> None:
    """Start an init ahead (as root only; any failure leaves create to fork one)."""
    if _spawned or os.geteuid() != 0:
        return
    import _socket

    import hutch
    from hutch import modcache
    from hutch.linux import ns, signals

    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    fd = theirs.detach()

    def start() -> int:
        if fork:
            return os.fork()
        os.set_inheritable(fd, True)
        src = os.path.dirname(os.path.dirname(os.path.abspath(hutch.__file__)))
        argv = [sys.executable, "-IS", "-c", _BOOT, src, modcache.installed, str(fd)]
        return os.posix_spawn(sys.executable, argv, os.environ, setsigmask=[signals.NUMBERS["INT"]])

    # A Ctrl-C in the terminal reaches init's process group too: blocked around the start, it reaches us once
    # init is recorded, and init, which ignores it before it unblocks it, never while it waits (serve).
    mask = signals.pthread_sigmask(signals.SIG_BLOCK, [signals.NUMBERS["INT"]])
    try:
        try:
            pid = ns.start_in_pid_namespace(start)
            if pid == 0:  # forked
                _forked(ours, fd)
        except OSError:
            ours.close()
            return
        finally:
            os.close(fd)
        apart(pid, os.sched_getaffinity(0))
        _spawned.append((pid, ours.detach()))
    finally:
        signals.pthread_sigmask(signals.SIG_SETMASK, mask)


def _forked(ours: object, fd: int) -> None:
    from hutch.linux import signals

    try:
        signals.set_handler(signals.NUMBERS["INT"], signals.SIG_IGN)
        signals.pthread_sigmask(signals.SIG_UNBLOCK, [signals.NUMBERS["INT"]])
        ours.close()  # type: ignore[attr-defined]
        serve(fd)  # (launch._init_directly closes the cgroup warm-up's fd we inherited)
    finally:
        os._exit(1)


def apart(pid: int, cpus: set[int]) -> None:
    """Send `pid`, a child just started, to another of `cpus` than ours. Left on our CPU, where the kernel
    queues a new child, it would wait for us to block while the other CPU idles. launch.py gives it `cpus`
    back before it moves it into its cgroups."""
    if len(cpus) < 2:
        return
    from hutch.linux.libc import libc

    others = cpus - {libc.sched_getcpu()}
    if others:
        try:
            os.sched_setaffinity(pid, others)
        except OSError:
            pass  # it only costs time: the child then shares our CPU


def discard() -> None:
    """Kill the init spawned ahead, which has nothing yet, and reap it."""
    while _spawned:
        pid, sock = _spawned.pop()
        os.close(sock)
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def hand_over(message: dict[str, object], fds: list[int], usable: bool) -> tuple[int, Channel] | None:
    """Give the init spawned ahead its container, if there is one and it is `usable`: (its pid, the channel
    to it). None (it is then discarded) leaves create to fork one."""
    if not _spawned:
        return None
    if not usable:
        discard()
        return None
    import _socket
    import marshal

    from hutch.runtime.sync import Channel

    pid, sock = _spawned[0]
    # Our stdio first: the engine may have pointed it elsewhere since the spawn (the log's tee, /dev/null).
    data = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in (0, 1, 2, *fds))
    body = marshal.dumps(message)  # built in, as JSON is not: init loads no shared object to read it
    s = _socket.socket(fileno=sock)
    try:
        s.sendmsg([len(body).to_bytes(4, "little") + body], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, data)])
    except OSError:
        discard()  # it is gone (a broken interpreter?): fork one
        return None
    finally:
        s.detach()
    _spawned.clear()
    return pid, Channel(sock, sock)


def serve(sock: int) -> None:
    """The spawned init: import what init needs, wait for a container, build it (launch._init_directly)."""
    import _socket
    import marshal

    from hutch.linux import signals
    from hutch.oci import config
    from hutch.runtime import cgroupmount, init, launch  # noqa: F401 (imported before the container comes)
    from hutch.runtime.sync import Channel

    os.set_inheritable(sock, False)
    try:
        hierarchies = cgroupmount.own_hierarchies()  # read while we wait, for the cgroup mount
    except OSError:
        hierarchies = None  # read when needed, and fail then
    s = _socket.socket(fileno=sock)
    try:
        data, ancillary, _, _ = s.recvmsg(65536, _socket.CMSG_SPACE(4 * 8))
    except OSError:
        os._exit(1)
    finally:
        s.detach()
    fds: list[int] = []
    for level, kind, blob in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [
                int.from_bytes(blob[i : i + 4], sys.byteorder, signed=True) for i in range(0, len(blob), 4)
            ]
    if not data:
        os._exit(0)  # discarded
    for target, fd in enumerate(fds[:3]):  # the engine's stdio as it is now
        os.dup2(fd, target)
        os.close(fd)
    fds = fds[3:]
    for fd in fds:
        os.set_inheritable(fd, False)  # SCM_RIGHTS gives them without close-on-exec
    while len(data) < 4 + int.from_bytes(data[:4], "little"):  # its length (4 bytes), then the message
        more = os.read(sock, 65536)
        if not more:
            os._exit(1)
        data += more
    end = 4 + int.from_bytes(data[:4], "little")
    chan = Channel(sock, sock)
    chan.pending(data[end:])
    # From here on as an init forked at create (where each step reports what it raises): a Ctrl-C aborts the
    # create, and the hooks we start get default dispositions (the spawned interpreter had glibc's own signals
    # ignored: see init.prepare_exec).
    signals.set_handler(signals.NUMBERS["INT"], signals.default_int_handler)
    try:
        signals.reset_internal()
        message = marshal.loads(data[4:end])
        spec = config.parse(message["config"], message["source"])
        ctx = _context(message, spec, chan, fds)
        mnt = spec.linux.namespace("mount") if spec.linux is not None else None
        if mnt is not None and not mnt.path:  # read in our mount namespace, which init's copies
            ctx.own_hierarchies = hierarchies
    except BaseException as e:
        from hutch.errors import HutchError

        chan.send("error", str(e) if isinstance(e, HutchError) else f"container setup: {e}")
        os._exit(1)
    try:
        launch._init_directly(ctx)
    finally:
        os._exit(1)


def _context(message: dict, spec: Spec, chan: Channel, fds: list[int]) -> InitContext:
    from hutch.runtime import init

    fifo_fd, rest = fds[0], fds[1:]
    console_fd = rest.pop(0) if message["console"] else None
    filt: Prepared | None = None
    if message["seccomp"]:
        from hutch.runtime import seccomp

        assert spec.linux is not None and spec.linux.seccomp is not None
        filt = seccomp.Prepared(spec.linux.seccomp, spec.source)
        filt.rfd = rest.pop(0)
    return init.InitContext(
        spec,
        message["id"],
        message["bundle"],
        message["rootfs"],
        chan,
        fifo_fd,
        console_fd,
        message["no_pivot"],
        message["no_new_keyring"],
        message["preserve_fds"],
        seccomp=filt,
    )
