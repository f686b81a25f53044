"""The network flags of `hutch run`/`create` (--network, --ip, -p, --dns, ...) and their reading into the
engine's network options."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from hutch.engine.network.plan import NetOptions


def add_run_flags(c: argparse.ArgumentParser) -> None:
    """run/create: --network and the flags that go with it."""
    c.add_argument(
        "--network",
        "--net",
        dest="networks",
        action="append",
        default=[],
        metavar="NETWORK",
        help="bridge (default), NAME[,NAME...], none, host, container:ID, ns:PATH",
    )
    c.add_argument("--ip", default="", help="the container's IPv4 address on its network")
    c.add_argument("--mac-address", default="", help="the container's MAC address on its network")
    c.add_argument("-p", "--publish", action="append", default=[], help="[hostip:][hostport:]ctrport[/proto]")
    c.add_argument("-P", "--publish-all", action="store_true", help="publish every EXPOSEd port")
    c.add_argument("--add-host", action="append", default=[], metavar="HOST:IP", help="an /etc/hosts entry")
    c.add_argument("--dns", action="append", default=[], help="a DNS server for /etc/resolv.conf")
    c.add_argument("--dns-search", action="append", default=[], help="a DNS search domain")
    c.add_argument("--dns-option", "--dns-opt", action="append", default=[], help="a resolv.conf option")
    c.add_argument("--network-alias", action="append", default=[], help="another name on the network")
    c.add_argument("--pod", default="", help="join this pod (its infra container's namespaces)")


def network_mode(args: argparse.Namespace) -> str:
    """--network, repeatable: the values joined with commas (several networks at once); bridge by default."""
    return ",".join(args.networks or ()) or "bridge"


def net_options(args: argparse.Namespace) -> NetOptions:
    from hutch.engine.network.plan import NetOptions

    return NetOptions(
        ip=args.ip,
        mac=args.mac_address,
        publish=list(args.publish),
        publish_all=args.publish_all,
        add_hosts=list(args.add_host),
        dns=list(args.dns),
        dns_search=list(args.dns_search),
        dns_options=list(args.dns_option),
        aliases=list(args.network_alias),
        pod=args.pod,
    )
