"""Pods: containers that share an infra container's namespaces (net, ipc and uts by default, as podman's
`--share`), so they talk over localhost and publish their ports on the infra container. The infra container
runs catatonit in pause mode from `localhost/hutch-pause`, an image built here from Debian's static
catatonit the first time a pod needs it.

A pod is ROOT/pods/ID.json (id, name, created, infra id, shared namespaces, labels); its members are the
containers whose network plan names it. Changes happen under ROOT/pods.lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

from hutch.errors import ConfigError, ExistsError, HutchError, NotFoundError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.engine.network.plan import NetOptions

PAUSE_IMAGE = "localhost/hutch-pause:latest"
CATATONIT = "/usr/bin/catatonit"
SHAREABLE = ("net", "ipc", "uts")
DEFAULT_SHARE = ("net", "ipc", "uts")


def _dir(engine: Engine) -> str:
    return os.path.join(engine.root, "pods")


@contextlib.contextmanager
def _locked(engine: Engine) -> Iterator[None]:
    fd = os.open(os.path.join(engine.root, "pods.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _save(engine: Engine, pod: dict[str, Any]) -> None:
    from hutch import jsonfast

    os.makedirs(_dir(engine), mode=0o700, exist_ok=True)
    path = os.path.join(_dir(engine), f"{pod['Id']}.json")
    with open(path + ".tmp", "w") as f:
        f.write(jsonfast.dumps(pod))
    os.rename(path + ".tmp", path)


def all_pods(engine: Engine) -> list[dict[str, Any]]:
    from hutch import jsonfast

    out = []
    try:
        names = sorted(os.listdir(_dir(engine)))
    except FileNotFoundError:
        return []
    for entry in names:
        if entry.endswith(".json"):
            with open(os.path.join(_dir(engine), entry)) as f:
                out.append(jsonfast.loads(f.read()))
    return sorted(out, key=lambda p: p["Created"])


def find(engine: Engine, name_or_id: str) -> dict[str, Any]:
    pods = all_pods(engine)
    for pod in pods:
        if pod["Name"] == name_or_id or pod["Id"] == name_or_id:
            return pod
    found = [p for p in pods if name_or_id and p["Id"].startswith(name_or_id)]
    if len(found) == 1:
        return found[0]
    raise NotFoundError(f"{name_or_id}: no pod with name or ID {name_or_id} found: no such pod")


def _pause_image(engine: Engine) -> None:
    """localhost/hutch-pause: catatonit alone, made once per storage."""
    import io
    import tarfile

    storage = engine.storage()
    with contextlib.suppress(NotFoundError):
        storage.find(PAUSE_IMAGE)
        return
    from hutch.image.importer import import_tarball

    if not os.access(CATATONIT, os.X_OK):
        raise HutchError(f"{CATATONIT}: not found (Debian's catatonit is the pods' infra process)")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("catatonit")
        with open(CATATONIT, "rb") as f:
            data = f.read()
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    raw.seek(0)
    import_tarball(
        raw, PAUSE_IMAGE, storage=storage, changes=['ENTRYPOINT ["/catatonit", "-P"]'], label="catatonit"
    )


def create(
    engine: Engine,
    name: str,
    *,
    share: list[str],
    labels: dict[str, str],
    network: str,
    net: NetOptions,
) -> dict[str, Any]:
    """podman pod create: the pod and its infra container (created, not started)."""
    import secrets

    from hutch.engine.spec import Options

    for ns in share:
        if ns not in SHAREABLE:
            raise ConfigError(f"--share {ns!r}: hutch pods share {', '.join(SHAREABLE)}")
    if "net" not in share and (net.publish or network not in ("", "bridge")):
        raise ConfigError("-p and --network need the pod to share its network namespace (--share net)")
    pod_id = secrets.token_hex(32)
    with _locked(engine):
        if name and any(p["Name"] == name for p in all_pods(engine)):
            raise ExistsError(f"{name}: the pod name is already in use: pod already exists")
        name = name or f"pod_{pod_id[:8]}"
        _pause_image(engine)
        infra = engine.create(
            PAUSE_IMAGE,
            Options(network=network or "bridge", net=net, hostname=name),
            name=f"{pod_id[:12]}-infra",
            pull="never",
        )
        pod = {
            "Id": pod_id,
            "Name": name,
            "Created": time.time(),
            "InfraContainerID": infra.id,
            "SharedNamespaces": list(share),
            "Labels": dict(labels),
        }
        _save(engine, pod)
    return pod


def members(engine: Engine, pod: dict[str, Any]) -> list[Record]:
    """The pod's containers but its infra, oldest first."""
    from hutch.engine.network import plan

    out = []
    for rec in engine.db.all():
        if rec.id == pod["InfraContainerID"]:
            continue
        doc = plan.load(engine.path(rec, "userdata")) or {}
        if doc.get("pod") == pod["Id"]:
            out.append(rec)
    return out


