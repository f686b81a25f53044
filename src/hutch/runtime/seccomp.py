"""linux.seccomp: the filter, built with libseccomp, loaded into the container process, and its NOTIFY agent.

The work is split between the runtime and the process that gets the filter (init, or an exec'd process):

- `Prepared.open()`, in the runtime before it forks the container process: the pipe the program will come
  through and, when a rule is SCMP_ACT_NOTIFY, the connection to `listenerPath`, made with the runtime's
  credentials and view of the host, as runc does. The container process inherits the read end and the
  connection (and closes its copy of the write end: `forked()`).
- `Prepared.start()`, in the runtime (create: after that fork, while init makes its namespaces and mounts;
  exec: before it, through `prepare(cfg)`): checks the profile (its errors are the operation's), then writes
  the cached program into the pipe, or forks a builder that turns the profile into a BPF program with
  libseccomp and writes it there (~9 ms for podman's default profile on three architectures, which then
  overlaps the container's setup). The runtime then `detach()`es its copies and `reap()`s the builder.
- A program once built is kept in a cache (CACHE_DIR, root's own tmpfs dir, a file per profile named by the
  sha256 of the plan, the libseccomp version and the kernel): the next container with the same profile
  (every default podman or hutch container) loads it without a builder, as crun keeps its own. The version
  comes from a record in the same dir (LIBRARY_RECORD) while the library file it was read from, and what
  chose that file (ld.so.cache, LD_LIBRARY_PATH), are unchanged: a cache hit never loads libseccomp.
- `Prepared.receive()`, in the container process before it reports ready: reads the program, or the error of
  a bad profile, which thus fails `create` (or `exec`) with nothing started.
- `Prepared.load(state)`, in the container process: one seccomp(2) call and, with NOTIFY, one sendmsg(2) that
  hands the listener fd and the container process state to the agent. Nothing runs between the two, so a
  notified syscall cannot block the handoff; only `sendmsg` itself cannot be NOTIFY (runc, which hands over
  through a pipe, refuses `write` for the same reason).

Rules follow runc: a rule whose action equals the default action is skipped (libseccomp refuses it); a name
libseccomp does not know is skipped with a debug line; the conditions of one rule are ANDed unless two test the
same argument, in which case each condition becomes a rule of its own (ORed). ERRNO and TRACE return EPERM
unless errnoRet says otherwise; errnoRet on another action is an error, as the runtime-spec says. The program
is loaded with seccomp(2) directly, not seccomp_load(), so every filter flag the kernel has works whatever
libseccomp's version (WAIT_KILLABLE_RECV needs libseccomp 2.6 otherwise), and the listener comes straight
from SECCOMP_FILTER_FLAG_NEW_LISTENER.

libseccomp (ctypes and dlopen, ~2 ms) is loaded only to build a program, which the builder does before
pivot_root; a filter that nobody prepared cannot be built after it.
"""

import os
import stat
import sys

from hutch import OCI_VERSION
from hutch.errors import ConfigError, HostError, HutchError
from hutch.jsonfast import dumps
from hutch.linux import seccomp as kernel
from hutch.oci.seccomp import SECCOMP_ACTIONS, SECCOMP_FLAGS, SECCOMP_OPS, Seccomp
from hutch.runtime import log

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

EPERM = 1
NOTIFY = "SCMP_ACT_NOTIFY"
CACHE_DIR = "/run/hutch/seccomp-cache"
LIBRARY_RECORD = ".libseccomp"  # in CACHE_DIR: the library's version, and what it was read from
_LD_CACHE = "/etc/ld.so.cache"
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
BPF_MAXINSNS = 4096
# The syscall that hands the listener fd over: a NOTIFY rule on it would wait for an agent that has no fd yet.
_HANDOFF_SYSCALLS = ("sendmsg",)

Condition = tuple[int, int, int, int]  # (argument index, SCMP_CMP_* number, datum_a, datum_b)


class Rule:
    """One libseccomp rule: its conditions are ANDed."""

    __slots__ = ("name", "action", "conditions")

    def __init__(self, name: str, action: int, conditions: tuple[Condition, ...] = ()) -> None:
        self.name = name
        self.action = action
        self.conditions = conditions

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rule):
            return NotImplemented
        return (self.name, self.action, self.conditions) == (other.name, other.action, other.conditions)

    def __repr__(self) -> str:
        return f"Rule({self.name!r}, {self.action:#x}, {self.conditions!r})"


