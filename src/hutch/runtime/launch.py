"""Creating a container: the runtime (stage 0) forks init, through a stage 1 only for a user or time namespace.

stage 0  validates, makes the state dir and exec fifo, forks, moves init into its cgroups while init builds the
         rootfs, runs createRuntime hooks, records the init pid, exits.
         Without a user or time namespace it forks init itself, into the container's PID namespace (unshare
         or setns of CLONE_NEWPID move only the children to come; it takes its own back after the fork), and
         init enters the other namespaces (_init_directly): no stage 1, whose fork and exit cost ~2 ms.
stage 1  joins or creates the user namespace, waits for its maps, joins or creates the others (but the cgroup
         namespace, which init makes once it is in its cgroups), forks stage 2 (PID 1 of a new PID
         namespace), reports its pid, exits, so init is re-parented to the subreaper.
stage 2  is init.py.
"""

from __future__ import annotations

import os
import sys
import time

from hutch.errors import ConfigError, HostError, HutchError
from hutch.runtime import cgroup_warmup, container, lsm, namespaces, prespawn
from hutch.runtime.container import Container
from hutch.runtime.sync import Channel, pair

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.oci.config import IDMapping, Spec
    from hutch.runtime import cgroups
    from hutch.runtime.init import InitContext
    from hutch.runtime.seccomp import Prepared

# init (and with it rootfs, process, the mount code) is imported by the forked child, cgroups by us after
# the fork: on two cores the ~4 ms of imports overlap. (An init started ahead, prespawn.py, has them already.)


def check_spec(spec: Spec, bundle: str) -> str:
    """Validate what create needs beyond the schema; returns the absolute rootfs path."""
    lsm.check(spec.require_process(), spec.source)
    if spec.root is None:
        raise ConfigError(f"{spec.source}: root: required")
    rootfs = spec.root.path
    if not os.path.isabs(rootfs):
        rootfs = os.path.join(bundle, rootfs)
    if not os.path.isdir(rootfs):
        raise ConfigError(f"{spec.source}: root.path: {rootfs} is not a directory")
    if spec.linux is None or spec.linux.namespace("mount") is None:
        raise ConfigError(f"{spec.source}: linux.namespaces: hutch needs a mount namespace")
    userns = spec.linux.namespace("user")
    if userns is not None and not userns.path and not spec.linux.uid_mappings:
        raise ConfigError(f"{spec.source}: linux.uidMappings: a new user namespace needs uid mappings")
    timens = spec.linux.namespace("time")
    if spec.linux.sysctl:
        from hutch.runtime import sysctl

        sysctl.check(spec)
    if spec.linux.time_offsets and (timens is None or timens.path):
        raise ConfigError(f"{spec.source}: linux.timeOffsets: needs a new time namespace")
    return os.path.realpath(rootfs)


