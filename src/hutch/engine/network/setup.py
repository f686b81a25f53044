"""A container's networking around the runtime: `prepare` at create (the plan, the /etc files), `setup`
before the runtime's create (the named netns, CNI ADD on each network, DNS names, the /etc files with the
addresses), `teardown` at finish (DNS names, CNI DEL in reverse, the netns, an idle bridge). Every step is
recorded in the plan before it is taken, so teardown after a crash undoes exactly what was done; it is
idempotent, which lets every finish and `rm -f` call it.
"""

from __future__ import annotations

import os

from hutch.engine.network import etcfiles, netns, plan
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.engine.spec import Options
    from hutch.oci.image import ContainerConfig


def prepare(
    engine: Engine,
    container_id: str,
    name: str,
    hostname: str,
    userdata: str,
    opts: Options,
    image: ContainerConfig,
) -> None:
    """At create: check the network flags, keep the plan, write /etc/hosts and resolv.conf (no address yet)."""
    net = getattr(opts, "net", None) or plan.NetOptions()
    pod = ""
    if net.pod:
        from hutch.engine import pods

        pod = pods.join(engine, net.pod, opts)  # opts now names the infra container's namespaces
    exposed = list(image.exposed_ports)

    def new_plan() -> dict[str, Any]:
        doc = plan.build(engine.root, container_id, name, hostname, opts.network, net, exposed)
        doc["pod"] = pod
        if doc["mode"] == "container":
            from hutch.engine.network import joined

            doc["target"], doc["path"] = joined.container_netns(engine, doc["path"])
        plan.save(userdata, doc)
        return doc

    if plan.mode_of(opts.network) == "bridge":
        from hutch.engine.network import locks

        with locks.networks(engine.root, shared=True):  # network rm waits until the plan names its networks
            doc = new_plan()
    else:
        doc = new_plan()
    write_files(userdata, doc, [], "", [])
    if doc.get("target"):
        from hutch.engine.network import joined

        joined.share_etc(engine, doc["target"], userdata, doc)


def write_files(
    userdata: str, doc: dict[str, Any], addresses: list[str], gateway: str, dns_servers: list[str]
) -> None:
    """/etc/hosts and resolv.conf of the plan, with the addresses the networks gave (none yet at create)."""
    etcfiles.write(userdata, "hosts", etcfiles.hosts(doc, addresses, gateway))
    etcfiles.write(userdata, "resolv.conf", etcfiles.resolv_conf(doc, dns_servers))


def setup(engine: Engine, rec: Record, background: bool = False) -> None:
    """Before the runtime's create: the netns the spec names, and every network of the plan attached. With
    `background` the plugins run in a forked helper while the runtime creates the container; `ready`
    collects them (before start)."""
    userdata = engine.path(rec, "userdata")
    doc = plan.load(userdata)
    if doc is not None and doc.get("pod"):
        from hutch.engine import pods

        pods.before_start(engine, rec, doc["pod"])
    if doc is not None and doc.get("target"):
        from hutch.engine.network import joined

        joined.share_etc(engine, doc["target"], userdata, doc)  # as the other container's files are now
    if doc is None or doc["mode"] != "bridge":
        return
    from hutch.engine.network import attach

    pending = attach.setup(engine, rec, userdata, doc, background)
    if pending is not None:
        _pending[rec.id] = pending


# Container id -> (helper pid, the pipe its results come through), between setup and ready.
_pending: dict[str, tuple[int, int]] = {}


def ready(engine: Engine, rec: Record) -> None:
    """The background ADDs of setup: their results recorded, the names served, the /etc files written.
    Raises the first plugin's error. A no-op when nothing is pending."""
    pending = _pending.pop(rec.id, None)
    if pending is None:
        return
    from hutch.engine.network import attach

    attach.collect(engine, rec, pending)


def teardown(engine: Engine, rec: Record) -> None:
    """At finish: undo setup (idempotent; a no-op for a container that has nothing set up)."""
    if rec.id in _pending:  # a launch that failed before `ready`: let the helper's ADDs finish first
        try:
            ready(engine, rec)
        except HutchError:
            pass
    userdata = engine.path(rec, "userdata")
    doc = plan.load(userdata)
    if doc is None or not doc.get("active"):
        if os.path.exists(netns.path(rec.id)):
            netns.remove(rec.id)
        return
    from hutch.engine.network import attach

    attach.teardown_plan(rec.id, userdata, doc)


# The cli's entry points of what moved out (hutch.engine.network.connect, ports).
def before_launch(
    engine: Engine, rec: Record, restore: str | None, background: bool = False, any_runtime: bool = False
) -> None:
    """setup, and on failure what a failed launch does: the container finished (removed, or with `restore`
    put back in that state), which tears down whatever setup had done. `background`: the caller calls
    `ready` before the runtime starts the container (a foreground run does only with the in-process
    runtime; a detached one, under conmon, with any: `any_runtime`)."""
    try:
        setup(engine, rec, background and (any_runtime or _in_process(rec)))
    except BaseException:
        from hutch.engine import monitor

        monitor.failed_launch(engine, rec.id, restore)
        raise


def _in_process(rec: Record) -> bool:
    """Whether the runtime library runs the container in this process (then launch_container calls `ready`
    between create and start); another runtime's CLI gets its networks before its create."""
    from hutch import jsonfast

    try:
        cfg = jsonfast.loads(rec.config or "{}")
    except jsonfast.DecodeError:
        cfg = {}
    return not isinstance(cfg, dict) or cfg.get("OCIRuntime") in (None, "", "hutch")
