"""The container's init (stage 2): builds the container around itself, reports ready, waits, execs.

Runs in the forked child that is PID 1 of the container's PID namespace. It never returns: it execs the user
process or exits. Until it reports ready, every error goes back to the runtime over the channel.
"""

import os

from hutch.errors import HutchError
from hutch.linux import caps, net, prctl, signals
from hutch.linux.fs import CLOSE_RANGE_CLOEXEC, close_range
from hutch.oci.config import Spec
from hutch.runtime import cgroupmount, lsm, namespaces, process, rootfs, sysctl
from hutch.runtime.sync import Channel

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass

    from hutch.runtime.seccomp import Prepared
else:
    from hutch.record import dataclass


@dataclass(slots=True)
class InitContext:
    spec: Spec
    container_id: str
    bundle: str
    rootfs: str
    channel: Channel
    fifo_fd: int
    console_fd: int | None  # connected --console-socket, for terminal containers
    no_pivot: bool
    no_new_keyring: bool
    preserve_fds: int
    host_pid: int = 0  # our pid on the host, in the state hooks and a seccomp agent get (read only for them)
    # Our cgroup hierarchies (cgroupmount.own_hierarchies) and the container's cgroup directories.
    cgroups: tuple[list[tuple[str, str]], list[str]] | None = None
    own_hierarchies: list[tuple[str, str]] | None = None  # read ahead (prespawn), else when needed
    in_cgroup: bool = False  # the runtime has moved us into them (cgroup-done)
    trees: dict[int, int] | None = None  # bind mounts stage 1 made in the host's user namespace, by index
    seccomp: "Prepared | None" = None  # the filter the runtime started building (seccomp.prepare)
    proc_fd: int = -1  # the root of the proc mounted at /proc (rootfs.mount_all), kept until start
    cgroupns_fd: int = -1  # a cgroup namespace given by path (a pod's), joined by _enter_cgroup


def preload(spec: Spec) -> None:
    """Import now every module the steps after pivot_root need: once the rootfs is `/`, the host's Python
    library is out of reach."""
    hooks = spec.hooks
    if hooks.create_container or hooks.start_container:
        from hutch import jsonfast  # noqa: F401 (the state they read)
        from hutch.runtime import hooks as _hooks  # noqa: F401
    if spec.process is not None and spec.process.terminal:
        from hutch.runtime import console  # noqa: F401

    if spec.linux is not None and spec.linux.seccomp is not None:
        from hutch.runtime import seccomp  # noqa: F401


def run(ctx: InitContext) -> None:
    """Stage 2 entry point; does not return."""
    try:
        preload(ctx.spec)
        hooks = ctx.spec.hooks
        if (
            hooks.create_container
            or hooks.start_container
            or (ctx.seccomp is not None and ctx.seccomp.notify)
        ):
            ctx.host_pid = host_pid()  # in the state they get: read while /proc is the host's
        exe, env = _build(ctx)
    except BaseException as e:  # anything at all must reach the runtime, not a traceback on our stderr
        ctx.channel.send("error", _describe(e))
        os._exit(1)
    ctx.channel.send("ready")
    ctx.channel.close()
    try:
        _wait_for_start(ctx.fifo_fd, ctx.proc_fd)
        _exec(ctx, exe, env)
    except BaseException as e:  # a forked child must never unwind into the runtime's own code
        try:
            os.write(2, f"hutch-runtime: {_describe(e)}\n".encode())
        finally:
            os._exit(1)


def _describe(e: BaseException) -> str:
    if isinstance(e, HutchError):
        return str(e)
    if isinstance(e, OSError):  # linux/ wrappers put the call's name in strerror; os calls set filename
        return f"container init: {e.strerror or e}" + (f": {e.filename}" if e.filename else "")
    return f"container init: {type(e).__name__}: {e}"


