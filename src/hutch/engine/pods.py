"""Pods: containers that share an infra container's namespaces (cgroup, ipc, net and uts by default, as
podman's `--share`; pid on request), so they talk over localhost and publish their ports on the infra
container. The infra container runs catatonit in pause mode from `localhost/hutch-pause`, an image built here
from Debian's static catatonit the first time a pod needs it; `--infra=false` pods share no namespace.

Every container of a pod (the infra too) has its cgroup below the pod's (hutch.engine.podcgroup), which
holds the pod's limits.

A pod is ROOT/pods/ID.json (id, name, created, hostname, infra id, shared namespaces, labels, cgroup); its
members are the containers whose network plan names it. Changes happen under ROOT/pods.lock.
"""

from __future__ import annotations

import os
import time

from hutch.engine.flock import Held
from hutch.errors import ConfigError, ExistsError, HutchError, NotFoundError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.engine.network.plan import NetOptions

PAUSE_IMAGE = "localhost/hutch-pause:latest"
CATATONIT = "/usr/bin/catatonit"
SHAREABLE = ("cgroup", "ipc", "net", "pid", "uts")
DEFAULT_SHARE = ("cgroup", "ipc", "net", "uts")  # podman's: pid only when asked
# The namespaces a member joins by the infra's /proc/PID/ns path (net goes through the netns plan).
_BY_PATH = {"ipc": "ipc", "uts": "uts", "pid": "pid", "cgroup": "cgroupns"}


def _dir(engine: Engine) -> str:
    return os.path.join(engine.root, "pods")


def _locked(engine: Engine) -> Held:
    return Held(os.path.join(engine.root, "pods.lock"))


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
    raise NotFoundError(f"no pod with name or ID {name_or_id} found: no such pod")


class InfraContainerError(HutchError):
    """rm of a pod's infra container, which goes only with its pod (podman exits 125)."""


def refuse_infra(engine: Engine, name_or_id: str) -> None:
    """`rm` (even -f) refuses a pod's infra container, as podman does: its members live in its namespaces."""
    rec = engine.find(name_or_id)
    pod = next((p for p in all_pods(engine) if p["InfraContainerID"] == rec.id), None)
    if pod is not None:
        raise InfraContainerError(
            f"container {rec.id} is the infra container of pod {pod['Id']} and cannot be removed without "
            "removing the pod"
        )


def _pause_image(engine: Engine) -> None:
    """localhost/hutch-pause: catatonit alone, made once per storage."""
    import io
    import tarfile

    storage = engine.storage()
    try:
        storage.find(PAUSE_IMAGE)
        return
    except NotFoundError:
        pass
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


def parse_share(values: list[str], infra: bool) -> list[str]:
    """--share as podman reads it: a list (`net,ipc`), `+pid` added to the default, `none` or "" for none."""
    text = ",".join(values)
    if not values:
        return list(DEFAULT_SHARE) if infra else []
    if text.startswith("+"):
        chosen = [*DEFAULT_SHARE, *text[1:].split(",")]
    else:
        chosen = [] if text.strip() in ("", "none") else text.split(",")
    out: list[str] = []
    for ns in chosen:
        ns = ns.strip()
        if ns not in SHAREABLE:
            raise ConfigError(
                f"--share {text!r}: {ns!r} is not a namespace pods share ({', '.join(SHAREABLE)})"
            )
        if ns not in out:
            out.append(ns)
    if out and not infra:
        raise ConfigError(
            f"--share {text!r}: cannot share namespaces without an infra container (--infra=false)"
        )
    return sorted(out)


