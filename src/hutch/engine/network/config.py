"""Networks as CNI conflists: ROOT/networks/NAME.conflist, the bridge plugin (with host-local IPAM),
portmap and tuning, as podman's CNI backend writes them, but without its per-container firewall rules
(ipMasq, the firewall plugin): hutch keeps those per network (firewall.py). The file is the record: a
network is read back from its conflist (hutch's own fields ride in the list's `args`, which plugins never
see). The default network `hutch` (bridge hutch0, 10.88.0.0/16, NAT) lives in memory unless a file
overrides it.
"""

from __future__ import annotations

import os
import time

from hutch.errors import ConfigError, ExistsError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ipaddress
    from dataclasses import dataclass, field
    from typing import Any
else:
    from hutch.record import dataclass, field

DEFAULT_NETWORK = "hutch"
DEFAULT_BRIDGE = "hutch0"
DEFAULT_SUBNET = "10.88.0.0/16"
# host-local's leases are host-wide (every --root shares the bridges and their addresses); tmpfs, as the
# containers using them do not outlive a reboot.
IPAM_DIR = "/run/hutch/cni/ipam"
CNI_VERSION = "1.0.0"


@dataclass(slots=True)
class Subnet:
    subnet: str
    gateway: str
    range_start: str = ""
    range_end: str = ""


@dataclass(slots=True)
class Network:
    name: str
    bridge: str
    subnets: list[Subnet]
    internal: bool = False
    ipv6: bool = False
    dns: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    mtu: int = 0  # -o mtu=N; 0: the kernel's default

    @property
    def id(self) -> str:
        import hashlib  # OpenSSL: ~3 ms that run --rm does not need

        return hashlib.sha256(self.name.encode()).hexdigest()


def networks_dir(root: str) -> str:
    return os.path.join(root, "networks")


def _path(root: str, name: str) -> str:
    return os.path.join(networks_dir(root), f"{name}.conflist")


def default_network() -> Network:
    return Network(
        name=DEFAULT_NETWORK,
        bridge=DEFAULT_BRIDGE,
        subnets=[Subnet(DEFAULT_SUBNET, "10.88.0.1")],
        created=0.0,
    )


def check_name(name: str) -> None:
    ok = bool(name) and name[0].isalnum() and all(c.isalnum() or c in "_.-" for c in name)
    if not ok:
        raise ConfigError(f"network name {name!r}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument")


def load(root: str, name: str) -> Network:
    """The network `name` (or `bridge`, the default's podman alias) of this root."""
    if name == "bridge":
        name = DEFAULT_NETWORK
    path = _path(root, name)
    if "/" in name or not os.path.exists(path):
        if name == DEFAULT_NETWORK:
            return default_network()
        raise NotFoundError(f"unable to find network with name or ID {name}: network not found")
    return parse(_read(path), path)


def find(root: str, name_or_id: str) -> Network:
    """By name, else by a unique prefix of its id (as podman accepts)."""
    try:
        return load(root, name_or_id)
    except NotFoundError:
        found = [n for n in all_networks(root) if name_or_id and n.id.startswith(name_or_id)]
        if len(found) == 1:
            return found[0]
        raise


def all_networks(root: str) -> list[Network]:
    out = {DEFAULT_NETWORK: default_network()}
    try:
        names = sorted(os.listdir(networks_dir(root)))
    except FileNotFoundError:
        names = []
    for entry in names:
        if entry.endswith(".conflist"):
            path = os.path.join(networks_dir(root), entry)
            net = parse(_read(path), path)
            out[net.name] = net
    return sorted(out.values(), key=lambda n: n.name)


def _read(path: str) -> dict[str, Any]:
    from hutch import jsonfast

    with open(path) as f:
        doc = jsonfast.loads(f.read())
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not a conflist")
    return doc


