"""Network pieces that need no root: -p parsing, the plan's checks of --ip/--mac-address/--add-host/--dns,
the /etc files podman writes, subnets and conflists read back, and CNI errors as one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hutch.engine.network import cni, config, etcfiles, plan, ports
from hutch.errors import ConfigError, ExistsError, NotFoundError


def test_publish_forms() -> None:
    assert ports.parse("8080:80") == [
        {"hostIP": "", "hostPort": 8080, "containerPort": 80, "protocol": "tcp"}
    ]
    assert ports.parse("127.0.0.1:53:53/udp") == [
        {"hostIP": "127.0.0.1", "hostPort": 53, "containerPort": 53, "protocol": "udp"}
    ]
    assert [m["hostPort"] for m in ports.parse("9000-9002:80-82")] == [9000, 9001, 9002]
    assert ports.parse("80")[0]["hostPort"] == 0  # chosen at create
    assert [m["protocol"] for m in ports.parse("80/tcp,udp")] == ["tcp", "udp"]
    assert ports.parse("[::1]:8080:80")[0]["hostIP"] == "::1"
    for bad in ("70000:80", "a:80", "1:2:3:4", "80/icmp", "9000-9001:80", "nope:80:80", "0:80"):
        with pytest.raises(ConfigError, match="-p"):
            ports.parse(bad)


def test_publish_all_and_free_ports() -> None:
    mappings = ports.resolve(["8080:80"], True, ["80/tcp", "443/tcp", "53/udp"])
    assert [(m["containerPort"], m["protocol"]) for m in mappings] == [(80, "tcp"), (443, "tcp"), (53, "udp")]
    assert mappings[0]["hostPort"] == 8080 and all(m["hostPort"] > 0 for m in mappings)
    with pytest.raises(ConfigError, match="published twice"):
        ports.resolve(["8080:80", "8080:81"], False, [])
    assert ports.text(mappings[:1]) == ["80/tcp -> 0.0.0.0:8080"]


def test_plan_checks(tmp_path: Path) -> None:
    root = str(tmp_path)

    def build(network: str = "bridge", **kw: object) -> dict[str, object]:
        return plan.build(root, "c" * 64, "web", "host1", network, plan.NetOptions(**kw), [])  # type: ignore[arg-type]

    doc = build(ip="10.88.0.5", mac="02:42:AC:11:00:05", aliases=["www"])
    assert doc["networks"] == [
        {
            "name": "hutch",
            "ifname": "eth0",
            "aliases": ["www"],
            "ip": "10.88.0.5/16",
            "mac": "02:42:ac:11:00:05",
        }
    ]
    assert plan.namespace("bridge", str(tmp_path), "c" * 64) == {
        "type": "network",
        "path": "/run/hutch/netns/" + "c" * 64,
    }
    for kw, match in (
        ({"ip": "10.1.2.3"}, "--ip 10.1.2.3: not in any subnet"),
        ({"ip": "10.88.0.1"}, "reserved"),
        ({"ip": "x"}, "--ip 'x'"),
        ({"mac": "01:00:00:00:00:01"}, "multicast"),
        ({"mac": "zz"}, "--mac-address"),
        ({"add_hosts": ["nohost"]}, "--add-host"),
        ({"add_hosts": ["h:1.2.3"]}, "--add-host"),
        ({"dns": ["dns.example"]}, "--dns"),
    ):
        with pytest.raises(ConfigError, match=match):
            build(**kw)
    with pytest.raises(ConfigError, match="needs a bridge network"):
        build("none", ip="10.88.0.5")
    with pytest.raises(ConfigError, match="ports cannot be published"):
        build("host", publish=["80"])
    with pytest.raises(NotFoundError, match="network not found"):
        build("nosuch")
    assert [n["ifname"] for n in build("bridge,hutch")["networks"]] == ["eth0"]  # the same network once
    assert plan.namespace("none", str(tmp_path / "x"), "c" * 64) == {"type": "network"}
    assert plan.namespace("host", str(tmp_path / "x"), "c" * 64) is None


def test_etc_files() -> None:
    doc = {
        "mode": "bridge",
        "name": "web",
        "hostname": "h1",
        "add_hosts": [["db", "10.1.1.1"], ["gw", "host-gateway"]],
        "dns": [],
        "dns_search": [],
        "dns_options": [],
    }
    hosts = etcfiles.hosts(doc, ["10.88.0.9"], "10.88.0.1")
    assert hosts.splitlines()[:2] == ["10.1.1.1\tdb", "10.88.0.1\tgw"]
    assert "10.88.0.9\th1 web" in hosts and hosts.endswith("10.88.0.1\thost.containers.internal\n")
    resolv = etcfiles.resolv_conf(doc, ["10.89.0.1"])
    assert resolv.startswith("search dns.podman") and "nameserver 10.89.0.1\n" in resolv
    doc.update(dns=["9.9.9.9"], dns_search=["a.test"], dns_options=["ndots:2"])
    assert etcfiles.resolv_conf(doc, ["10.89.0.1"]) == "search a.test\nnameserver 9.9.9.9\noptions ndots:2\n"


def test_networks_round_trip(tmp_path: Path) -> None:
    root = str(tmp_path)
    net = config.create(
        root, "n1", subnets=["10.89.77.0/24"], gateways=["10.89.77.254"], ip_ranges=["10.89.77.128/26"],
        internal=True, labels={"a": "b"},
    )  # fmt: skip
    again = config.load(root, "n1")
    assert again == net
    assert (again.subnets[0].gateway, again.subnets[0].range_start, again.subnets[0].range_end) == (
        "10.89.77.254",
        "10.89.77.129",
        "10.89.77.190",
    )
    types = [p["type"] for p in config.conflist(again)["plugins"]]
    assert types == ["bridge", "tuning"]  # internal: no portmap; the firewall rules are hutch's, per network
    assert config.conflist(again)["plugins"][0]["ipMasq"] is False
    assert config.conflist(again)["plugins"][0]["ipam"]["routes"] == []
    assert [n.name for n in config.all_networks(root)] == ["hutch", "n1"]
    assert config.find(root, net.id[:6]).name == "n1"
    with pytest.raises(ExistsError):
        config.create(root, "n1", subnets=[], gateways=[], ip_ranges=[])
    with pytest.raises(ConfigError, match="already used"):
        config.create(root, "n2", subnets=["10.89.77.0/25"], gateways=[], ip_ranges=[])
    with pytest.raises(ConfigError, match="not in subnet"):
        config.create(root, "n3", subnets=["10.89.78.0/24"], gateways=["10.1.1.1"], ip_ranges=[])
    with pytest.raises(ConfigError, match="invalid argument"):
        config.create(root, "bad/name", subnets=[], gateways=[], ip_ranges=[])
    with pytest.raises(ConfigError, match="mtu"):
        config.create(root, "n5", subnets=[], gateways=[], ip_ranges=[], options=["mtu=10"])
    with pytest.raises(ConfigError, match="unsupported"):
        config.create(root, "n5", subnets=[], gateways=[], ip_ranges=[], options=["vlan=3"])
    second = config.create(root, "n4", subnets=[], gateways=[], ip_ranges=[], dns=False, options=["mtu=1400"])
    assert config.load(root, "n4").mtu == 1400 and config.conflist(second)["plugins"][0]["mtu"] == 1400
    assert not config.load(root, "n4").dns
    assert second.subnets[0].subnet.startswith("10.89.") and second.bridge != net.bridge


def test_plugin_errors_are_one_line(tmp_path: Path) -> None:
    conf = {"cniVersion": "1.0.0", "name": "x", "type": "nosuch"}
    with pytest.raises(cni.PluginError, match="CNI plugin 'nosuch' not found"):
        cni.invoke("ADD", conf, container_id="c", netns="/nonexistent", ifname="eth0")
    if not Path(cni.CNI_PATH, "bridge").exists():
        pytest.skip("no CNI plugins")
    bad = {"cniVersion": "1.0.0", "name": "x", "type": "bridge", "ipam": {}}
    with pytest.raises(cni.PluginError) as info:
        cni.invoke("ADD", bad, container_id="c", netns="/nonexistent", ifname="eth0")
    assert "\n" not in str(info.value) and "plugin bridge ADD" in str(info.value)
    version = subprocess.run(
        [str(Path(cni.CNI_PATH, "bridge"))], input=b"{}", env={"CNI_COMMAND": "VERSION"}, capture_output=True
    )
    assert b"1.0.0" in version.stdout


def test_inspect_created_is_gos_time_text() -> None:
    """podman's `created`: RFC 3339 with the nanoseconds' trailing zeros trimmed, as Go writes a time."""
    from hutch.engine.network import manage

    net = config.default_network()
    net.created = 1.5
    assert manage.inspect(net)["created"] == "1970-01-01T00:00:01.5Z"
    net.created = 0.0
    assert manage.inspect(net)["created"] == "0001-01-01T00:00:00Z"
