"""A container's network plan: what `run`/`create` asked for (mode, networks with aliases, --ip, --mac-address,
published ports, /etc/hosts and resolv.conf flags), checked at create and kept in userdata/network.json.
setup adds what it did to the same file (the networks' conflists and the plugins' results, for DEL), so
teardown needs nothing else, even after the network was removed.
"""

from __future__ import annotations

import os

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
    from typing import Any
else:
    from hutch.record import dataclass, field

PLAN = "network.json"
_SINGLE = ("none", "host", "private")


@dataclass(slots=True)
class NetOptions:
    """The network flags of run/create."""

    networks: list[str] = field(default_factory=list)
    ip: str = ""
    mac: str = ""
    publish: list[str] = field(default_factory=list)
    publish_all: bool = False
    add_hosts: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    pod: str = ""  # run --pod: the pod whose infra container's namespaces the container joins


def mode_of(network: str) -> str:
    """The --network text's mode: bridge (named networks), none, host, container or ns."""
    if network in _SINGLE:
        return "none" if network == "private" else network
    if network.startswith("container:"):
        return "container"
    if network.startswith("ns:"):
        return "ns"
    return "bridge"


def build(
    root: str, container_id: str, name: str, hostname: str, network: str, net: NetOptions, exposed: list[str]
) -> dict[str, Any]:
    """The plan of a new container, every flag checked; raises ConfigError naming the flag. Only a bridge
    plan imports the networks' modules (--network none stays off ipaddress, hashlib and socket)."""
    mode = mode_of(network)
    plan: dict[str, Any] = {
        "mode": mode,
        "id": container_id,
        "name": name,
        "hostname": hostname,
        "networks": [],
        "ports": [],
        "path": "",
        "add_hosts": [_add_host(h) for h in net.add_hosts],
        "dns": [_dns_server(d) for d in net.dns],
        "dns_search": list(net.dns_search),
        "dns_options": list(net.dns_options),
        "pod": "",
        "active": False,
        "results": {},
        "confs": {},
    }
    if mode != "bridge":
        for flag, given in (("--ip", net.ip), ("--mac-address", net.mac), ("--network-alias", net.aliases)):
            if given:
                raise ConfigError(f"{flag}: needs a bridge network, not --network {network}")
        if net.publish or net.publish_all:
            raise ConfigError(f"-p/-P: ports cannot be published with --network {network}")
    if mode in ("none", "ns") and any(ip == "host-gateway" for _, ip in plan["add_hosts"]):
        # No gateway to name (podman fails the same: the host containers internal IP is empty).
        raise ConfigError(f"--add-host HOST:host-gateway: there is no gateway with --network {network}")
    if mode == "ns":
        path = network[3:]
        if not os.path.exists(path):
            raise ConfigError(f"--network {network}: no such file")
        plan["path"] = path
    if mode == "container":
        plan["path"] = network.partition(":")[2]  # resolved by the engine, which knows containers
    if mode != "bridge":
        return plan
    from hutch.engine.network import bridgeplan

    plan["networks"], plan["ports"] = bridgeplan.networks(root, network, net, exposed)
    return plan


def _add_host(text: str) -> list[str]:
    host, sep, ip = text.partition(":")
    if not sep or not host:
        raise ConfigError(f"--add-host {text!r}: expected HOST:IP")
    if ip != "host-gateway":
        import ipaddress

        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ConfigError(f"--add-host {text!r}: invalid IP address {ip!r}") from None
    return [host, ip]


def _dns_server(text: str) -> str:
    if text == "none":
        return text
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ConfigError(f"--dns {text!r}: not an IP address") from None


def load(userdata: str) -> dict[str, Any] | None:
    from hutch import jsonfast

    try:
        with open(os.path.join(userdata, PLAN)) as f:
            doc = jsonfast.loads(f.read())
    except FileNotFoundError:
        return None
    return doc if isinstance(doc, dict) else None


def save(userdata: str, plan: dict[str, Any]) -> None:
    """Atomically (rename): teardown trusts this file after a crash. No fsync: what it records (netns,
    leases, rules) lives in tmpfs and the kernel, and does not outlive a reboot either."""
    from hutch import jsonfast

    path = os.path.join(userdata, PLAN)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(jsonfast.dumps(plan))
    os.rename(tmp, path)


def namespace(network: str, userdata: str, container_id: str) -> dict[str, str] | None:
    """The spec's network namespace entry: new (none), the host's (None), or joined by path."""
    from hutch.engine.network import netns

    plan = load(userdata)
    mode = plan["mode"] if plan else mode_of(network)
    if mode == "host":
        return None
    if mode == "none":
        return {"type": "network"}
    if mode == "bridge":
        return {"type": "network", "path": netns.path(container_id)}
    if plan is None or not plan.get("path"):
        raise ConfigError(f"--network {network}: no namespace to join")
    return {"type": "network", "path": plan["path"]}