class Compiled:
    """A filter ready to load: the BPF program and the seccomp(2) flags."""

    __slots__ = ("program", "flags")

    def __init__(self, program: kernel.Program, flags: int) -> None:
        self.program = program
        self.flags = flags

    @property
    def notify(self) -> bool:
        return bool(self.flags & kernel.FILTER_FLAG_NEW_LISTENER)

    def encode(self) -> bytes:
        return b"K" + self.flags.to_bytes(4, "little") + self.program.code()

    @classmethod
    def decode(cls, data: bytes) -> "Compiled":
        return cls(kernel.Program(data[5:]), int.from_bytes(data[1:5], "little"))


# --- the rules ------------------------------------------------------------------------------------------


def action_value(action: str, errno_ret: int | None, where: str) -> int:
    """The SCMP_ACT_* value of a spec action; ERRNO and TRACE carry errnoRet (EPERM by default)."""
    value = SECCOMP_ACTIONS[action]
    if action in _WITH_ERRNO:
        errno = EPERM if errno_ret is None else errno_ret
        if errno > 0xFFFF:
            raise ConfigError(f"{where}: {errno} does not fit the 16 bits of a seccomp return value")
        return value | errno
    if errno_ret is not None:  # runtime-spec: when the action doesn't support an errno, the runtime MUST fail
        raise ConfigError(f"{where}: {action} returns no errno; only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do")
    return value


def uses_notify(cfg: Seccomp) -> bool:
    return any(call.action == NOTIFY for call in cfg.syscalls)


