"""`network connect`, `disconnect` and `reload` on a container: its plan changed, and its bridge networks
attached, detached or made again at once while it runs (see attach)."""

from __future__ import annotations

import contextlib
import os

from hutch.engine.network import attach, bridgeplan, locks, netns, plan
from hutch.errors import ConfigError, HutchError, NotFoundError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


def _running_plan(engine: Engine, rec: Record) -> tuple[str, dict[str, Any], bool]:
    userdata = engine.path(rec, "userdata")
    doc = plan.load(userdata)
    if doc is None or doc["mode"] != "bridge":
        mode = doc["mode"] if doc else "none"
        raise ConfigError(f"container {rec.name}: network mode {mode} cannot join bridge networks")
    running = bool(doc.get("active")) and os.path.exists(netns.path(rec.id))
    return userdata, doc, running


def connect(engine: Engine, rec: Record, network: str, aliases: list[str], ip: str, mac: str) -> None:
    """`network connect`: into the plan; attached at once when the container runs."""
    with locks.networks(engine.root, shared=True):  # network rm waits until the plan names it
        _connect(engine, rec, network, aliases, ip, mac)


def _connect(engine: Engine, rec: Record, network: str, aliases: list[str], ip: str, mac: str) -> None:
    from hutch.engine.network import config

    net = config.find(engine.root, network)
    userdata, doc, running = _running_plan(engine, rec)
    if any(e["name"] == net.name for e in doc["networks"]):
        raise ConfigError(
            f"container {rec.id} is already connected to network {net.name}: network already exists"
        )
    used = {e["ifname"] for e in doc["networks"]}
    ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
    entry = {"name": net.name, "ifname": ifname, "aliases": list(aliases), "ip": "", "mac": ""}
    if ip:
        entry["ip"] = bridgeplan.static_ip(ip, net)
    if mac:
        entry["mac"] = bridgeplan.mac(mac)
    doc["networks"].append(entry)
    plan.save(userdata, doc)
    if running:
        try:
            attach.record(engine, doc, entry, first=False)
            plan.save(userdata, doc)
            _attach(rec.id, userdata, doc, entry)
        except BaseException:
            doc["networks"].remove(entry)
            doc["confs"].pop(net.name, None)
            plan.save(userdata, doc)
            raise
        attach.write_etc(engine, userdata, doc)


def _attach(container_id: str, userdata: str, doc: dict[str, Any], entry: dict[str, Any]) -> None:
    """ADD on a running container, then its names on the network's DNS: all or nothing, so when the names
    fail the interface goes again (DEL) and the other networks' names are served as before."""
    path = netns.path(container_id)
    result = attach.add(container_id, doc, entry, path)
    try:
        attach.added(container_id, userdata, doc, entry, result)
    except BaseException:
        doc["results"].pop(entry["name"], None)
        with contextlib.suppress(HutchError, OSError):  # the first error is the one to report
            if doc["confs"][entry["name"]].get("dns"):
                from hutch.engine.network import dns

                dns.remove(container_id)
                _re_register_dns(container_id, doc)
        with contextlib.suppress(HutchError, OSError):
            attach.detach(container_id, doc, entry, path)
        raise


def disconnect(engine: Engine, rec: Record, network: str) -> None:
    """`network disconnect`: detached at once when the container runs, and out of the plan."""
    from hutch.engine.network import config

    net = config.find(engine.root, network)
    userdata, doc, running = _running_plan(engine, rec)
    entry = next((e for e in doc["networks"] if e["name"] == net.name), None)
    if entry is None:
        raise NotFoundError(f"container {rec.id} is not connected to network {net.name}")
    errors: list[str] = []
    if running and net.name in doc["confs"]:
        if doc["confs"][net.name].get("dns"):
            from hutch.engine.network import dns

            dns.remove(rec.id)
        errors = attach.detach(rec.id, doc, entry, netns.path(rec.id))
        doc["confs"].pop(net.name, None)
        doc["results"].pop(net.name, None)
    doc["networks"].remove(entry)
    plan.save(userdata, doc)
    if running:
        _re_register_dns(rec.id, doc)
        attach.write_etc(engine, userdata, doc)
    if errors:
        raise StateError("; ".join(errors))


def _re_register_dns(container_id: str, doc: dict[str, Any]) -> None:
    from hutch.engine.network import dns

    for entry in doc["networks"]:
        saved, result = doc["confs"].get(entry["name"]), doc["results"].get(entry["name"])
        if saved and saved.get("dns") and result:
            names = [doc["name"], container_id[:12], *entry.get("aliases", [])]
            dns.add(
                saved["bridge"], attach.gateways_of(result), container_id, attach.addresses_of(result), names
            )


def reload(engine: Engine, rec: Record) -> None:
    """`network reload`: each network's rules made again, the container keeping its interfaces: the
    network's own chains (ensured) and the per-container plugins' (portmap: DEL, then ADD on the same
    result); then CHECK of the whole list. A plan from before the per-network rules gets its whole list
    again (DEL, ADD with the addresses and MAC it had)."""
    from hutch.engine.containers import LIVE
    from hutch.engine.network import firewall

    if rec.state in LIVE and (plan.load(engine.path(rec, "userdata")) or {}).get("mode") == "none":
        return  # a netns with lo only: no rules of its own (podman's reload of it succeeds, doing nothing)
    userdata, doc, running = _running_plan(engine, rec)
    if not running:
        raise StateError(f"container {rec.id} is not running")
    path = netns.path(rec.id)
    for entry in doc["networks"]:
        saved, result = doc["confs"].get(entry["name"]), doc["results"].get(entry["name"])
        if not saved or not result:
            continue
        firewall.ensure_saved(saved)
        with attach.bridge_lock(saved):
            doc["results"][entry["name"]] = _redo(rec.id, saved, result, entry["ifname"], path)
        plan.save(userdata, doc)
        # Then the plugins verify what they set up (CNI CHECK): an interface, address or MAC that is not
        # there is the reload's error. Not portmap, just made again above: Debian's (bookworm's) fails CHECK on
        # an IPv4-only container, looking for the IPv6 DNAT chain it never made.
        from hutch.engine.network import cni

        conf = saved["conf"]
        cni.check(
            dict(conf, plugins=[p for p in conf["plugins"] if p["type"] != "portmap"]),
            doc["results"][entry["name"]],
            container_id=rec.id,
            netns=path,
            ifname=entry["ifname"],
            runtime=saved["runtime"],
        )


_KEEPS_INTERFACE = ("portmap", "firewall")  # their DEL and ADD leave the veth and address alone


def _redo(
    container_id: str, saved: dict[str, Any], result: dict[str, Any], ifname: str, path: str
) -> dict[str, Any]:
    from hutch.engine.network import cni

    conf = saved["conf"]
    runtime = dict(saved["runtime"])
    if saved.get("rules") is not None:
        conf = dict(conf, plugins=[p for p in conf["plugins"] if p["type"] in _KEEPS_INTERFACE])
        if not conf["plugins"]:
            return result
    else:
        runtime["ips"] = [str(ip["address"]) for ip in result.get("ips", [])]
        mac = next((x.get("mac") for x in result.get("interfaces", []) if x.get("sandbox")), "")
        if mac:
            runtime["mac"] = mac
    cni.delete(conf, result, container_id=container_id, netns=path, ifname=ifname, runtime=runtime)
    prev = result if saved.get("rules") is not None else None
    return cni.add(conf, container_id=container_id, netns=path, ifname=ifname, runtime=runtime, prev=prev)