def create(
    root: str,
    container_id: str,
    bundle: str,
    spec: Spec,
    *,
    pid_file: str | None = None,
    console_fd: int | None = None,
    no_pivot: bool = False,
    no_new_keyring: bool = False,
    preserve_fds: int = 0,
) -> Container:
    """Create the container and leave its init waiting on the exec fifo."""
    bundle = os.path.abspath(bundle)
    rootfs = check_spec(spec, bundle)
    if spec.require_process().terminal and console_fd is None:
        raise HutchError("process.terminal is true: --console-socket is required")
    state_dir = container.make_dir(root, container_id)
    c = Container(
        id=container_id,
        root=root,
        bundle=bundle,
        rootfs=rootfs,
        created=_now(),
        annotations=spec.annotations,
        config=spec.raw,
    )
    init_pid = reap_init = 0
    filt = None
    linux = spec.linux
    assert linux is not None  # check_spec
    try:
        if linux.seccomp is not None:
            from hutch.runtime import seccomp

            # Init reads the program from a pipe once it is set up; we fill it after the fork (from the
            # cache, or a builder process does), while init makes the namespaces and mounts.
            filt = seccomp.Prepared(linux.seccomp, spec.source)
            filt.open()
        os.mkfifo(c.fifo, 0o622)
        # Exactly 0622, whatever our umask: init opens it for writing after it became process.user.
        os.chmod(c.fifo, 0o622)
        fifo_fd = os.open(c.fifo, os.O_PATH | os.O_CLOEXEC)
        direct = linux.namespace("user") is None and linux.namespace("time") is None
        cpus = os.sched_getaffinity(0)
        pidns = linux.namespace("pid")
        ahead = prespawn.hand_over(
            {
                "config": spec.raw,
                "source": spec.source,
                "id": container_id,
                "bundle": bundle,
                "rootfs": rootfs,
                "console": console_fd is not None,
                "seccomp": filt is not None,
                "no_pivot": no_pivot,
                "no_new_keyring": no_new_keyring,
                "preserve_fds": preserve_fds,
            },
            [fifo_fd, *([console_fd] if console_fd is not None else []), *([filt.rfd] if filt else [])],
            usable=direct and pidns is not None and not pidns.path and not (filt and filt.notify),
        )
        if ahead is not None:
            pid, parent = ahead
        else:
            pid, parent = _fork_init(
                spec,
                container_id,
                bundle,
                rootfs,
                fifo_fd,
                console_fd,
                no_pivot,
                no_new_keyring,
                preserve_fds,
                filt,
                direct,
            )
            prespawn.apart(pid, cpus)
        if direct:
            reap_init = pid  # our own child, reaped if create fails
        try:
            os.close(fifo_fd)
            if filt is not None:
                filt.start()
                filt.detach()
            init_pid, state = _drive(parent, pid, spec, c, direct, cpus)
            if filt is not None:
                filt.reap()
        finally:
            parent.close()
        c.save(state)
        if pid_file:
            write_pid_file(pid_file, init_pid)
    except BaseException:
        if filt is not None:
            filt.reap(kill=True)
        if init_pid:
            _kill_quietly(init_pid)
        if reap_init:
            _kill_quietly(reap_init)
            _reap(reap_init)
        _destroy_cgroup(c)
        container.remove_state(state_dir)
        raise
    return c


def _fork_init(
    spec: Spec,
    container_id: str,
    bundle: str,
    rootfs: str,
    fifo_fd: int,
    console_fd: int | None,
    no_pivot: bool,
    no_new_keyring: bool,
    preserve_fds: int,
    filt: Prepared | None,
    direct: bool,
) -> tuple[int, Channel]:
    """Fork init (`direct`ly, into its PID namespace) or stage 1; (its pid, our end of the channel)."""
    assert spec.linux is not None
    parent, child = pair()
    try:
        pid = namespaces.fork_in_pid_namespace(spec.linux.namespaces) if direct else os.fork()
    except BaseException:
        parent.close()
        child.close()
        raise
    if pid == 0:
        try:
            parent.close()
            if filt is not None:
                filt.forked()
            from hutch.runtime import init

            ctx = init.InitContext(
                spec,
                container_id,
                bundle,
                rootfs,
                child,
                fifo_fd,
                console_fd,
                no_pivot,
                no_new_keyring,
                preserve_fds,
                seccomp=filt,
            )
            (_init_directly if direct else _stage1)(ctx)
        finally:  # a forked child must never unwind into the runtime's own code
            os._exit(1)
    child.close()
    return pid, parent


