"""`hutch network` on the engine side: which containers use a network, removing (with them, when forced)
and pruning networks, podman's inspect document, and the container side of connect/disconnect/reload.
"""

from __future__ import annotations

from hutch.engine.network import config, plan
from hutch.errors import HutchError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


class InUseError(StateError):
    """A network containers use (podman's network rm exits 2)."""


def users(engine: Engine, name: str) -> list[Record]:
    """The containers whose plan names network `name`."""
    out = []
    for rec in engine.db.all():
        doc = plan.load(engine.path(rec, "userdata")) or {}
        if any(e.get("name") == name for e in doc.get("networks", [])):
            out.append(rec)
    return out


def remove(engine: Engine, name_or_id: str, force: bool = False) -> str:
    """podman network rm: refused while containers use it, unless forced (they are removed first). The
    check and the removal hold the networks lock, so no create or connect joins it meanwhile; the users are
    removed outside it (a pod's removal takes the pods lock, which a pod create holds while its infra's
    create takes this one), then the check runs again."""
    from hutch.engine.network import locks

    removed: set[str] = set()
    while True:
        with locks.networks(engine.root):
            net = config.find(engine.root, name_or_id)
            if net.name == config.DEFAULT_NETWORK:
                raise HutchError(f"default network {net.name} cannot be removed")
            using = users(engine, net.name)
            if not using:
                _drop(engine, net)
                return net.name
            if not force:
                raise InUseError(
                    f'"{net.name}" has associated containers with it. Use -f to forcibly delete containers and '
                    "pods: network is being used"
                )
            if removed & {r.id for r in using}:  # removed, yet still there: do not loop on it
                raise StateError(f"network {net.name}: its containers could not be removed")
        _remove_users(engine, using)
        removed |= {r.id for r in using}


def _remove_users(engine: Engine, using: list[Record]) -> None:
    """network rm -f: the containers on the network, and whole the pods whose infra is one of them (their
    members share its netns; as podman removes "containers and pods")."""
    import contextlib

    from hutch.engine import pods, stopping
    from hutch.engine.db import NoSuchContainer

    infra_of = {p["InfraContainerID"]: p for p in pods.all_pods(engine) if p["InfraContainerID"]}
    for rec in using:
        if rec.id in infra_of:
            pods.remove(engine, infra_of[rec.id], force=True)
    for rec in using:
        if rec.id not in infra_of:
            with contextlib.suppress(NoSuchContainer):  # a member its pod's removal took
                stopping.remove(engine, rec.id, force=True)


def _drop(engine: Engine, net: config.Network) -> None:
    """The network's firewall chains (first: a crash in between leaves the conflist, so a retry finds
    them), its conflist, and its bridge if a crash left it idle (no lease on it), under the bridge's lock
    as teardown takes it (an ADD holding it is not left without its bridge)."""
    import os

    from hutch.engine.network import firewall, locks
    from hutch.engine.network.attach import remove_idle_bridge

    firewall.remove(net.bridge, [s.subnet for s in net.subnets])
    config.delete(engine.root, net.name)
    with locks.held(os.path.join(locks.LOCK_DIR, net.bridge)):
        remove_idle_bridge(net.name, net.bridge)


def prune(engine: Engine) -> list[str]:
    """Every network but the default that no container uses (under the networks lock, as rm)."""
    from hutch.engine.network import locks

    with locks.networks(engine.root):
        return _prune(engine)


def _prune(engine: Engine) -> list[str]:
    used = set()
    for rec in engine.db.all():
        doc = plan.load(engine.path(rec, "userdata")) or {}
        used |= {e.get("name") for e in doc.get("networks", [])}
    out = []
    for net in config.all_networks(engine.root):
        if net.name != config.DEFAULT_NETWORK and net.name not in used:
            _drop(engine, net)
            out.append(net.name)
    return out


def inspect(net: config.Network) -> dict[str, Any]:
    """podman's network inspect object."""
    from hutch.engine.inspect import _go_time

    subnets = []
    for s in net.subnets:
        entry: dict[str, Any] = {"subnet": s.subnet, "gateway": s.gateway}
        if s.range_start:
            entry["lease_range"] = {"start_ip": s.range_start, "end_ip": s.range_end}
        subnets.append(entry)
    doc: dict[str, Any] = {
        "name": net.name,
        "id": net.id,
        "driver": "bridge",
        "network_interface": net.bridge,
        "created": _go_time(net.created),
        "subnets": subnets,
        "ipv6_enabled": net.ipv6,
        "internal": net.internal,
        "dns_enabled": net.dns,
        "ipam_options": {"driver": "host-local"},
    }
    if net.labels:
        doc["labels"] = dict(net.labels)
    if net.mtu:
        doc["options"] = {"mtu": str(net.mtu)}
    return doc


def settings(engine: Engine, rec: Record) -> dict[str, Any]:
    """The container's networks as podman's inspect shows them (NetworkSettings.Networks)."""
    doc = plan.load(engine.path(rec, "userdata")) or {}
    out: dict[str, Any] = {}
    for entry in doc.get("networks", []):
        result = doc.get("results", {}).get(entry["name"]) or {}
        ips = [ip for ip in result.get("ips", []) if "address" in ip]
        v4: dict[str, Any] = next((ip for ip in ips if ":" not in ip["address"]), {})
        mac = next((i.get("mac", "") for i in result.get("interfaces", []) if i.get("sandbox")), "")
        address, _, prefix = str(v4.get("address", "")).partition("/")
        out[entry["name"]] = {
            "IPAddress": address,
            "IPPrefixLen": int(prefix or 0),
            "Gateway": v4.get("gateway", ""),
            "MacAddress": mac,
            "Aliases": list(entry.get("aliases", [])),
            "NetworkID": entry["name"],
        }
    return out


def network_settings(engine: Engine, rec: Record) -> dict[str, Any]:
    """podman's NetworkSettings of a container: the first network's address at the top, every network
    under Networks, published ports under Ports (while the container's networks are up)."""
    from hutch.engine.network import netns

    doc = plan.load(engine.path(rec, "userdata")) or {}
    nets = settings(engine, rec) if doc.get("active") else {}
    first: dict[str, Any] = next(iter(nets.values()), {})
    ports: dict[str, Any] = {}
    for m in doc.get("ports", []):
        key = f"{m['containerPort']}/{m['protocol']}"
        ports.setdefault(key, []).append({"HostIp": m["hostIP"], "HostPort": str(m["hostPort"])})
    return {
        "EndpointID": "",
        "Gateway": first.get("Gateway", ""),
        "IPAddress": first.get("IPAddress", ""),
        "IPPrefixLen": first.get("IPPrefixLen", 0),
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": first.get("MacAddress", ""),
        "Bridge": "",
        "SandboxID": "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SandboxKey": netns.path(rec.id) if doc.get("active") else "",
        "Networks": nets,
    }
