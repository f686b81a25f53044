"""A container's bridge networks around the runtime (see setup): the named netns, CNI ADD on each network of
the plan (in a forked helper while the runtime creates the container, or at once), DNS names, the /etc files
with the addresses; and at finish the DEL of each in reverse, the netns and an idle bridge. Only a bridge plan
imports this module: `--network none` and its kind never get here.
"""

from __future__ import annotations

import contextlib
import os
import sys

from hutch.engine.network import locks, netns, plan
from hutch.engine.network.setup import write_files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


@contextlib.contextmanager
def bridge_lock(saved: dict[str, Any]) -> Iterator[None]:
    """Host-wide, per bridge: an ADD never races the removal of the idle bridge it attaches to. The default
    network's bridge is never removed, so its containers do not queue behind each other's plugins."""
    from hutch.engine.network import config

    if saved["conf"]["name"] == config.DEFAULT_NETWORK:
        yield
        return
    with locks.held(os.path.join(locks.LOCK_DIR, saved["bridge"])):
        yield


def setup(
    engine: Engine, rec: Record, userdata: str, doc: dict[str, Any], background: bool
) -> tuple[int, int] | None:
    """setup's bridge part: every network of the plan attached. With `background` the plugins run in a
    forked helper; returns its (pid, pipe) for `collect`."""
    if doc.get("active"):
        teardown_plan(rec.id, userdata, doc)  # what a crashed run left
    doc["active"] = True
    plan.save(userdata, doc)
    path = netns.create(rec.id)
    for i, entry in enumerate(doc["networks"]):
        record(engine, doc, entry, first=i == 0)
    plan.save(userdata, doc)  # before ADD: a crash during it still gets its DEL
    if background:
        return _fork_adds(rec.id, doc, path)
    for entry, result in zip(doc["networks"], _add_all(rec.id, doc, path), strict=True):
        added(rec.id, userdata, doc, entry, result)
    write_etc(engine, userdata, doc)
    return None


def _fork_adds(container_id: str, doc: dict[str, Any], path: str) -> tuple[int, int]:
    from hutch import jsonfast
    from hutch.engine.network import cni  # noqa: F401  (imported before fork: the helper runs the plugins)

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            results = _add_all(container_id, doc, path)
            out = jsonfast.dumps({"results": results})
        except BaseException as e:
            out = jsonfast.dumps({"error": str(e) or type(e).__name__})
        with contextlib.suppress(OSError):
            os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    return pid, r


def collect(engine: Engine, rec: Record, pending: tuple[int, int]) -> None:
    """The helper's results recorded, the names served, the /etc files written; raises the first plugin's
    error."""
    from hutch import jsonfast
    from hutch.engine.network import cni

    pid, r = pending
    with os.fdopen(r, "rb") as f:
        report = f.read()
    os.waitpid(pid, 0)
    try:
        doc_in = jsonfast.loads(report.decode(errors="replace") or "{}")
    except jsonfast.DecodeError:
        doc_in = {}
    if "results" not in doc_in:
        raise cni.PluginError(str(doc_in.get("error") or "network setup: its helper died"))
    userdata = engine.path(rec, "userdata")
    doc = plan.load(userdata) or {}
    for entry, result in zip(doc["networks"], doc_in["results"], strict=True):
        added(rec.id, userdata, doc, entry, result)
    write_etc(engine, userdata, doc)
    userdata = engine.path(rec, "userdata")
    doc = plan.load(userdata) or {}
    for entry, result in zip(doc["networks"], doc_in["results"], strict=True):
        added(rec.id, userdata, doc, entry, result)
    write_etc(engine, userdata, doc)


def _runtime(doc: dict[str, Any], entry: dict[str, Any], first: bool) -> dict[str, Any]:
    runtime: dict[str, Any] = {}
    if first and doc["ports"]:
        runtime["portMappings"] = doc["ports"]
    if entry.get("ip"):
        runtime["ips"] = [entry["ip"]]
    if entry.get("mac"):
        runtime["mac"] = entry["mac"]
    return runtime


def record(engine: Engine, doc: dict[str, Any], entry: dict[str, Any], first: bool) -> None:
    """The conflist and runtime config the network's ADD (and later its DEL) get, into the plan."""
    from hutch.engine.network import config

    net = config.load(engine.root, entry["name"])
    runtime = _runtime(doc, entry, first)
    conf = config.conflist(net)
    # portmap and tuning act only on their capabilities: without them, two plugin runs saved each way.
    unused = {"portmap": "portMappings", "tuning": "mac"}
    conf["plugins"] = [p for p in conf["plugins"] if p["type"] not in unused or unused[p["type"]] in runtime]
    rules = {"subnets": [x.subnet for x in net.subnets], "internal": net.internal}
    doc["confs"][net.name] = {
        "conf": conf,
        "runtime": runtime,
        "bridge": net.bridge,
        "dns": net.dns,
        "rules": rules,
    }


def add(container_id: str, doc: dict[str, Any], entry: dict[str, Any], path: str) -> dict[str, Any]:
    from hutch.engine.network import cni

    saved = doc["confs"][entry["name"]]
    # The rules' check (an iptables-save) runs beside the plugins: the container starts only after both.
    from hutch.engine.network import firewall

    check = firewall.check_saved(saved)
    try:
        with bridge_lock(saved):
            result = cni.add(
                saved["conf"],
                container_id=container_id,
                netns=path,
                ifname=entry["ifname"],
                runtime=saved["runtime"],
            )
    except BaseException:
        if check is not None:
            check.reap()  # the plugin's error is the one to report
        raise
    if check is not None:
        check.finish()
    return result