def _drive(
    chan: Channel, child: int, spec: Spec, c: Container, direct: bool, cpus: set[int]
) -> tuple[int, str]:
    """Serve stage 1 (or init, forked `direct`ly) and init until init reports ready; returns init's pid and
    the text of state.json (c's pid and start time are set)."""
    from hutch.runtime import cgroups

    assert spec.linux is not None
    init_pid = child if direct else 0

    def remember(record: cgroups.Record) -> None:
        # Init mounts them (cgroupmount) while we write the limits and move it: sent first, as it may be
        # waiting for them. Stage 1 reads no message but setup-done, which came before (a user namespace's
        # cgroups are made once init's pid is known).
        try:
            chan.send("cgroup-dirs", cgroups.directories(record))
        except BrokenPipeError:
            pass  # init failed meanwhile: its error message is waiting to be read
        c.cgroup = record
        c.save_creating()  # so a runtime killed from here on leaves cgroups that `delete --force` finds

    record: cgroups.Record | None = None
    failed: Exception | None = None
    state = ""
    try:
        if spec.linux.namespace("user") is None:
            # Init (or stage 1) makes the namespaces meanwhile. (With a user namespace stage 1 first waits
            # for us to write its id maps.)
            try:
                record = cgroups.prepare(c.id, spec.linux, remember=remember)
            except Exception as e:
                failed = e  # raised once init's pid is known, so that it is killed
        kind, payload = ("pid", child) if direct else chan.recv()
        if kind == "setup":
            if spec.linux.namespace("user") is not None and not spec.linux.namespace("user").path:  # type: ignore[union-attr]
                namespaces.write_id_maps(
                    child, _map_lines(spec.linux.uid_mappings), _map_lines(spec.linux.gid_mappings)
                )
            if spec.linux.namespace("user") is not None:
                _give_fifo_to_container_root(c.fifo, child)
            chan.send("setup-done")
            kind, payload = chan.recv()
        if kind == "pid":
            init_pid = int(payload)
            # Init builds the rootfs meanwhile, and waits for "cgroup-done" only once it is built, before
            # its cgroup namespace: the move's RCU grace period overlaps with that work.
            try:
                if failed is not None:
                    raise failed
                if record is None:
                    record = cgroups.prepare(c.id, spec.linux, remember=remember)
                # Init gets our CPUs back (prespawn.apart) before the move: a v1 cpuset sets them on attach (runc's).
                _restore_cpus(init_pid, cpus)
                if not record:  # no cgroup (rootless without one): nothing was remembered nor sent
                    try:
                        chan.send("cgroup-dirs", [])
                    except BrokenPipeError:
                        pass
                cgroups.join(record, init_pid)
            finally:
                cgroup_warmup.stop()
            try:
                chan.send("cgroup-done")
            except BrokenPipeError:
                pass  # init failed while we worked: its error message is waiting to be read
            # state.json's text, made while init finishes the container
            c.pid, c.start_time = init_pid, container.process_start_time(init_pid) or 0
            state = c.state_text()
            kind, payload = chan.recv()
        while kind == "hooks":
            _host_hooks(spec, c)
            chan.send("hooks-done")
            kind, payload = chan.recv()
        if kind == "error":
            raise HutchError(str(payload))
        if kind != "ready":
            raise HutchError("create: the container's init exited before it was ready")
        return init_pid, state
    except BaseException:
        if init_pid:
            _kill_quietly(init_pid)
        if not direct:
            # Stage 1 may be blocked waiting for us (setup-done, hooks-done): the _reap below would wait
            # forever. It is our child, not yet reaped, so its pid is still its own.
            _kill_quietly(child)
        raise
    finally:
        if not direct:
            _reap(child)


def _restore_cpus(init_pid: int, cpus: set[int]) -> None:
    if len(cpus) < 2:
        return
    try:
        os.sched_setaffinity(init_pid, cpus)
    except OSError as e:
        raise HostError(f"cannot give the container's init its CPUs back: {e.strerror}") from None


def _host_hooks(spec: Spec, c: Container) -> None:
    """prestart and createRuntime hooks run in the runtime's namespaces, after the mounts, before pivot_root."""
    from hutch import OCI_VERSION
    from hutch.jsonfast import dumps
    from hutch.runtime import hooks

    doc = c.state_doc(OCI_VERSION)
    # Not saved yet, the container looks stopped to state_doc(): say what it is.
    doc["status"] = "creating"
    doc["pid"] = c.pid
    state = dumps(doc)
    hooks.run_hooks("prestart", spec.hooks.prestart, state)
    hooks.run_hooks("createRuntime", spec.hooks.create_runtime, state)


def _stage1(ctx: InitContext) -> None:
    """Enter the user namespace, then the others, and fork init; never returns."""
    from hutch.runtime import init

    chan = ctx.channel
    try:
        close_inherited_fds(3 + ctx.preserve_fds)
        # Import what init needs while we are still the host's root: in a new user namespace the host's
        # Python library may be unreadable (a Python under /root, mode 700).
        init.preload(ctx.spec)
        linux = ctx.spec.linux
        assert linux is not None
        joined = namespaces.open_paths(linux.namespaces)
        if linux.namespace("user") is not None:
            # Idmapped mounts of host filesystems can only be made from the host's user namespace.
            from hutch.runtime import rootfs

            ctx.trees = rootfs.detached_binds(ctx.spec, ctx.bundle)
        if joined and joined[0][0] == "user":
            namespaces.join(*joined.pop(0))
        elif linux.namespace("user") is not None:
            namespaces.unshare_user()
        if linux.namespace("user") is not None:
            chan.send("setup")  # the runtime writes our maps and gives the exec fifo to our root
            chan.expect("setup-done", "user namespace setup")
            _become_ns_root()
        _enter_namespaces(ctx, joined, new_pid=True)
        if linux.time_offsets:
            namespaces.write_time_offsets({k: (v.secs, v.nanosecs) for k, v in linux.time_offsets.items()})
        pid = os.fork()
        if pid == 0:
            init.run(ctx)
            os._exit(1)
        chan.send("pid", pid)
        os._exit(0)
    except BaseException as e:
        try:
            chan.send("error", str(e) if isinstance(e, HutchError) else f"container setup: {e}")
        finally:  # a forked child must never unwind into the runtime's own code
            os._exit(1)