def conflist(net: Network) -> dict[str, Any]:
    """The CNI network configuration list of `net`."""
    ranges = []
    for s in net.subnets:
        r: dict[str, str] = {"subnet": s.subnet, "gateway": s.gateway}
        if s.range_start:
            r["rangeStart"], r["rangeEnd"] = s.range_start, s.range_end
        ranges.append([r])
    routes = [] if net.internal else [{"dst": "0.0.0.0/0"}]
    if net.ipv6 and not net.internal:
        routes.append({"dst": "::/0"})
    bridge = {
        "type": "bridge",
        "bridge": net.bridge,
        "isGateway": True,  # the bridge holds the gateway address even when internal: DNS listens there
        "ipMasq": False,  # masquerade is hutch's, per network (firewall.py), not a chain per container
        "hairpinMode": True,
        "capabilities": {"ips": True},
        "ipam": {"type": "host-local", "dataDir": IPAM_DIR, "routes": routes, "ranges": ranges},
    }
    if net.mtu:
        bridge["mtu"] = net.mtu
    plugins: list[dict[str, Any]] = [bridge]
    if not net.internal:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
    plugins.append({"type": "tuning", "capabilities": {"mac": True}})
    return {
        "cniVersion": CNI_VERSION,
        "name": net.name,
        "plugins": plugins,
        "args": {
            "hutch_labels": dict(net.labels),
            "hutch_options": {"internal": net.internal, "ipv6": net.ipv6, "dns": net.dns},
            "hutch_created": net.created,
        },
    }


def parse(doc: dict[str, Any], where: str) -> Network:
    """A network read back from its conflist; errors name the file and the field."""
    try:
        bridge = next(p for p in doc["plugins"] if p.get("type") == "bridge")
        subnets = []
        for rng in bridge["ipam"]["ranges"]:
            r = rng[0]
            subnets.append(
                Subnet(r["subnet"], r.get("gateway", ""), r.get("rangeStart", ""), r.get("rangeEnd", ""))
            )
        args = doc.get("args", {})
        opts = args.get("hutch_options", {})
        return Network(
            name=doc["name"],
            bridge=bridge["bridge"],
            subnets=subnets,
            internal=bool(opts.get("internal", not bridge.get("ipMasq", False))),
            ipv6=bool(opts.get("ipv6", False)),
            dns=bool(opts.get("dns", False)),
            labels=dict(args.get("hutch_labels", {})),
            created=float(args.get("hutch_created", 0.0)),
            mtu=int(bridge.get("mtu", 0)),
        )
    except (KeyError, IndexError, TypeError, StopIteration, AttributeError) as e:
        raise ConfigError(
            f"{where}: not a bridge conflist hutch can read ({type(e).__name__}: {e})"
        ) from None


def save(root: str, net: Network) -> None:
    from hutch import jsonfast

    os.makedirs(networks_dir(root), mode=0o755, exist_ok=True)
    path = _path(root, net.name)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(jsonfast.dumps(conflist(net)))
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def delete(root: str, name: str) -> None:
    os.unlink(_path(root, name))


# --- create ---------------------------------------------------------------------------------------------


def _host_routes() -> list[ipaddress.IPv4Network]:
    """The host's IPv4 routes other than the default (/proc/net/route: little-endian hex)."""
    import ipaddress

    out: list[ipaddress.IPv4Network] = []
    try:
        with open("/proc/net/route") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        cols = line.split()
        if len(cols) < 8 or cols[1] == "00000000" and cols[7] == "00000000":
            continue
        dest = ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(cols[1]), "little"))
        mask = ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(cols[7]), "little"))
        out.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
    return out


