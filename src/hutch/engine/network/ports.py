"""-p/--publish as podman parses it: [[hostip:][hostport[-end]]:]containerport[-end][/tcp|udp|sctp]; a
missing host port is chosen among the free ones at create, as podman does. Mappings become the portmap
plugin's runtimeConfig.portMappings.
"""

from __future__ import annotations

import contextlib

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record

_PROTOCOLS = ("tcp", "udp", "sctp")


def _port_range(text: str, flag: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        lo, hi = int(first), int(last or first)
    except ValueError:
        raise ConfigError(f"{flag}: invalid port {text!r}") from None
    if not (1 <= lo <= hi <= 65535):
        raise ConfigError(f"{flag}: port numbers must be between 1 and 65535: {text!r}")
    return lo, hi


def parse(text: str) -> list[dict[str, Any]]:
    """One -p value as mappings {hostIP, hostPort, containerPort, protocol} (hostPort 0: choose one)."""
    flag = f"-p {text}"
    spec, _, proto = text.partition("/")
    protocols = (proto or "tcp").split(",")
    if any(p not in _PROTOCOLS for p in protocols):
        raise ConfigError(f"{flag}: unknown protocol {proto!r} (tcp, udp or sctp)")
    host_ip = ""
    if spec.startswith("["):  # [v6addr]:host:ctr
        end = spec.find("]")
        host_ip, spec = spec[1:end], spec[end + 2 :]
    parts = spec.split(":")
    if len(parts) > 3:
        raise ConfigError(f"{flag}: expected [hostip:][hostport:]containerport")
    if len(parts) == 3:
        host_ip, host, ctr = parts
    elif len(parts) == 2:
        host, ctr = parts
    else:
        host, ctr = "", parts[0]
    if host_ip:
        import ipaddress  # here, and socket below: only -p needs them (milliseconds each)

        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise ConfigError(f"{flag}: invalid host IP {host_ip!r}") from None
    c_lo, c_hi = _port_range(ctr, flag)
    if host:
        h_lo, h_hi = _port_range(host, flag)
        if h_hi - h_lo != c_hi - c_lo:
            raise ConfigError(f"{flag}: host and container port ranges differ in length")
    else:
        h_lo = 0
    out = []
    for p in protocols:
        for i in range(c_hi - c_lo + 1):
            out.append(
                {
                    "hostIP": host_ip,
                    "hostPort": h_lo + i if h_lo else 0,
                    "containerPort": c_lo + i,
                    "protocol": p,
                }
            )
    return out


def free_port(protocol: str, host_ip: str) -> int:
    import socket

    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host_ip, 0))
        return int(s.getsockname()[1])


def resolve(publish: list[str], publish_all: bool, exposed: list[str]) -> list[dict[str, Any]]:
    """Every -p (and with -P every EXPOSEd port of the image not published yet), host ports chosen."""
    mappings = [m for text in publish for m in parse(text)]
    if publish_all:
        have = {(m["containerPort"], m["protocol"]) for m in mappings}
        for key in exposed:
            port, _, proto = key.partition("/")
            for m in parse(f"{port}/{proto or 'tcp'}"):
                if (m["containerPort"], m["protocol"]) not in have:
                    mappings.append(m)
    seen: set[tuple[str, int, str]] = set()
    for m in mappings:
        if not m["hostPort"]:
            m["hostPort"] = free_port(m["protocol"], m["hostIP"])
        taken = (str(m["hostIP"]), int(m["hostPort"]), str(m["protocol"]))
        if taken in seen:
            raise ConfigError(f"-p: host port {m['hostPort']}/{m['protocol']} is published twice")
        seen.add(taken)
    return mappings


def text(mappings: list[dict[str, Any]]) -> list[str]:
    """`hutch port` lines: 80/tcp -> 0.0.0.0:8080."""
    return [
        f"{m['containerPort']}/{m['protocol']} -> {m['hostIP'] or '0.0.0.0'}:{m['hostPort']}"
        for m in mappings
    ]


def published(engine: Engine, rec: Record) -> list[dict[str, Any]]:
    """The ports published for the container: its own, or those of the container whose netns it joined."""
    from hutch.engine.db import NoSuchContainer
    from hutch.engine.network import plan

    doc = plan.load(engine.path(rec, "userdata")) or {}
    if doc.get("target"):
        with contextlib.suppress(NoSuchContainer):
            doc = plan.load(engine.path(engine.db.get(doc["target"]), "userdata")) or {}
    return list(doc.get("ports", []))