def _add_all(container_id: str, doc: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """ADD on every network of the plan; several at once (each has its own bridge and interface)."""
    entries = doc["networks"]
    if len(entries) == 1:
        return [add(container_id, doc, entries[0], path)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(entries)) as pool:
        futures = [pool.submit(add, container_id, doc, e, path) for e in entries]
        return [f.result() for f in futures]


def added(
    container_id: str, userdata: str, doc: dict[str, Any], entry: dict[str, Any], result: dict[str, Any]
) -> None:
    doc["results"][entry["name"]] = result
    plan.save(userdata, doc)
    if doc["confs"][entry["name"]].get("dns"):
        from hutch.engine.network import dns

        names = [doc["name"], container_id[:12], *entry.get("aliases", [])]
        gateways = gateways_of(result)
        dns.add(doc["confs"][entry["name"]]["bridge"], gateways, container_id, addresses_of(result), names)
        v4 = [g for g in gateways if ":" not in g]
        if v4 and not dns.wait_answering(netns.path(container_id), v4[0], doc["name"]):
            sys.stderr.write(f"WARN: aardvark-dns on {v4[0]} does not answer {doc['name']} yet\n")


def addresses_of(result: dict[str, Any]) -> list[str]:
    return [str(ip["address"]).split("/")[0] for ip in result.get("ips", []) if "address" in ip]


def gateways_of(result: dict[str, Any]) -> list[str]:
    return [str(ip["gateway"]) for ip in result.get("ips", []) if ip.get("gateway")]


def write_etc(engine: Engine, userdata: str, doc: dict[str, Any]) -> None:
    """/etc/hosts and resolv.conf with the addresses the networks gave."""
    addresses: list[str] = []
    gateway = ""
    dns_servers: list[str] = []
    for entry in doc["networks"]:
        result = doc["results"].get(entry["name"])
        if result is None:
            continue
        addresses += addresses_of(result)
        gateway = gateway or next(iter(gateways_of(result)), "")
        if doc["confs"].get(entry["name"], {}).get("dns"):
            dns_servers += [g for g in gateways_of(result) if g not in dns_servers]
    write_files(userdata, doc, addresses, gateway, dns_servers)


def teardown_plan(container_id: str, userdata: str, doc: dict[str, Any]) -> None:
    errors: list[str] = []
    if any(c.get("dns") for c in doc["confs"].values()):
        from hutch.engine.network import dns

        dns.remove(container_id)
    path = netns.path(container_id)
    path = path if os.path.exists(path) else ""
    if path and _leave_to_kernel(container_id, doc):
        netns.remove(container_id)
        path = ""  # DEL without a netns: the plugins free the lease (and portmap its DNAT), no interface
    for entry in reversed(doc["networks"]):
        errors += detach(container_id, doc, entry, path)
    netns.remove(container_id)
    doc["active"] = False
    doc["results"] = {}
    doc["confs"] = {}
    plan.save(userdata, doc)
    for e in errors:  # the container is gone either way: say what could not be undone
        sys.stderr.write(f"WARN: teardown of container {container_id[:12]}: {e}\n")


def _leave_to_kernel(container_id: str, doc: dict[str, Any]) -> bool:
    """Whether the namespace may take the container's interfaces with it: the kernel deletes them when
    its last reference goes (~15-40 ms later, off our path) where the bridge plugin's DEL waits ~20 ms
    for each. Not while a process still lives in it, nor for a plan saved before the per-network rules
    (that bridge plugin tears down its masquerade chain only with the interface in hand)."""
    for saved in doc["confs"].values():
        bridge: dict[str, Any] = next((p for p in saved["conf"]["plugins"] if p["type"] == "bridge"), {})
        if bridge.get("ipMasq") or saved.get("rules") is None:
            return False
    return not netns.in_use(container_id)


def detach(container_id: str, doc: dict[str, Any], entry: dict[str, Any], path: str) -> list[str]:
    from hutch.engine.network import cni

    saved = doc["confs"].get(entry["name"])
    if saved is None:
        return []
    with bridge_lock(saved):
        errors = cni.delete(
            saved["conf"],
            doc["results"].get(entry["name"]),
            container_id=container_id,
            netns=path,
            ifname=entry["ifname"],
            runtime=saved["runtime"],
        )
        remove_idle_bridge(saved["conf"]["name"], saved["bridge"])
    return errors


def remove_idle_bridge(name: str, bridge: str) -> None:
    """A user network's bridge with no lease left goes (podman's netavark does the same), so no interface
    outlives the last container; its firewall chains stay with the network (network rm takes them). The
    default network's stays, as podman's cni-podman0 does: deleting a bridge waits for the kernel (~100 ms)
    on every `run --rm`. The caller holds the bridge's lock."""
    from hutch.engine.network import config

    if name == config.DEFAULT_NETWORK:
        return
    import ipaddress

    from hutch.engine.network import spawn

    try:
        leases = os.listdir(os.path.join(config.IPAM_DIR, name))
    except FileNotFoundError:
        leases = []
    for lease in leases:
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(lease)
            return
    if os.path.exists(f"/sys/class/net/{bridge}"):
        with contextlib.suppress(OSError):
            spawn.run(["ip", "link", "delete", bridge, "type", "bridge"])