def _build(ctx: InitContext) -> tuple[str, dict[str, str]]:
    spec = ctx.spec
    proc = spec.require_process()
    linux = spec.linux
    assert linux is not None
    os.setsid()
    if proc.oom_score_adj is not None:
        process.set_oom_score_adj(proc.oom_score_adj)
    if not ctx.no_new_keyring:
        _join_keyring(ctx.container_id)
    in_userns = linux.namespace("user") is not None
    rootfs.prepare(spec, ctx.rootfs)
    kernel_fs = rootfs.mount_all(spec, ctx.rootfs, ctx.bundle, in_userns, lambda: _cgroups(ctx), ctx.trees)
    ctx.proc_fd = kernel_fs.get("/proc", -1)
    if spec.hooks.prestart or spec.hooks.create_runtime or spec.hooks.create_container:
        _enter_cgroup(ctx)  # hooks see the container in its cgroups
    if spec.hooks.prestart or spec.hooks.create_runtime:
        ctx.channel.send("hooks")
        ctx.channel.expect("hooks-done", "createRuntime hooks")
    if spec.hooks.create_container:
        _run_hooks("createContainer", ctx, "creating")
    # Read while /proc is still the host's; after pivot_root the container's /proc is reached only through
    # kernel_fs, since the path /proc may by then be a decoy (a forged cap_last_cap would keep capabilities
    # in the bounding set, a forged setgroups "deny" the runtime's supplementary groups).
    caps.last_cap()  # cached for become_user
    setgroups = process.setgroups_allowed()
    rootfs.pivot(ctx.rootfs, ctx.no_pivot)
    _set_names(spec)
    netns = linux.namespace("network")
    if netns is not None and not netns.path:
        # A new network namespace comes with `lo` down; runc brings it up, and callers count on it.
        try:
            net.link_up("lo")
        except OSError as e:
            raise HutchError(f"cannot bring up the loopback interface: {e.strerror}") from None
    # Before finish(): /proc/sys is one of the default read-only paths.
    sysctl.write(linux.sysctl, ctx.proc_fd)
    if proc.terminal:  # before finish(): /dev/console is made while the rootfs may still be written
        from hutch.runtime import console

        assert ctx.console_fd is not None
        size = proc.console_size
        console.setup_fd(
            ctx.console_fd, size.height if size else None, size.width if size else None, dev_console=True
        )
    rootfs.finish(spec, kernel_fs)
    for fd in kernel_fs.values():
        if fd != ctx.proc_fd:
            os.close(fd)
    # As late as this: the runtime's move of us waits for an RCU grace period, and the rootfs needs it not.
    _enter_cgroup(ctx)
    process.set_rlimits(proc)
    if linux.personality is not None:
        process.set_personality(linux.personality.domain)
    process.set_scheduling(proc)
    env = process.environ(proc)
    process.enter_cwd(proc.cwd)
    exe = process.find_executable(proc, env)
    if ctx.seccomp is not None and not proc.no_new_privileges:
        # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: in before the capabilities go.
        _load_seccomp(ctx)
    lsm.apply_on_exec(proc, ctx.proc_fd)  # through our own proc mount: a decoy /proc cannot swallow it
    process.become_user(proc, setgroups)
    if proc.no_new_privileges:
        prctl.prctl(prctl.PR_SET_NO_NEW_PRIVS, 1)
    if ctx.seccomp is not None and proc.no_new_privileges:
        ctx.seccomp.receive()  # the program from the builder: a bad profile fails create here
        if ctx.seccomp.notify:
            # The agent must have its fd when create returns, and failing to send it must fail create.
            _load_seccomp(ctx)
    return exe, env


def _cgroups(ctx: InitContext) -> tuple[list[tuple[str, str]], list[str]]:
    """Our cgroup hierarchies and the directories the runtime made for the container (cgroupmount.mount): it
    sends them before it moves us in. Read before pivot_root: /proc is still the host's."""
    if ctx.cgroups is None:
        dirs = ctx.channel.expect("cgroup-dirs", "cgroup setup")
        listed = dirs if isinstance(dirs, list) else []
        own = ctx.own_hierarchies if ctx.own_hierarchies is not None else cgroupmount.own_hierarchies()
        ctx.cgroups = (own, [d for d in listed if isinstance(d, str)])
    return ctx.cgroups


def _enter_cgroup(ctx: InitContext) -> None:
    """Wait until the runtime has moved us into the container's cgroups (it does so while we build the
    rootfs), then make our cgroup namespace, whose root is where we now are."""
    if not ctx.in_cgroup:
        if ctx.cgroups is None:  # no cgroup mount needed them
            ctx.channel.expect("cgroup-dirs", "cgroup setup")
        ctx.channel.expect("cgroup-done", "cgroup setup")
        ctx.in_cgroup = True
        cgroupns = ctx.spec.linux.namespace("cgroup") if ctx.spec.linux is not None else None
        if cgroupns is not None and not cgroupns.path:
            namespaces.unshare(namespaces.FLAGS["cgroup"])
        elif ctx.cgroupns_fd >= 0:  # inside it /proc/self/cgroup would name our cgroups "/../ID"
            namespaces.join("cgroup", ctx.cgroupns_fd)  # and closes it
            ctx.cgroupns_fd = -1


