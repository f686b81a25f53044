"""`exec`: start another process inside a running container, in all of its namespaces.

The runtime forks a child into init's PID namespace, which makes itself non-dumpable before it enters the
other namespaces (nothing inside can ptrace it or open its /proc files until it execs), then becomes the
process: it gets only stdio and the preserved fds, and its cwd from inside the rootfs.
"""

from __future__ import annotations

import os

from hutch import OCI_VERSION
from hutch.errors import HutchError, StateError
from hutch.linux import caps, prctl
from hutch.oci.config import Namespace, Process, Spec
from hutch.runtime import cgroup_warmup, cgroups, init, lsm, namespaces, process
from hutch.runtime.container import Container
from hutch.runtime.launch import close_inherited_fds, write_pid_file
from hutch.runtime.sync import Channel, pair

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.runtime.seccomp import Prepared


def exec_process(
    c: Container,
    spec: Spec,
    proc: Process,
    *,
    console_fd: int | None = None,
    pid_file: str | None = None,
    preserve_fds: int = 0,
) -> int:
    """Start `proc` in the container; returns its host pid once it has been exec'd (or failed to)."""
    status = c.status()
    if status not in ("created", "running"):
        raise StateError(f"cannot exec in container {c.id}: it is {status}")
    if proc.terminal and console_fd is None:
        raise HutchError("process.terminal is true: --console-socket is required")
    lsm.check(proc, "exec process")
    filt = None
    if spec.linux is not None and spec.linux.seccomp is not None:
        from hutch.runtime import seccomp

        filt = seccomp.prepare(spec.linux.seccomp, spec.source)  # built by a helper while we join
    try:
        parent, child = pair()
        pid = namespaces.fork_in_pid_namespace(_pid_namespace(c.pid))
    except BaseException:
        if filt is not None:
            filt.reap(kill=True)
        raise
    if pid == 0:
        try:
            parent.close()
            _child(c, spec, proc, child, console_fd, preserve_fds, c.state_doc(OCI_VERSION), filt)
        finally:  # a forked child must never unwind into the runtime's own code
            os._exit(1)
    child.close()
    if filt is not None:
        filt.detach()
    try:
        kind, payload = parent.recv()
        if kind == "error":
            raise HutchError(str(payload))
        if kind != "eof":  # the channel closes on a successful exec (close-on-exec)
            raise HutchError(f"exec in {c.id}: unexpected message {kind!r}")
    except BaseException:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        raise
    finally:
        parent.close()
        cgroup_warmup.stop()  # the child has joined (or failed): the launcher's warm-up has done its work
        if filt is not None:  # done by now, unless the exec failed before it got the filter
            filt.reap(kill=True)
    exec_pid = pid
    if pid_file:
        write_pid_file(pid_file, exec_pid)
    return exec_pid


def _pid_namespace(init_pid: int) -> list[Namespace]:
    """Init's PID namespace, for fork_in_pid_namespace, when it is not ours."""
    theirs = f"/proc/{init_pid}/ns/pid"
    try:
        if os.readlink(theirs) == os.readlink("/proc/self/ns/pid"):
            return []
    except OSError as e:
        raise HutchError(f"exec: cannot open the container's pid namespace: {e.strerror}") from None
    return [Namespace(type="pid", path=theirs)]


def _child(
    c: Container,
    spec: Spec,
    proc: Process,
    chan: Channel,
    console_fd: int | None,
    preserve_fds: int,
    state: dict[str, object],
    filt: Prepared | None,
) -> None:
    """Forked into init's PID namespace: join its other namespaces and cgroups, then exec; never returns."""
    try:
        prctl.prctl(prctl.PR_SET_DUMPABLE, 0)
        close_inherited_fds(3 + preserve_fds)
        init.preload(spec)  # the host's Python library is out of reach once we are inside
        if proc.terminal:  # preload() looks at the container's process; this one may differ
            from hutch.runtime import console  # noqa: F401
        cgroups.add(c.cgroup, 0)  # 0: ourselves (our pid in the container's namespace means nothing here)
        assert spec.linux is not None
        fds = _open_namespaces(c.pid, spec)
        caps.last_cap()  # read (and kept for become_user) from the host's /proc, not one the container mounted
        # A seccomp agent is told the pid of the process that loads the filter, as the host sees it.
        host_pid = init.host_pid() if filt is not None and filt.notify else None
        for kind, fd in fds:
            namespaces.join(kind, fd)
    except BaseException as e:
        try:
            chan.send("error", str(e) if isinstance(e, HutchError) else f"exec: {e}")
        finally:
            os._exit(1)
    _process(spec, proc, chan, console_fd, preserve_fds, state, filt, host_pid)


def _open_namespaces(pid: int, spec: Spec) -> list[tuple[str, int]]:
    """fds of init's namespaces that differ from ours, in join order."""
    assert spec.linux is not None
    wanted = {n.type for n in spec.linux.namespaces}
    out = []
    for kind in namespaces.ORDER:
        if kind not in wanted or kind == "pid":  # we were forked into it
            continue
        name = namespaces.PROC_NAMES[kind]
        theirs = f"/proc/{pid}/ns/{name}"
        try:
            if os.readlink(theirs) == os.readlink(f"/proc/self/ns/{name}"):
                continue
            out.append((kind, os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)))
        except OSError as e:
            raise HutchError(f"exec: cannot open the container's {kind} namespace: {e.strerror}") from None
    return out


def _process(
    spec: Spec,
    proc: Process,
    chan: Channel,
    console_fd: int | None,
    preserve_fds: int,
    state: dict[str, object],
    filt: Prepared | None,
    host_pid: int | None,
) -> None:
    """Inside the container: become the process the spec describes and exec it; never returns."""
    try:
        os.setsid()
        os.chdir("/")  # the mount namespace's root is the container's rootfs
        if proc.terminal:
            from hutch.runtime import console

            assert console_fd is not None
            size = proc.console_size
            console.setup_fd(console_fd, size.height if size else None, size.width if size else None)
        if proc.oom_score_adj is not None:
            process.set_oom_score_adj(proc.oom_score_adj)
        process.set_rlimits(proc)
        process.set_scheduling(proc)
        env = process.environ(proc)
        process.enter_cwd(proc.cwd)
        exe = process.find_executable(proc, env)
        if filt is not None and not proc.no_new_privileges:  # needs CAP_SYS_ADMIN: before the caps go
            filt.load(state, host_pid)
        process.become_user(proc)
        if proc.no_new_privileges:
            prctl.prctl(prctl.PR_SET_NO_NEW_PRIVS, 1)
        init.prepare_exec(preserve_fds)
        lsm.apply_on_exec(proc)
        if filt is not None and proc.no_new_privileges:  # last, so that the fewest syscalls run under it
            filt.load(state, host_pid)
        os.execve(exe, proc.args, env)
    except BaseException as e:
        if isinstance(e, HutchError):
            msg = str(e)
        elif isinstance(e, OSError):
            msg = f"exec {proc.args[0] if proc.args else ''}: {e.strerror}"
        else:
            msg = f"exec: {e}"
        try:
            chan.send("error", msg)
        finally:
            os._exit(1)