def _start_infra(engine: Engine, pod: dict[str, Any]) -> Record:
    infra = engine.find(pod["InfraContainerID"])
    if infra.state not in ("running", "paused"):
        rec, previous = engine.claim_start(infra.id)
        if previous is not None:
            engine.start_detached(rec, previous)
        infra = engine.find(infra.id)
    return infra


def join(engine: Engine, name_or_id: str, opts: Any) -> str:
    """`run --pod`: the infra container started if needed, and `opts` pointed at its namespaces. Returns the
    pod's id (kept in the member's network plan)."""
    from hutch.runtime import container

    pod = find(engine, name_or_id)
    infra = _start_infra(engine, pod)
    pid = container.load(engine.runtime_root, infra.id).pid
    share = pod["SharedNamespaces"]
    if "net" in share:
        opts.network = f"container:{infra.id}"
        if opts.net is not None and (opts.net.publish or opts.net.publish_all):
            raise ConfigError("-p: a pod's ports are published on its infra container (pod create -p)")
    if "ipc" in share:
        opts.ipc = f"ns:/proc/{pid}/ns/ipc"
    if "uts" in share:
        opts.uts = f"ns:/proc/{pid}/ns/uts"
    return str(pod["Id"])


def start(engine: Engine, pod: dict[str, Any]) -> None:
    _start_infra(engine, pod)
    for rec in members(engine, pod):
        if rec.state not in ("running", "paused"):
            claimed, previous = engine.claim_start(rec.id)
            if previous is not None:
                engine.start_detached(claimed, previous)


def stop(engine: Engine, pod: dict[str, Any], timeout: int = 10) -> None:
    for rec in members(engine, pod):
        engine.stop(rec.id, timeout)
    engine.stop(pod["InfraContainerID"], timeout)


def kill(engine: Engine, pod: dict[str, Any], sig: int) -> None:
    for rec in [*members(engine, pod), engine.find(pod["InfraContainerID"])]:
        if rec.state in ("running", "paused"):
            engine.kill(rec.id, sig)


def remove(engine: Engine, pod: dict[str, Any], force: bool = False) -> None:
    """podman pod rm: refused while containers of it run, unless forced."""
    from hutch.engine.db import NoSuchContainer

    running = [r for r in members(engine, pod) if r.state in ("running", "paused")]
    if running and not force:
        raise StateError(
            f"pod {pod['Id']} has containers that are not ready to be removed: cannot remove container "
            f"{running[0].id} as it is running - running or paused containers cannot be removed without "
            "force: container state improper"
        )
    with _locked(engine):
        for rec in members(engine, pod):
            engine.remove(rec.id, force=True)
        with contextlib.suppress(NoSuchContainer):
            engine.remove(pod["InfraContainerID"], force=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(_dir(engine), f"{pod['Id']}.json"))


def status(engine: Engine, pod: dict[str, Any]) -> str:
    """podman's pod status: Created, Running, Degraded (some run), Exited."""
    states = [r.state for r in members(engine, pod)]
    try:
        states.append(engine.find(pod["InfraContainerID"]).state)
    except HutchError:
        pass
    running = sum(s in ("running", "paused") for s in states)
    if running and running == len(states):
        return "Running"
    if running:
        return "Degraded"
    if all(s == "created" for s in states):
        return "Created"
    return "Exited"


def before_start(engine: Engine, rec: Record, pod_id: str) -> None:
    """A member's start: the infra container running, and the member's config.json joining the infra's
    ipc and uts namespaces as they are now (an infra restarted since create has another pid)."""
    from hutch import jsonfast
    from hutch.runtime import container

    try:
        pod = find(engine, pod_id)
    except NotFoundError:
        raise StateError(f"container {rec.id[:12]}: its pod {pod_id[:12]} is gone") from None
    infra = _start_infra(engine, pod)
    pid = container.load(engine.runtime_root, infra.id).pid
    path = engine.path(rec, "userdata/config.json")
    with open(path) as f:
        doc = jsonfast.loads(f.read())
    for ns in doc.get("linux", {}).get("namespaces", []):
        if ns.get("type") in ("ipc", "uts") and str(ns.get("path", "")).startswith("/proc/"):
            ns["path"] = f"/proc/{pid}/ns/{ns['type']}"
    with open(path + ".tmp", "w") as f:
        f.write(jsonfast.dumps(doc))
    os.rename(path + ".tmp", path)