def create(
    engine: Engine,
    name: str,
    *,
    share: list[str],
    labels: dict[str, str],
    network: str,
    net: NetOptions,
    infra: bool = True,
    hostname: str = "",
    cgroup_parent: str = "",
    share_parent: bool = True,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """podman pod create: the pod, its cgroup (with the pod's limits) and its infra container (created, not
    started). Nothing is left on failure."""
    import secrets

    from hutch.engine import podcgroup
    from hutch.engine.spec import Options

    for ns in share:
        if ns not in SHAREABLE:
            raise ConfigError(f"--share {ns!r}: hutch pods share {', '.join(SHAREABLE)}")
    if not infra and (net.publish or net.add_hosts or net.dns or network not in ("", "bridge")):
        raise ConfigError("-p, --network, --add-host and --dns need an infra container (not --infra=false)")
    if "net" not in share and (net.publish or network not in ("", "bridge")):
        raise ConfigError("-p and --network need the pod to share its network namespace (--share net)")
    if hostname and "uts" not in share:
        raise ConfigError(
            "--hostname: the pod's hostname needs the pod to share its UTS namespace (--share uts)"
        )
    if name:
        from hutch.engine.containers import _check_name

        _check_name(name)  # podman's rule for pods' names as for containers'
    pod_id = secrets.token_hex(32)
    with _locked(engine):
        if name and any(p["Name"] == name for p in all_pods(engine)):
            raise ExistsError(f"{name}: the pod name is already in use: pod already exists")
        if name and name in engine.db.names():  # one name space for containers and pods, as podman's
            raise ExistsError(f'name "{name}" is in use: container already exists')
        name = name or f"pod_{pod_id[:8]}"
        parent = "/" + cgroup_parent.strip("/") if cgroup_parent else ""
        cgroup = podcgroup.path_of(parent, pod_id)
        made = podcgroup.create(cgroup, resources or {})
        shared_parents = 0 if parent else 2  # hutch/pods and hutch go with the last pod using them
        pod: dict[str, Any] = {
            "Id": pod_id,
            "Name": name,
            "Created": time.time(),
            "Hostname": hostname or name,
            "InfraContainerID": "",
            "SharedNamespaces": list(share),
            "Labels": dict(labels),
            "CgroupParent": parent or podcgroup.DEFAULT_PARENT,
            "CgroupPath": cgroup,
            "CgroupDirs": made,
            "SharedParents": shared_parents,
            "ShareParent": share_parent,
            "Resources": resources or {},
        }
        try:
            if infra:
                _pause_image(engine)
                opts = Options(network=network or "bridge", net=net, hostname=hostname or name)
                opts.cgroup_parent = cgroup
                pod["InfraContainerID"] = engine.create(
                    PAUSE_IMAGE, opts, name=f"{pod_id[:12]}-infra", pull="never"
                ).id
            _save(engine, pod)
        except BaseException:
            if pod["InfraContainerID"]:  # made before the record could be written: it goes too
                from hutch.engine import stopping

                try:
                    stopping.remove(engine, pod["InfraContainerID"], force=True)
                except HutchError:
                    pass
            podcgroup.remove(made, shared_parents)
            raise
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


def _start_infra(engine: Engine, pod: dict[str, Any]) -> Record | None:
    if not pod["InfraContainerID"]:
        return None
    infra = engine.find(pod["InfraContainerID"])
    if infra.state not in ("running", "paused"):
        rec, previous = engine.claim_start(infra.id)
        if previous is not None:
            engine.start_detached(rec, previous)
        infra = engine.find(infra.id)
    return infra


def join(engine: Engine, name_or_id: str, opts: Any) -> str:
    """`run --pod`: the infra container started if needed, and `opts` pointed at its namespaces and the pod's
    cgroup. `new:NAME` first creates the pod, with the container's ports. Returns the pod's id (kept in the
    member's network plan)."""
    new = name_or_id.startswith("new:")
    pod = _create_for(engine, name_or_id[4:], opts) if new else find(engine, name_or_id)
    if pod.get("ShareParent", True):
        opts.cgroup_parent = pod.get("CgroupPath", "")
    if not pod["InfraContainerID"]:
        return str(pod["Id"])
    share = pod["SharedNamespaces"]
    if "net" in share and opts.net is not None and (opts.net.publish or opts.net.publish_all):
        # Before the infra starts: a refused member leaves the pod as it was.
        raise ConfigError("-p: a pod's ports are published on its infra container (pod create -p)")
    infra = _start_infra(engine, pod)
    assert infra is not None
    if "net" in share:
        opts.network = f"container:{infra.id}"
    pid = _infra_pid(engine, infra.id)
    for ns, attr in _BY_PATH.items():
        if ns in share:
            setattr(opts, attr, f"ns:/proc/{pid}/ns/{ns}")
    return str(pod["Id"])


def _create_for(engine: Engine, name: str, opts: Any) -> dict[str, Any]:
    """`--pod new:NAME`: a pod with the default namespaces, the container's network and its ports (which
    move to the infra container, as podman moves them)."""
    from hutch.engine.network.plan import NetOptions

    if not name:
        raise ConfigError("--pod new:NAME: the pod's name is empty")
    net = opts.net or NetOptions()
    pod_net = NetOptions(publish=list(net.publish), add_hosts=list(net.add_hosts), dns=list(net.dns))
    network = opts.network if opts.network not in ("", "none") else "bridge"
    pod = create(engine, name, share=list(DEFAULT_SHARE), labels={}, network=network, net=pod_net)
    net.publish, net.add_hosts, net.dns = [], [], []
    net.pod = str(pod["Id"])  # made by this create: a create that fails after this removes it again
    opts.net = net
    return pod


def _infra_pid(engine: Engine, infra_id: str, timeout: float = 10.0) -> int:
    """The infra's init. Another command may be starting the infra right now (its claim in the db, its
    runtime state not written yet): then its init is waited for, as long as the db says it runs."""
    from hutch.engine.containers import LIVE
    from hutch.runtime import container

    deadline = time.monotonic() + timeout
    while True:
        try:
            c = container.load(engine.runtime_root, infra_id)
            if c.status() in ("created", "running", "paused"):
                return int(c.pid)
        except NotFoundError:
            pass
        if engine.db.get(infra_id).state not in LIVE or time.monotonic() > deadline:
            raise StateError(f"the pod's infra container {infra_id[:12]} is not running")
        time.sleep(0.01)


def containers(engine: Engine, pod: dict[str, Any]) -> list[Record]:
    """The infra container (if any) and the members."""
    from hutch.engine.db import NoSuchContainer

    out = []
    if pod["InfraContainerID"]:
        try:
            out.append(engine.find(pod["InfraContainerID"]))
        except NoSuchContainer:
            pass
    return out + members(engine, pod)


def start(engine: Engine, pod: dict[str, Any]) -> None:
    _start_infra(engine, pod)
    for rec in members(engine, pod):
        if rec.state not in ("running", "paused"):
            claimed, previous = engine.claim_start(rec.id)
            if previous is not None:
                engine.start_detached(claimed, previous)


def stop(engine: Engine, pod: dict[str, Any], timeout: int = 10) -> None:
    from hutch.engine import stopping

    for rec in members(engine, pod):
        stopping.stop(engine, rec.id, timeout)
    if pod["InfraContainerID"]:
        stopping.stop(engine, pod["InfraContainerID"], timeout)


def kill(engine: Engine, pod: dict[str, Any], sig: int) -> None:
    """podman pod kill: the signal to every live container of the pod, members first."""
    from hutch.engine import stopping
    from hutch.engine.containers import LIVE

    live = [r for r in containers(engine, pod) if r.state in LIVE]
    if not live:
        raise StateError(f"pod {pod['Id']}: no running containers to kill: container state improper")
    for rec in sorted(live, key=lambda r: r.id == pod["InfraContainerID"]):  # the infra last
        stopping.kill(engine, rec.id, sig)


def pause(engine: Engine, pod: dict[str, Any]) -> None:
    """podman pod pause: every running container of the pod frozen (the infra too)."""
    running = [r for r in containers(engine, pod) if r.state == "running"]
    if not running:
        raise StateError(f"pod {pod['Id']}: no running containers to pause: container state improper")
    for rec in running:
        engine.pause(rec.id)


def unpause(engine: Engine, pod: dict[str, Any]) -> None:
    """podman pod unpause: every paused container of the pod thawed."""
    paused = [r for r in containers(engine, pod) if r.state == "paused"]
    if not paused:
        raise StateError(f"pod {pod['Id']}: no paused containers to unpause: container state improper")
    for rec in paused:
        engine.unpause(rec.id)


def remove(engine: Engine, pod: dict[str, Any], force: bool = False) -> None:
    """podman pod rm: refused while containers of it run, unless forced. The check is under the pods lock,
    and without force each container is removed as `rm` does it, so a member started after the check is
    refused, not killed."""
    from hutch.engine import podcgroup, stopping
    from hutch.engine.db import NoSuchContainer

    with _locked(engine):
        running = [r for r in containers(engine, pod) if r.state in ("running", "paused")]  # the infra too
        if running and not force:
            raise StateError(
                f"pod {pod['Id']} has containers that are not ready to be removed: cannot remove container "
                f"{running[0].id} as it is running - running or paused containers cannot be removed without "
                "force: container state improper"
            )
        for rec in members(engine, pod):
            stopping.remove(engine, rec.id, force=force)
        if pod["InfraContainerID"]:
            try:
                stopping.remove(engine, pod["InfraContainerID"], force=force)
            except NoSuchContainer:
                pass
        podcgroup.remove(pod.get("CgroupDirs", []), pod.get("SharedParents", 0))
        try:
            os.unlink(os.path.join(_dir(engine), f"{pod['Id']}.json"))
        except FileNotFoundError:
            pass


def status(engine: Engine, pod: dict[str, Any]) -> str:
    """podman's pod status: Created, Running, Degraded (some run), Exited."""
    states = [r.state for r in containers(engine, pod)]
    running = sum(s in ("running", "paused") for s in states)
    if running and running == len(states):
        return "Running"
    if running:
        return "Degraded"
    if all(s == "created" for s in states):  # none at all too
        return "Created"
    return "Exited"


def before_start(engine: Engine, rec: Record, pod_id: str) -> None:
    """A member's start: the infra container running, and the member's config.json joining the infra's
    ipc, uts, pid and cgroup namespaces as they are now (an infra restarted since create has another pid)."""
    from hutch import jsonfast

    try:
        pod = find(engine, pod_id)
    except NotFoundError:
        raise StateError(f"container {rec.id[:12]}: its pod {pod_id[:12]} is gone") from None
    infra = _start_infra(engine, pod)
    if infra is None:
        return
    pid = _infra_pid(engine, infra.id)
    path = engine.path(rec, "userdata/config.json")
    with open(path) as f:
        doc = jsonfast.loads(f.read())
    for ns in doc.get("linux", {}).get("namespaces", []):
        if ns.get("type") in _BY_PATH and str(ns.get("path", "")).startswith("/proc/"):
            ns["path"] = f"/proc/{pid}/ns/{ns['type']}"
    if "uts" in pod["SharedNamespaces"]:  # the pod's hostname in HOSTNAME and /etc/hostname, as podman's
        _hostname(engine, rec, doc, pod.get("Hostname", pod["Name"]))
    with open(path + ".tmp", "w") as f:
        f.write(jsonfast.dumps(doc))
    os.rename(path + ".tmp", path)


def _hostname(engine: Engine, rec: Record, doc: dict[str, Any], name: str) -> None:
    process = doc.get("process") or {}
    env = process.get("env") or []
    process["env"] = [f"HOSTNAME={name}" if e.startswith("HOSTNAME=") else e for e in env]
    hostname = engine.path(rec, "userdata/hostname")
    if os.path.exists(hostname):
        with open(hostname + ".tmp", "w") as f:
            f.write(name + "\n")
        os.chmod(hostname + ".tmp", 0o644)
        os.rename(hostname + ".tmp", hostname)