def plan(cfg: Seccomp, source: str = "config.json") -> tuple[int, list[Rule]]:
    """The default action and the rules of a profile, in order, before syscall names are resolved."""
    where = f"{source}: linux.seccomp"
    if cfg.default_action == NOTIFY:
        raise ConfigError(f"{where}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
    if uses_notify(cfg) and not cfg.listener_path:
        raise ConfigError(f"{where}.listenerPath: required when a rule is SCMP_ACT_NOTIFY")
    default = action_value(cfg.default_action, cfg.default_errno_ret, f"{where}.defaultErrnoRet")
    rules: list[Rule] = []
    for i, call in enumerate(cfg.syscalls):
        action = action_value(call.action, call.errno_ret, f"{where}.syscalls[{i}].errnoRet")
        if call.action == NOTIFY:
            for name in call.names:
                if name in _HANDOFF_SYSCALLS:
                    raise ConfigError(
                        f"{where}.syscalls[{i}].names: SCMP_ACT_NOTIFY cannot be used for {name}: the "
                        "runtime hands the listener fd to the agent with it"
                    )
        if action == default:  # redundant, and libseccomp refuses it: skipped, as runc does
            continue
        conditions = [(a.index, SECCOMP_OPS[a.op], a.value, a.value_two or 0) for a in call.args]
        # libseccomp cannot AND two conditions on one argument: then each becomes a rule of its own.
        indexes = [c[0] for c in conditions]
        groups = [tuple(conditions)] if len(set(indexes)) == len(indexes) else [(c,) for c in conditions]
        for name in call.names:
            for group in groups:
                rules.append(Rule(name, action, group))
    return default, rules


def flag_bits(cfg: Seccomp, quiet: bool = False) -> int:
    """The seccomp(2) flags of a profile: its `flags`, plus NEW_LISTENER when a rule is NOTIFY."""
    bits = 0
    for name in cfg.flags:
        bits |= SECCOMP_FLAGS[name]
    if uses_notify(cfg):
        bits |= kernel.FILTER_FLAG_NEW_LISTENER
        if bits & kernel.FILTER_FLAG_TSYNC:  # the kernel takes the two together only with TSYNC_ESRCH
            bits |= kernel.FILTER_FLAG_TSYNC_ESRCH
    elif bits & kernel.FILTER_FLAG_WAIT_KILLABLE_RECV:
        # It changes how a notifying syscall waits for its agent: meaningless without one, and the kernel
        # refuses it without a listener. libseccomp 2.6 drops it the same way.
        if not quiet:
            log.debug("seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no rule is SCMP_ACT_NOTIFY")
        bits &= ~kernel.FILTER_FLAG_WAIT_KILLABLE_RECV
    return bits


def check_flags(cfg: Seccomp, source: str = "config.json") -> None:
    """Refuse, naming it, a flag this kernel does not take (it would fail seccomp(2) with a bare EINVAL)."""
    bits = flag_bits(cfg, quiet=True)
    if not bits or kernel.flags_supported(bits):
        return
    for name in cfg.flags:
        if not flag_supported(SECCOMP_FLAGS[name]):
            raise HostError(f"{source}: linux.seccomp.flags: this kernel does not support {name}")
    raise HostError(f"{source}: linux.seccomp.flags: this kernel does not take these flags together")


def flag_supported(bit: int) -> bool:
    """Whether the kernel takes one filter flag (WAIT_KILLABLE_RECV only comes with a listener)."""
    if bit == kernel.FILTER_FLAG_WAIT_KILLABLE_RECV:
        bit |= kernel.FILTER_FLAG_NEW_LISTENER
    return kernel.flags_supported(bit)


# --- the runtime's side and the container process's side ------------------------------------------------


class Prepared:
    """A filter being built for one container process; see the module docstring for who calls what."""

    __slots__ = ("cfg", "source", "notify", "builder", "rfd", "wfd", "listener", "compiled")

    def __init__(self, cfg: Seccomp, source: str = "config.json") -> None:
        self.cfg = cfg
        self.source = source
        self.notify = uses_notify(cfg)  # the process that loads it hands a listener fd to an agent
        self.builder = 0
        self.rfd = self.wfd = -1
        self.listener: socket.socket | None = None
        self.compiled: Compiled | None = None

    # In the runtime.

    def open(self) -> None:
        """The pipe the program will come through (and the agent's connection), before the container
        process is forked: it inherits the read end. start() may then come after the fork."""
        if self.notify:  # the profile's errors before a connection's
            plan(self.cfg, self.source)
            check_flags(self.cfg, self.source)
        self.rfd, self.wfd = os.pipe()
        if self.notify:
            try:
                self.listener = _connect(self.cfg.listener_path, self.source)
            except BaseException:
                self.detach()
                raise

    def forked(self) -> None:
        """In the container process forked between open() and start(): without our copy of the write end,
        its read ends when the runtime's program is in."""
        if self.wfd >= 0:
            os.close(self.wfd)
            self.wfd = -1

    def start(self) -> None:
        """Check the profile (its errors are create's), then write the program from the cache into the pipe,
        or fork a builder that writes it there."""
        try:
            version = library_version()
            if not version:
                from hutch.linux import libseccomp

                raise HostError(f"{self.source}: linux.seccomp: {libseccomp.load_error}")
            planned = plan(self.cfg, self.source)  # the config errors now, in the runtime, not the builder
            check_flags(self.cfg, self.source)
            key = cache_key(self.cfg, planned, version)
            cached = cache_get(key)
            if cached is not None:
                if log.debug_enabled():  # what the build would have said
                    from hutch.linux import libseccomp

                    for name in sorted({rule.name for rule in planned[1]}):
                        if libseccomp.syscall_resolve(name) == libseccomp.NR_SCMP_ERROR:
                            log.debug(f"seccomp: syscall {name!r} is unknown on this architecture: ignored")
                self._write(cached)
            else:
                self._fork_builder(key)
        except BaseException:
            self.detach()
            raise
        finally:
            self.forked()

    def _write(self, data: bytes) -> None:
        """Into the empty pipe: a program (BPF_MAXINSNS instructions at most, 32 KiB) fits in its 64 KiB. A
        smaller pipe (an unprivileged user over pipe-user-pages-soft) gets the rest from a writer process:
        the container process reads only once it is set up, and would wait for us meanwhile."""
        os.set_blocking(self.wfd, False)
        try:
            sent = os.write(self.wfd, data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            os.set_blocking(self.wfd, True)
            self._fork(lambda: data[sent:])

    def _fork_builder(self, key: str) -> None:
        def built() -> bytes:
            from hutch.runtime.seccomp_build import build

            try:
                data = build(self.cfg, self.source).encode()
            except HutchError as e:
                data = (b"C" if isinstance(e, ConfigError) else b"E") + str(e).encode()
            return data

        self._fork(built, key)

    def _fork(self, produce: "Callable[[], bytes]", key: str = "") -> None:
        """A child that writes what `produce` makes into the pipe (then, with `key`, into the cache)."""
        pid = os.fork()
        if pid == 0:  # never returns
            code = 1
            try:
                os.close(self.rfd)
                if self.listener is not None:
                    self.listener.close()
                data = produce()
                view = memoryview(data)
                while view:
                    view = view[os.write(self.wfd, view) :]
                os.close(self.wfd)
                if key and data[:1] == b"K":
                    cache_put(key, data)  # after the program is on its way: nobody waits for this
                code = 0
            finally:
                os._exit(code)
        self.builder = pid

    def detach(self) -> None:
        """Close the runtime's copies of the pipe and the agent's connection, once the container process
        has its own."""
        self.forked()
        if self.rfd >= 0:
            os.close(self.rfd)
            self.rfd = -1
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def reap(self, kill: bool = False) -> None:
        """Detach, then wait for the builder (kill it first when the operation failed)."""
        self.detach()
        if self.builder:
            if kill:
                try:
                    os.kill(self.builder, 9)
                except ProcessLookupError:
                    pass
            try:
                os.waitpid(self.builder, 0)
            except ChildProcessError:  # a reaper of every child got it first
                pass
            self.builder = 0

    # In the container process.

    def receive(self) -> None:
        """Read the program from the builder; a bad profile raises its error here."""
        if self.compiled is not None:
            return
        if self.rfd < 0:
            from hutch.runtime.seccomp_build import build

            self.compiled = build(self.cfg, self.source)
            return
        chunks = []
        while True:
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(self.rfd)
        self.rfd = -1
        data = b"".join(chunks)
        if data[:1] == b"K":
            self.compiled = Compiled.decode(data)
        elif data[:1] == b"C":
            raise ConfigError(data[1:].decode(errors="replace"))
        elif data[:1] == b"E":
            raise HostError(data[1:].decode(errors="replace"))
        else:
            raise HutchError(f"{self.source}: linux.seccomp: the filter builder died")

    def load(self, state: dict[str, object], pid: int | None = None) -> None:
        """Install the filter on the calling process. With NOTIFY, send the listener fd and the container
        process state (runtime-spec `containerProcessState`) to the agent. `state` is the container's OCI
        state; `pid` the calling process's pid as the host sees it (default: state["pid"], right for init)."""
        self.receive()
        compiled = self.compiled
        assert compiled is not None
        message = b""
        if compiled.notify:
            if self.listener is None:  # nobody prepared a connection (a caller without prepare())
                self.listener = _connect(self.cfg.listener_path, self.source)
            message = dumps(
                {
                    "ociVersion": OCI_VERSION,
                    "fds": ["seccompFd"],
                    "pid": state.get("pid", 0) if pid is None else pid,
                    "metadata": self.cfg.listener_metadata,
                    "state": state,
                }
            ).encode()
        try:
            fd = kernel.set_mode_filter(compiled.program, compiled.flags)
        except OSError as e:
            raise HostError(f"seccomp: cannot load the filter: {e.strerror}") from None
        if compiled.notify:
            listener = self.listener
            assert listener is not None
            try:
                _send(listener, message, fd, self.cfg.listener_path)
            finally:
                os.close(fd)
                listener.close()
                self.listener = None


# --- the cache of built programs ------------------------------------------------------------------------


def cache_key(cfg: Seccomp, planned: tuple[int, list[Rule]], version: str) -> str:
    """What the program depends on: the rules as planned, the architectures, the flags, the libseccomp that
    builds it and the kernel it is built for."""
    try:
        from _sha256 import sha256  # the builtin: hashlib's import costs milliseconds on the create path
    except ImportError:
        from hashlib import sha256
    default, rules = planned
    text = repr(
        (
            default,
            [(r.name, r.action, r.conditions) for r in rules],
            list(cfg.architectures),
            flag_bits(cfg, quiet=True),
            version,
            os.uname().release,
            os.uname().machine,
            "tree",  # the layout seccomp_build asks libseccomp for
        )
    )
    digest: str = sha256(text.encode()).hexdigest()
    return digest


def cache_get(key: str) -> bytes | None:
    """The program built before for `key`, encoded (Compiled.encode), if the cache has it and it is root's
    and sound."""
    data = _read_cached(key, 8 * BPF_MAXINSNS + 5)
    if data is None or data[:1] != b"K" or len(data) < 13 or (len(data) - 5) % 8:
        return None
    return data


def cache_put(key: str, data: bytes) -> None:
    """Keep a built program (written whole, then renamed, so a reader sees all of it or nothing)."""
    if os.geteuid() != 0:
        return
    try:
        os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
        st = os.lstat(CACHE_DIR)
        if st.st_uid != 0 or st.st_mode & 0o077 or not stat.S_ISDIR(st.st_mode):
            return  # not a directory only root can write: no cache rather than one others could fill
        tmp = os.path.join(CACHE_DIR, f".{key}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return  # a cache: building again next time is the worst that can happen
    try:
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(CACHE_DIR, key))
    except OSError:
        try:
            os.unlink(tmp)  # no half-written entry left behind (ENOSPC, say)
        except OSError:
            pass


def _read_cached(name: str, limit: int) -> bytes | None:
    """A file of the cache, if it is root's, not writable by others and at most `limit` bytes."""
    if os.geteuid() != 0:
        return None
    try:
        fd = os.open(os.path.join(CACHE_DIR, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid != 0 or st.st_mode & 0o022 or st.st_size > limit:
            return None
        return os.read(fd, st.st_size + 1)
    finally:
        os.close(fd)


# --- the library's version, without loading it -----------------------------------------------------------


def libseccomp_version() -> str:
    """The library's version ("2.5.4"), or "" without it."""
    from hutch.linux import libseccomp

    return "" if libseccomp.lib is None else ".".join(map(str, libseccomp.version()))


def library_version() -> str:
    """libseccomp's version, as the cache key has it: from LIBRARY_RECORD while what it says still holds,
    else from the library itself (loaded, then recorded). "" without the library."""
    data = _read_cached(LIBRARY_RECORD, 4096)
    if data is not None:
        path, _, rest = data.decode(errors="replace").partition("\n")
        version, _, identity = rest.partition("\n")
        if version and identity == _library_identity(path):
            return version
    version = libseccomp_version()
    path = _loaded_path("/libseccomp.so")
    if version and path:
        cache_put(LIBRARY_RECORD, f"{path}\n{version}\n{_library_identity(path)}".encode())
    return version


def _library_identity(path: str) -> str:
    """What a dlopen("libseccomp.so.2") finds: the file at `path`, as it is (an upgrade replaces it, or at
    least changes its ctime), while ld.so.cache and LD_LIBRARY_PATH, which chose it, stay as they were."""
    parts = [os.environ.get("LD_LIBRARY_PATH", "")]
    for name in (_LD_CACHE, path):
        try:
            st = os.stat(name)
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_size}")
    return " ".join(parts)


def _loaded_path(name: str) -> str:
    """The file of a shared library this process has mapped whose path contains `name`, or ""."""
    with open("/proc/self/maps", "rb") as f:
        for line in f:
            path = line.split(maxsplit=5)[5:]
            if path and name.encode() in path[0]:
                return path[0].rstrip(b"\n").decode()
    return ""


def prepare(cfg: Seccomp, source: str = "config.json") -> Prepared:
    """Open the pipe, connect to the agent and start building the filter, before a fork; see the module
    docstring (create opens before its fork and starts after it)."""
    prepared = Prepared(cfg, source)
    prepared.open()
    prepared.start()
    return prepared


def load(cfg: Seccomp, state: dict[str, object], pid: int | None = None) -> None:
    """Build and load in one go, in the calling process (no builder, no parallelism)."""
    Prepared(cfg).load(state, pid)


def _connect(path: str, source: str) -> "socket.socket":
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise HutchError(
            f"{source}: linux.seccomp.listenerPath: cannot connect to {path}: {e.strerror}"
        ) from None
    return sock


def _send(sock: "socket.socket", message: bytes, fd: int, path: str) -> None:
    import socket

    try:
        sent = sock.sendmsg(
            [message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd.to_bytes(4, sys.byteorder))]
        )
        if sent < len(message):
            sock.sendall(message[sent:])
    except OSError as e:
        raise HutchError(f"seccomp: cannot send the listener fd to {path}: {e.strerror}") from None