def _taken(root: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    import ipaddress

    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for n in all_networks(root):
        nets += [ipaddress.ip_network(s.subnet) for s in n.subnets]
    return nets + list(_host_routes())


def free_subnet(root: str, ipv6: bool = False) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The first 10.89.N.0/24 (or fdNN:...::/64) that no network of this root nor a host route uses."""
    import ipaddress

    taken = _taken(root)
    for i in range(256):
        cand = ipaddress.ip_network(f"fd00:0:89:{i:x}::/64" if ipv6 else f"10.89.{i}.0/24")
        if not any(_overlap(cand, t) for t in taken):
            return cand
    raise ConfigError("no free subnet left in 10.89.0.0/16: give one with --subnet")


def _overlap(
    a: ipaddress.IPv4Network | ipaddress.IPv6Network, b: ipaddress.IPv4Network | ipaddress.IPv6Network
) -> bool:
    return a.version == b.version and a.overlaps(b)


def free_bridge(root: str) -> str:
    used = {n.bridge for n in all_networks(root)}
    existing = set(os.listdir("/sys/class/net"))
    for i in range(1, 1 << 16):
        name = f"hutch{i}"
        if name not in used and name not in existing:
            return name
    raise ConfigError("no free bridge name")


def _mtu(options: list[str]) -> int:
    """-o KEY=VALUE driver options: mtu is the one the bridge plugin takes."""
    mtu = 0
    for opt in options:
        key, _, value = opt.partition("=")
        if key != "mtu":
            raise ConfigError(f"-o {opt!r}: unsupported bridge option (mtu=N is)")
        if not value.isdigit() or not 68 <= int(value) <= 65535:
            raise ConfigError(f"-o {opt!r}: the MTU must be a number from 68 to 65535")
        mtu = int(value)
    return mtu


def make_subnet(text: str, gateway: str, ip_range: str) -> Subnet:
    """--subnet with its --gateway and --ip-range checked against it."""
    import ipaddress

    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(f"--subnet {text!r}: not a CIDR subnet") from None
    if net.num_addresses < 4:
        raise ConfigError(f"--subnet {text!r}: too small")
    if gateway:
        try:
            gw = ipaddress.ip_address(gateway)
        except ValueError:
            raise ConfigError(f"--gateway {gateway!r}: not an IP address") from None
        if gw not in net:
            raise ConfigError(f"--gateway {gateway}: not in subnet {net}")
    else:
        gw = net.network_address + 1
    sub = Subnet(str(net), str(gw))
    if ip_range:
        try:
            rng = ipaddress.ip_network(ip_range, strict=False)
        except ValueError:
            raise ConfigError(f"--ip-range {ip_range!r}: not a CIDR range") from None
        if rng.version != net.version or not rng.subnet_of(net):  # type: ignore[arg-type]
            raise ConfigError(f"--ip-range {ip_range}: not in subnet {net}")
        first, last = rng.network_address, rng.broadcast_address
        if rng.num_addresses > 2:
            first, last = first + 1, last - 1
        sub.range_start, sub.range_end = str(first), str(last)
    return sub


def create(
    root: str,
    name: str,
    *,
    subnets: list[str],
    gateways: list[str],
    ip_ranges: list[str],
    internal: bool = False,
    ipv6: bool = False,
    labels: dict[str, str] | None = None,
    driver: str = "bridge",
    dns: bool = True,
    options: list[str] | None = None,
) -> Network:
    """`hutch network create`: a new bridge network, its subnet given or the first free one; without a
    name, the first free hutchN. The choices and the write are one step under a host-wide lock: two
    creates at once would pick the same name, bridge or subnet (bridges are the host's, not the root's)."""
    from hutch.engine.network import locks

    if driver != "bridge":
        raise ConfigError(f"-d {driver!r}: only the bridge driver is supported")
    if name:
        check_name(name)
    with locks.held(os.path.join(locks.LOCK_DIR, "networks")):
        return _create(root, name, subnets, gateways, ip_ranges, internal, ipv6, labels, dns, options)


def _create(
    root: str,
    name: str,
    subnets: list[str],
    gateways: list[str],
    ip_ranges: list[str],
    internal: bool,
    ipv6: bool,
    labels: dict[str, str] | None,
    dns: bool,
    options: list[str] | None,
) -> Network:
    import ipaddress

    if not name:
        names = {n.name for n in all_networks(root)}
        name = next(f"hutch{i}" for i in range(1, 1 << 16) if f"hutch{i}" not in names)
    if name in ("bridge", "none", "host") or os.path.exists(_path(root, name)) or name == DEFAULT_NETWORK:
        raise ExistsError(f"network name {name} already used: network already exists")
    if len(gateways) > len(subnets) or len(ip_ranges) > len(subnets):
        raise ConfigError("--gateway and --ip-range each need a --subnet")
    subs = [
        make_subnet(s, gateways[i] if i < len(gateways) else "", ip_ranges[i] if i < len(ip_ranges) else "")
        for i, s in enumerate(subnets)
    ]
    taken = _taken(root)  # the networks' subnets and the host's routes, as podman checks a --subnet
    for s in subs:
        net = ipaddress.ip_network(s.subnet)
        if any(_overlap(net, t) for t in taken):
            raise ConfigError(f"subnet {net} is already used on the host or by another config")
    if not subs:
        subs.append(make_subnet(str(free_subnet(root)), "", ""))
    if ipv6 and not any(ipaddress.ip_network(s.subnet).version == 6 for s in subs):
        subs.append(make_subnet(str(free_subnet(root, ipv6=True)), "", ""))
    if any(ipaddress.ip_network(s.subnet).version == 6 for s in subs):
        ipv6 = True
    network = Network(
        name=name,
        bridge=free_bridge(root),
        subnets=subs,
        internal=internal,
        ipv6=ipv6,
        dns=dns,
        labels=dict(labels or {}),
        created=time.time(),
        mtu=_mtu(options or []),
    )
    save(root, network)
    return network
