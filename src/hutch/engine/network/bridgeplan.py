"""The bridge networks of a new container's plan (see plan): the networks --network names, each entry's
interface, --ip and --mac-address checked against the network, and the published ports. Only a bridge plan
imports it, and with it the networks' modules."""

from __future__ import annotations

from hutch.engine.network import config, ports
from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.network.plan import NetOptions


def networks(
    root: str, network: str, net: NetOptions, exposed: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The plan's network entries and port mappings; raises ConfigError naming the flag."""
    entries: list[dict[str, Any]] = []
    names = _names(network)
    resolved: list[config.Network] = []
    for n in names:
        found = config.load(root, n)
        if all(f.name != found.name for f in resolved):  # `bridge` and `hutch` are one network
            resolved.append(found)
    for i, found in enumerate(resolved):
        entry = {"name": found.name, "ifname": f"eth{i}", "aliases": list(net.aliases), "ip": "", "mac": ""}
        if i == 0:
            entry["ip"] = static_ip(net.ip, found) if net.ip else ""
            entry["mac"] = mac(net.mac) if net.mac else ""
        entries.append(entry)
    if (net.ip or net.mac) and len(resolved) > 1:
        raise ConfigError("--ip and --mac-address need exactly one network")
    return entries, ports.resolve(net.publish, net.publish_all, exposed)


def _names(network: str) -> list[str]:
    out: list[str] = []
    for name in network.split(","):
        name = name.strip()
        if not name:
            raise ConfigError(f"--network {network!r}: an empty network name")
        if name not in out:
            out.append(name)
    return out


def static_ip(text: str, net: Any) -> str:
    import ipaddress

    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(f"--ip {text!r}: not an IP address") from None
    for s in net.subnets:
        subnet = ipaddress.ip_network(s.subnet)
        if addr in subnet:
            if addr in (subnet.network_address, subnet.broadcast_address) or str(addr) == s.gateway:
                raise ConfigError(f"--ip {text}: reserved in network {net.name} ({subnet})")
            return f"{addr}/{subnet.prefixlen}"
    raise ConfigError(f"--ip {text}: not in any subnet of network {net.name}")


def mac(text: str) -> str:
    parts = text.split(":")
    if len(parts) != 6 or not all(
        len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    ):
        raise ConfigError(f"--mac-address {text!r}: not a MAC address")
    if int(parts[0], 16) & 1:
        raise ConfigError(f"--mac-address {text}: a multicast address")
    return text.lower()
