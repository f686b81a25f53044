"""/etc/hosts and /etc/resolv.conf of a container, as podman writes them: --add-host entries first, the
container's own address under its hostname and name, host.containers.internal; nameservers from --dns, else
the network's DNS server (aardvark-dns on the bridge's address) before the host's, search and options from
the flags or the host. Written in place: the runtime binds these files, and a bind follows the inode.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SEARCH_DOMAIN = "dns.podman"  # aardvark-dns strips it from queries (its --filter-search-domain default)


def _host_resolv() -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        cols = line.split()
        if len(cols) < 2 or cols[0].startswith(("#", ";")):
            continue
        if cols[0] == "nameserver":
            servers.append(cols[1])
        elif cols[0] == "search":
            search = cols[1:]
        elif cols[0] == "options":
            options = cols[1:]
    return servers, search, options


def resolv_conf(plan: dict[str, Any], dns_servers: list[str]) -> str:
    """`dns_servers`: the DNS servers of the container's networks (their gateways), first."""
    host_servers, search, options = _host_resolv()
    if plan["mode"] != "host":
        # The host's loopback resolvers are not reachable from the container's namespace.
        host_servers = [s for s in host_servers if not s.startswith("127.") and s != "::1"]
    servers = [s for s in plan["dns"] if s != "none"] or dns_servers + host_servers
    if "none" in plan["dns"]:
        servers = []
    if plan["dns_search"]:
        search = [] if plan["dns_search"] == ["."] else list(plan["dns_search"])
    elif dns_servers:
        search = [SEARCH_DOMAIN, *search]
    if plan["dns_options"]:
        options = list(plan["dns_options"])
    text = ""
    if search:
        text += "search " + " ".join(search) + "\n"
    text += "".join(f"nameserver {s}\n" for s in servers)
    if options:
        text += "options " + " ".join(options) + "\n"
    return text


def hosts(plan: dict[str, Any], addresses: list[str], gateway: str) -> str:
    """`addresses`: the container's own (first network first); `gateway`: the host as seen from it."""
    text = ""
    for host, ip in plan["add_hosts"]:
        text += f"{gateway if ip == 'host-gateway' else ip}\t{host}\n"
    if plan["mode"] == "host":
        try:
            with open("/etc/hosts") as f:
                return text + f.read()
        except OSError:
            pass
    text += "127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost localhost.localdomain\n"
    names = plan["hostname"] if plan["hostname"] == plan["name"] else f"{plan['hostname']} {plan['name']}"
    if addresses:
        text += "".join(f"{a}\t{names}\n" for a in addresses)
    else:
        text += f"127.0.1.1\t{names}\n"
    if gateway:
        text += f"{gateway}\thost.containers.internal\n"
    return text


def write(userdata: str, name: str, text: str) -> None:
    path = os.path.join(userdata, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.fchmod(fd, 0o644)  # whatever our umask: the container's user reads it
        os.write(fd, text.encode())
    finally:
        os.close(fd)
