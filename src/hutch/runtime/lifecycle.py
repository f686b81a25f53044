"""The runtime's lifecycle operations on a created container: start, state, kill, delete, list.

`state` and `list` are called often by podman and containerd and need neither the config parser nor select:
those are imported by the operations that use them.
"""

from __future__ import annotations

import os
import time

from hutch import OCI_VERSION
from hutch.errors import HutchError, NotFoundError, StateError
from hutch.runtime import container
from hutch.runtime.container import Container

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.oci.config import Spec


def parse_signal(text: str) -> int:
    """A signal given as a number, `KILL` or `SIGKILL`; 0 (as runc takes it) only checks the init exists."""
    from hutch.linux import signals

    if text.isdigit():
        num = int(text)
        if 0 <= num <= signals.SIGRTMAX:
            return num
    else:
        found = signals.number(text)
        if found is not None:
            return found
    raise HutchError(f"unknown signal {text!r}")


def spec_of(c: Container) -> Spec:
    from hutch.oci.config import parse

    return parse(c.config, f"{c.dir}/state.json: config")


def start(c: Container) -> None:
    """Release init from the exec fifo; it then execs the user process."""
    status = c.status()
    if status != "created":
        raise StateError(f"cannot start container {c.id}: it is {status}, not created")
    import select

    try:
        fd = os.open(c.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StateError(f"cannot start container {c.id}: it was already started") from None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if poller.poll(100) and os.read(fd, 1):
                break
            if not c.is_alive():
                raise StateError(f"cannot start container {c.id}: its init exited before start")
    finally:
        os.close(fd)
    os.unlink(c.fifo)
    if _has_hooks(c, "poststart"):
        _run_hooks("poststart", spec_of(c), c, fatal=False)


def _has_hooks(c: Container, kind: str) -> bool:
    """Whether the config (parsed at create) has hooks of `kind`: most have none, and start and delete then
    need not import and run the config parser."""
    hooks = c.config.get("hooks")
    return isinstance(hooks, dict) and bool(hooks.get(kind))


def _run_hooks(kind: str, spec: Spec, c: Container, fatal: bool) -> None:
    from hutch.jsonfast import dumps
    from hutch.runtime import hooks

    hook_list = spec.hooks.poststart if kind == "poststart" else spec.hooks.poststop
    hooks.run_hooks(kind, hook_list, dumps(c.state_doc(OCI_VERSION)), None if fatal else warn)


def warn(message: str) -> None:
    from hutch.runtime import log

    log.warning(message)


def kill(c: Container, sig: int, all_processes: bool = False) -> None:
    status = c.status()
    if status == "stopped":
        raise StateError(f"cannot kill container {c.id}: it is not running")
    pids = [p for p in (container_pids(c) if all_processes else [c.pid]) if p > 0]  # kill(0) is our group
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def container_pids(c: Container) -> list[int]:
    """Every process in the container: those in its cgroup, or sharing init's PID namespace."""
    from hutch.runtime import cgroups

    in_cgroup = cgroups.pids(c.cgroup)
    if in_cgroup:
        return in_cgroup
    try:
        ns = os.readlink(f"/proc/{c.pid}/ns/pid")
    except OSError:
        return []
    spec = spec_of(c)
    if spec.linux is None or spec.linux.namespace("pid") is None:
        return [c.pid]
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                    out.append(int(entry))
            except OSError:
                pass
    return out


def delete(c: Container, force: bool = False) -> None:
    """Remove a stopped or created container; `force` kills a running one first."""
    status = c.status()
    if status in ("running", "paused") and not force:
        raise StateError(f"cannot delete container {c.id} that is not stopped: {status}")
    if status != "stopped":
        for pid in container_pids(c) or ([c.pid] if c.pid > 0 else []):  # never kill(0): our own group
            try:
                os.kill(pid, 9)  # SIGKILL
            except ProcessLookupError:
                pass
        if status == "paused":
            from hutch.runtime.cgroups import freezer

            freezer.resume(c.cgroup)  # frozen processes die only once thawed
        _wait_gone(c)
    from hutch.runtime import cgroups

    cgroups.destroy(c.cgroup)
    if _has_hooks(c, "poststop"):
        _run_hooks("poststop", spec_of(c), c, fatal=False)
    container.remove_state(c.dir)


def _wait_gone(c: Container, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while c.is_alive():
        try:  # when we are its parent or subreaper, reap it
            os.waitpid(c.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if time.monotonic() > deadline:
            raise HutchError(f"container {c.id}: init {c.pid} did not die after SIGKILL")
        time.sleep(0.005)


def delete_leftover(root: str, container_id: str) -> None:
    """`delete --force` of a state dir that a killed `create` left without state.json: its cgroups are in
    its creating record (Container.save_creating) once a process may have joined them; before, it may have
    made them without a record."""
    container.validate_id(container_id)
    path = os.path.join(root, container_id)
    if not os.path.isdir(path):
        raise NotFoundError(f"container {container_id!r} does not exist")
    c = container.load_creating(root, container_id)
    if c is not None:
        delete(c, force=True)  # kills what is left in its cgroups (init), removes them, runs poststop hooks
        return
    from hutch.runtime import cgroups

    cgroups.remove_unrecorded(container_id)
    container.remove_state(path)


def state(c: Container) -> dict[str, object]:
    return c.state_doc(OCI_VERSION)


def list_all(root: str) -> list[Container]:
    out = []
    for cid in container.list_ids(root):
        try:
            out.append(container.load(root, cid))
        except HutchError:
            continue
    return out