def _init_directly(ctx: InitContext) -> None:
    """Init forked by the runtime itself, already in its PID namespace: enter the others, then build the
    container (init.run); never returns."""
    from hutch.runtime import init

    try:
        close_inherited_fds(3 + ctx.preserve_fds)
        init.preload(ctx.spec)
        assert ctx.spec.linux is not None
        joined = namespaces.open_paths([n for n in ctx.spec.linux.namespaces if n.type != "pid"])
        _enter_namespaces(ctx, joined, new_pid=False)
    except BaseException as e:
        try:
            ctx.channel.send("error", str(e) if isinstance(e, HutchError) else f"container setup: {e}")
        finally:
            os._exit(1)
    init.run(ctx)


def _enter_namespaces(ctx: InitContext, joined: list[tuple[str, int]], new_pid: bool) -> None:
    """Join the namespaces given by path (opened, in join order) and make the new ones, the PID namespace if
    `new_pid`; never the user namespace (stage 1's first step) nor the cgroup namespace, which init makes or
    joins once the runtime has moved it into its cgroups."""
    assert ctx.spec.linux is not None
    for kind, fd in joined:
        if kind == "cgroup":  # joined by init once in its cgroups, whose host paths it reads first
            ctx.cgroupns_fd = fd
            continue
        namespaces.join(kind, fd)
    skip = ("user", "cgroup") if new_pid else ("user", "cgroup", "pid")
    flags = namespaces.new_flags(ctx.spec.linux.namespaces, skip=skip)
    if flags:
        namespaces.unshare(flags)


def _become_ns_root() -> None:
    """After the maps are written, take uid and gid 0 of the new user namespace, where they are mapped."""
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError as e:
        if e.errno != 22:  # EINVAL: 0 is not mapped; stay as we are
            raise


def close_inherited_fds(first: int) -> None:
    """Close every fd from `first` on that our caller let us inherit (one without close-on-exec).

    Init waits in the container until `start`, and an exec'd process may look at it: nothing of the host's
    may be open in it but stdio and the preserved fds. Our own fds are all close-on-exec and go at execve;
    the cgroup warm-up's goes now, as it names a host cgroup's cgroup.procs, and the launchers' file of
    compiled modules (modcache; looked up, not imported: a caller may run without it).
    """
    cgroup_warmup.forget()
    cache = sys.modules.get("hutch.modcache")
    if cache is not None:
        cache.drop()
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                if os.get_inheritable(fd):
                    os.close(fd)
            except OSError:  # the directory listing's own fd, closed by now
                pass


def _give_fifo_to_container_root(fifo: str, stage1: int) -> None:
    """In a user namespace init is not the host's root: it can open the exec fifo only if it owns it, as
    runc arranges. The owner is the host id of the namespace's root, read from its maps (new or joined)."""
    ids = []
    for name in ("uid_map", "gid_map"):
        host = -1
        with open(f"/proc/{stage1}/{name}") as f:
            for line in f:
                inside, outside, size = (int(v) for v in line.split())
                if inside == 0 and size > 0:
                    host = outside
        ids.append(host)
    os.chown(fifo, ids[0], ids[1])


def _map_lines(maps: list[IDMapping]) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)


def _destroy_cgroup(c: Container) -> None:
    """After a failed create: wait for init to be gone (it was killed), then remove its cgroup."""
    if not c.cgroup:
        return
    from hutch.runtime import cgroups

    for _ in range(2000):
        if not cgroups.pids(c.cgroup):
            break
        time.sleep(0.005)
    cgroups.destroy(c.cgroup)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def write_pid_file(path: str, pid: int) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.rename(tmp, path)
    except OSError as e:
        raise HutchError(f"--pid-file {path}: {e.strerror}") from None


def _now() -> str:
    """RFC 3339 with nanoseconds, in UTC, as runc writes `created`."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"