def _join_keyring(container_id: str) -> None:
    try:
        serial = prctl.join_session_keyring(container_id)
        prctl.set_keyring_perm(serial, 0x3F1F0000)  # possessor: all; user: view, read, write, search, link
    except OSError as e:
        if e.errno != 38:  # ENOSYS: no keyrings in this kernel; nothing to isolate
            raise HutchError(f"cannot join a new session keyring: {e.strerror}") from None


def _set_names(spec: Spec) -> None:
    assert spec.linux is not None
    if (spec.hostname or spec.domainname) and spec.linux.namespace("uts") is None:
        raise HutchError("hostname: setting it needs a new uts namespace in linux.namespaces")
    try:
        if spec.hostname:
            prctl.sethostname(spec.hostname)
        if spec.domainname:
            prctl.setdomainname(spec.domainname)
    except OSError as e:
        raise HutchError(f"hostname/domainname: {e.strerror}") from None


def _state(ctx: InitContext, status: str) -> dict[str, object]:
    """The OCI state document as seen from init (hooks and seccomp listeners get it)."""
    from hutch import OCI_VERSION

    return {
        "ociVersion": OCI_VERSION,
        "id": ctx.container_id,
        "status": status,
        "pid": ctx.host_pid,
        "bundle": ctx.bundle,
        "annotations": ctx.spec.annotations,
    }


def _run_hooks(kind: str, ctx: InitContext, status: str) -> None:
    from hutch.jsonfast import dumps
    from hutch.runtime import hooks

    hook_list = (
        ctx.spec.hooks.create_container if kind == "createContainer" else ctx.spec.hooks.start_container
    )
    hooks.run_hooks(kind, hook_list, dumps(_state(ctx, status)))


def host_pid() -> int:
    """Our pid as the host sees it: the first NSpid entry, read while /proc is still the host's."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[1])
    return os.getpid()


def _load_seccomp(ctx: InitContext) -> None:
    """Install the filter; a NOTIFY agent gets the container process state, in which the status is
    "creating" and the pid init's."""
    assert ctx.seccomp is not None
    ctx.seccomp.load(_state(ctx, "creating"))


def _wait_for_start(fifo_fd: int, proc_fd: int = -1) -> None:
    """Block until `start` opens the exec fifo for reading, then tell it we go.

    The fifo is reopened for writing through the root of our own proc (`proc_fd`): the path /proc/self/fd/N
    could lead to another fifo, one that lets the container start without `start`."""
    if proc_fd >= 0:
        fd = os.open(f"self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=proc_fd)
        os.close(proc_fd)
    else:
        fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b"0")
    os.close(fd)
    os.close(fifo_fd)


def _exec(ctx: InitContext, exe: str, env: dict[str, str]) -> None:
    proc = ctx.spec.require_process()
    try:
        if ctx.spec.hooks.start_container:
            _run_hooks("startContainer", ctx, "created")  # the user process has not run yet
        prepare_exec(ctx.preserve_fds)
        if ctx.seccomp is not None and proc.no_new_privileges and not ctx.seccomp.notify:
            # With no_new_privs the filter goes in last, so that the fewest syscalls run under it.
            _load_seccomp(ctx)
        os.execve(exe, proc.args, env)
    except HutchError as e:
        os.write(2, f"hutch-runtime: {e}\n".encode())
        os._exit(1)
    except OSError as e:
        os.write(2, f"hutch-runtime: exec {exe}: {e.strerror}\n".encode())
        os._exit(127 if e.errno == 2 else 126)


def prepare_exec(preserve_fds: int) -> None:
    """Leave the new program only stdio and the preserved fds, and default signal dispositions.

    Python ignores SIGPIPE and SIGXFSZ, the init started ahead SIGINT, and glibc's posix_spawn leaves its own
    two signals (32 and 33, below SIGRTMIN) ignored in the interpreter `hutch run` spawns; exec keeps ignored
    signals ignored, so they are reset here.
    """
    for fd in range(3, 3 + preserve_fds):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    close_range(3 + preserve_fds, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)
    for name in ("PIPE", "XFSZ", "INT", "TERM", "HUP", "CHLD", "WINCH"):
        signals.set_handler(signals.NUMBERS[name], signals.SIG_DFL)
    signals.reset_internal()
    signals.pthread_sigmask(signals.SIG_SETMASK, [])
