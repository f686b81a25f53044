"""hutch networks on CNI: containers on a user network talk by name and alias (aardvark-dns), the host
reaches published TCP and UDP ports on 127.0.0.1 and on its own address, an --internal network cannot reach
"the outside" (a network namespace the test makes, behind the host), --ip/--mac-address/--add-host/--dns*
are what the container sees, and `hutch network` manages the conflists. After each test nothing of the
containers is left: no netns file, veth, iptables rule, IPAM lease, DNS entry, or idle user bridge.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import IMAGE, hutch, ok

remote = run_suite.remote
root = run_suite.root

NETNS_DIR = Path("/run/hutch/netns")
IPAM_DIR = Path("/run/hutch/cni/ipam")
AARDVARK_DIR = Path("/run/hutch/aardvark")
OUTSIDE_NS = f"hutch-test-outside-{os.getpid()}"
OUTSIDE_HOST, OUTSIDE_PEER = "10.99.0.1", "10.99.0.2"

pytestmark = pytest.mark.skipif(not Path("/usr/lib/cni/bridge").exists(), reason="no CNI plugins")


def _iptables() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout


def _ifindexes() -> set[int]:
    out = set()
    for d in Path("/sys/class/net").iterdir():
        try:
            out.add(int((d / "ifindex").read_text()))
        except OSError:
            pass
    return out


def _veths_left(ifindexes: list[int], timeout: float = 3.0) -> list[int]:
    """Those of the veths' host ends still there once the kernel had time to destroy their namespaces
    (a container's namespace takes its interfaces with it, some milliseconds after its last user)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [i for i in ifindexes if i in _ifindexes()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def net_leftovers(cids: list[str], addresses: list[str], host_ifindexes: list[int]) -> list[str]:
    """What of these containers' networking is left on the host."""
    found = [f"netns {p}" for p in NETNS_DIR.glob("*") if p.name in cids] if NETNS_DIR.exists() else []
    rules = _iptables()
    found += [f"rule {line}" for line in rules.splitlines() if any(c in line for c in cids)]
    found += [f"rule {line}" for line in rules.splitlines() if any(f"{a}/32" in line for a in addresses)]
    ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    found += [
        f"nft {line.strip()}" for line in ruleset.splitlines() if any(f"{a} " in line for a in addresses)
    ]
    if IPAM_DIR.exists():
        for lease in IPAM_DIR.glob("*/*"):
            text = lease.read_text(errors="replace") if lease.is_file() else ""
            if any(text.startswith(c) for c in cids):
                found.append(f"lease {lease}")
    found += [f"veth ifindex {i}" for i in _veths_left(host_ifindexes)]
    if AARDVARK_DIR.exists():
        for f in AARDVARK_DIR.iterdir():
            if f.name != "aardvark.pid" and any(c in f.read_text() for c in cids):
                found.append(f"dns entry in {f}")
    return found


class Tracker:
    """The containers a test made, and what their networking looked like, for the leak check."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cids: list[str] = []
        self.addresses: list[str] = []
        self.ifindexes: list[int] = []

    def started(self, name: str) -> str:
        cid = ok(self.root, "inspect", "-f", "{{.Id}}", name).strip()
        self.cids.append(cid)
        self.seen(cid)
        return cid

    def seen(self, cid: str) -> None:
        """The container's addresses and its veths' host ends, read from inside its netns file."""
        path = NETNS_DIR / cid
        if not path.exists():
            return
        out = _in_netns(path, ["ip", "-o", "-4", "addr", "show", "scope", "global"])
        self.addresses += [line.split()[3].split("/")[0] for line in out.splitlines()]
        # `eth0@if18`: the peer's (the host end's) ifindex; /sys would show the host's own interfaces.
        out = _in_netns(path, ["ip", "-o", "link"])
        self.ifindexes += [int(m) for m in re.findall(r"^\d+: eth\d+@if(\d+):", out, re.MULTILINE)]


def _in_netns(path: Path, argv: list[str]) -> str:
    return subprocess.run(
        ["nsenter", f"--net={path}", *argv], capture_output=True, text=True, check=True
    ).stdout


def _bridges(root: Path) -> dict[str, str]:
    """Network name -> bridge, for this root's networks."""
    docs = json.loads(ok(root, "network", "inspect", *ok(root, "network", "ls", "-q").split()))
    return {d["name"]: d["network_interface"] for d in docs}


def chains_of(bridge: str) -> list[str]:
    """The lines of iptables-save that are the network's own rules (its chains and the jumps to them)."""
    pattern = re.compile(rf"HUTCH-(FWD|NAT)-{re.escape(bridge)}( |$)")
    return [line for line in _iptables().splitlines() if pattern.search(line)]


@pytest.fixture
def track(root: Path) -> Iterator[Tracker]:
    t = Tracker(root)
    yield t
    for cid in t.cids:
        hutch(root, "rm", "-f", cid)
    bridges = _bridges(root)
    for name in bridges:
        if name != "hutch":
            hutch(root, "network", "rm", "-f", name)
    assert net_leftovers(t.cids, t.addresses, t.ifindexes) == []
    assert [line for b in bridges.values() if b != "hutch0" for line in chains_of(b)] == []


def running(root: Path, *args: str) -> str:
    """`run -d`, then wait until the container's init runs."""
    cid = ok(root, "run", "-d", *args).strip()
    deadline = time.monotonic() + 10
    while ok(root, "inspect", "-f", "{{.State.Status}}", cid).strip() != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return cid


HTTPD = "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"


def test_two_containers_talk_by_name_and_alias(root: Path, track: Tracker) -> None:
    assert ok(root, "network", "create", "talk") == "talk\n"
    running(root, "--name", "web", "--network", "talk", "--network-alias", "www", IMAGE, "sh", "-c", HTTPD)
    cid = track.started("web")
    client = ["run", "--rm", "--network", "talk", IMAGE]
    out = ok(root, *client, "sh", "-c", "wget -qO- http://web:8080/ && wget -qO- http://www:8080/")
    assert out == f"hello from {cid[:12]}\n" * 2
    # resolv.conf points at the network's DNS server; the name is not known on the default network.
    assert "nameserver 10.89." in ok(root, *client, "cat", "/etc/resolv.conf")
    proc = hutch(root, "run", "--rm", IMAGE, "wget", "-qO-", "http://web:8080/")
    assert proc.returncode != 0
    # A user network's bridge goes with its last container.
    bridge = json.loads(ok(root, "network", "inspect", "talk"))[0]["network_interface"]
    assert Path(f"/sys/class/net/{bridge}").exists()
    ok(root, "rm", "-f", "web")
    assert not Path(f"/sys/class/net/{bridge}").exists()


def _host_address() -> str:
    out = subprocess.run(
        ["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True
    )
    addresses = [line.split()[3].split("/")[0] for line in out.stdout.splitlines()]
    addresses = [a for a in addresses if not a.startswith(("10.88.", "10.89.", OUTSIDE_HOST))]
    assert addresses, "the host has no address of its own"
    return addresses[0]


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_published_tcp_port_on_localhost_and_host_address(root: Path, track: Tracker) -> None:
    port = _free_port()
    running(root, "--name", "pub", "-p", f"{port}:8080", IMAGE, "sh", "-c", HTTPD)
    cid = track.started("pub")
    assert ok(root, "port", "pub") == f"8080/tcp -> 0.0.0.0:{port}\n"
    assert (
        ok(root, "ps", "--format", "{{.Names}} {{.Ports}}", "--filter", "name=^pub$")
        == f"pub 0.0.0.0:{port}->8080/tcp\n"
    )
    settings = json.loads(ok(root, "inspect", "pub"))[0]["NetworkSettings"]
    assert settings["Ports"] == {"8080/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    assert settings["IPAddress"].startswith("10.88.") and settings["Gateway"] == "10.88.0.1"
    assert list(settings["Networks"]) == ["hutch"]
    for host in ("127.0.0.1", _host_address()):
        body = urllib.request.urlopen(f"http://{host}:{port}/", timeout=5).read()
        assert body == f"hello from {cid[:12]}\n".encode()
    rules = _iptables()
    assert f"--dport {port}" in rules
    # reload puts back portmap's jump (this container's only) after a firewall reload dropped it.
    (jump,) = [line for line in rules.splitlines() if line.startswith("-A CNI-HOSTPORT-DNAT") and cid in line]
    subprocess.run(["iptables", "-t", "nat", *shlex.split(jump.replace("-A", "-D", 1))], check=True)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    assert ok(root, "network", "reload", "pub").strip() == cid
    assert (
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        == f"hello from {cid[:12]}\n".encode()
    )
    ok(root, "rm", "-f", "pub")
    assert f"--dport {port}" not in _iptables()


def test_published_udp_port(root: Path, track: Tracker) -> None:
    """busybox has no UDP server: a host process in the container's netns answers, which is what the
    port mapping reaches."""
    port = _free_port(socket.SOCK_DGRAM)
    running(root, "--name", "udp", "-p", f"127.0.0.1:{port}:5353/udp", IMAGE, "sleep", "60")
    cid = track.started("udp")
    assert ok(root, "port", "udp", "5353/udp") == f"127.0.0.1:{port}\n"
    server = subprocess.Popen(
        [
            "nsenter",
            f"--net={NETNS_DIR / cid}",
            "python3",
            "-c",
            "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',5353))\n"
            "print('ready',flush=True)\nd,a=s.recvfrom(100)\ns.sendto(b'echo:'+d,a)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline() == "ready\n"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"ping", ("127.0.0.1", port))
            assert s.recvfrom(100)[0] == b"echo:ping"
    finally:
        server.kill()
        server.wait()


@pytest.fixture
def outside() -> Iterator[str]:
    """'The outside': a netns behind the host (veth), serving HTTP on OUTSIDE_PEER:9000."""
    veth = f"hto{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", OUTSIDE_NS], check=True)
    server = None
    try:
        subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "out0", "netns", OUTSIDE_NS],
                       check=True)  # fmt: skip
        subprocess.run(["ip", "addr", "add", f"{OUTSIDE_HOST}/24", "dev", veth], check=True)
        subprocess.run(["ip", "link", "set", veth, "up"], check=True)
        for cmd in (["addr", "add", f"{OUTSIDE_PEER}/24", "dev", "out0"], ["link", "set", "out0", "up"],
                    ["link", "set", "lo", "up"]):  # fmt: skip
            subprocess.run(["ip", "-n", OUTSIDE_NS, *cmd], check=True)
        www = Path(f"/tmp/{OUTSIDE_NS}")
        www.mkdir(exist_ok=True)
        (www / "index.html").write_text("outside\n")
        server = subprocess.Popen(
            ["ip", "netns", "exec", OUTSIDE_NS, "busybox", "httpd", "-f", "-p", "9000", "-h", str(www)]
        )
        time.sleep(0.2)
        yield f"http://{OUTSIDE_PEER}:9000/"
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", veth], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", OUTSIDE_NS], check=False)


def test_internal_network_cannot_reach_the_outside(root: Path, track: Tracker, outside: str) -> None:
    # The default network reaches it (NAT through the host)...
    assert ok(root, "run", "--rm", IMAGE, "wget", "-qO-", outside) == "outside\n"
    # ...an --internal network neither it nor the host's own address.
    ok(root, "network", "create", "--internal", "sealed")
    assert json.loads(ok(root, "network", "inspect", "sealed"))[0]["internal"] is True
    for url in (outside, f"http://{_host_address()}:9/"):
        proc = hutch(root, "run", "--rm", "--network", "sealed", IMAGE, "wget", "-qO-", url)
        assert proc.returncode != 0
        assert "unreachable" in proc.stderr
    # Containers on it still talk to each other.
    running(root, "--name", "inner", "--network", "sealed", IMAGE, "sh", "-c", HTTPD)
    cid = track.started("inner")
    out = ok(root, "run", "--rm", "--network", "sealed", IMAGE, "wget", "-qO-", "http://inner:8080/")
    assert out == f"hello from {cid[:12]}\n"


def test_ip_and_mac_address_seen_inside(root: Path, track: Tracker) -> None:
    ok(root, "network", "create", "--subnet", "10.89.200.0/24", "--gateway", "10.89.200.254", "fixed")
    running(root, "--name", "fixed1", "--network", "fixed", "--ip", "10.89.200.7", "--mac-address",
            "02:42:0a:59:c8:07", IMAGE, "sleep", "60")  # fmt: skip
    track.started("fixed1")
    out = ok(root, "exec", "fixed1", "ip", "addr", "show", "eth0")
    assert "inet 10.89.200.7/24" in out and "link/ether 02:42:0a:59:c8:07" in out
    assert "default via 10.89.200.254" in ok(root, "exec", "fixed1", "ip", "route")
    assert "10.89.200.7\t" in ok(root, "exec", "fixed1", "cat", "/etc/hosts")
    # The address is taken while fixed1 runs.
    proc = hutch(root, "run", "--rm", "--network", "fixed", "--ip", "10.89.200.7", IMAGE, "true")
    assert proc.returncode == 125 and proc.stderr.startswith("Error: ") and "10.89.200.7" in proc.stderr
    # Bad values: one line, exit 125, nothing made.
    before = ok(root, "ps", "-aq")
    for flags in (["--ip", "10.1.2.3"], ["--ip", "nope"], ["--mac-address", "zz"], ["-p", "70000:80"]):
        proc = hutch(root, "run", "--rm", "--network", "fixed", *flags, IMAGE, "true")
        assert proc.returncode == 125, flags
        assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert ok(root, "ps", "-aq") == before


def test_add_host_dns_in_etc_files(root: Path, track: Tracker) -> None:
    out = ok(root, "run", "--rm", "--name", "etc", "--hostname", "box", "--add-host", "db.local:10.1.2.3",
             "--dns", "10.9.9.9", "--dns-search", "example.test", "--dns-option", "ndots:3", IMAGE,
             "sh", "-c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf")  # fmt: skip
    hosts, resolv = out.split("---\n")
    assert "10.1.2.3\tdb.local\n" in hosts
    assert any(line.startswith("10.88.") and line.endswith("box etc") for line in hosts.splitlines())
    assert resolv == "search example.test\nnameserver 10.9.9.9\noptions ndots:3\n"
    proc = hutch(root, "run", "--rm", "--add-host", "nocolon", IMAGE, "true")
    assert proc.returncode == 125 and "--add-host" in proc.stderr


def test_network_commands(root: Path, track: Tracker) -> None:
    ok(root, "network", "create", "--subnet", "10.89.210.0/24", "--ip-range", "10.89.210.128/25",
       "--label", "team=a", "n1")  # fmt: skip
    doc = json.loads(ok(root, "network", "inspect", "n1"))[0]
    assert doc["subnets"] == [
        {"subnet": "10.89.210.0/24", "gateway": "10.89.210.1",
         "lease_range": {"start_ip": "10.89.210.129", "end_ip": "10.89.210.254"}}
    ]  # fmt: skip
    assert doc["labels"] == {"team": "a"} and doc["driver"] == "bridge" and doc["dns_enabled"] is True
    assert (Path(root) / "networks" / "n1.conflist").exists()
    lines = ok(root, "network", "ls").splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER"]
    assert any(line.split()[1:] == ["n1", "bridge"] for line in lines[1:])
    assert ok(root, "network", "ls", "-q").split() == ["hutch", "n1"]
    assert (
        ok(root, "network", "ls", "--format", "{{.Name}}:{{.Driver}}", "--filter", "label=team=a")
        == "n1:bridge\n"
    )
    proc = hutch(root, "network", "create", "n1")
    assert proc.returncode == 125 and "already exists" in proc.stderr
    proc = hutch(root, "network", "create", "--subnet", "10.89.210.0/25", "n2")
    assert proc.returncode == 125 and "already used" in proc.stderr
    assert hutch(root, "network", "exists", "n2").returncode == 1

    # A container from the range; rm refuses while it exists (2), -f removes it too.
    running(root, "--name", "member", "--network", "n1", IMAGE, "sleep", "60")
    track.started("member")
    addr = ok(root, "exec", "member", "ip", "-o", "-4", "addr", "show", "eth0").split()[3]
    assert addr.startswith("10.89.210.") and int(addr.split(".")[3].split("/")[0]) > 128
    # connect and disconnect while it runs: a second interface, then gone.
    ok(root, "network", "create", "n3")
    ok(root, "network", "connect", "n3", "member")
    assert "eth1" in ok(root, "exec", "member", "ip", "-o", "link")
    track.seen(track.cids[-1])
    # reload puts back the network's rules a firewall reload dropped, keeping the address and interface.
    bridge = json.loads(ok(root, "network", "inspect", "n1"))[0]["network_interface"]
    link = ok(root, "exec", "member", "ip", "-o", "link", "show", "eth0").split(":")[0]
    subprocess.run(["iptables", "-t", "nat", "-F", f"HUTCH-NAT-{bridge}"], check=True)
    subprocess.run(["iptables", "-D", "FORWARD", "-j", f"HUTCH-FWD-{bridge}"], check=True)
    assert f"-A HUTCH-NAT-{bridge} -s 10.89.210.0/24 -j MASQUERADE" not in _iptables()
    assert ok(root, "network", "reload", "member").strip() == track.cids[-1]
    rules = _iptables()
    assert f"-A HUTCH-NAT-{bridge} -s 10.89.210.0/24 -j MASQUERADE" in rules
    assert rules.count(f"-A FORWARD -j HUTCH-FWD-{bridge}\n") == 1
    assert ok(root, "exec", "member", "ip", "-o", "-4", "addr", "show", "eth0").split()[3] == addr
    assert ok(root, "exec", "member", "ip", "-o", "link", "show", "eth0").split(":")[0] == link
    # reload ends with the plugins' CHECK: an address gone from the interface is reported, not hidden.
    netns = f"/proc/{ok(root, 'inspect', '-f', '{{.State.Pid}}', 'member').strip()}/ns/net"
    subprocess.run(["nsenter", f"--net={netns}", "ip", "addr", "del", addr, "dev", "eth0"], check=True)
    proc = hutch(root, "network", "reload", "member")
    assert proc.returncode == 125 and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(f"Error: network n1: plugin bridge CHECK: Failed to match addr {addr}")
    subprocess.run(["nsenter", f"--net={netns}", "ip", "addr", "add", addr, "dev", "eth0"], check=True)
    subprocess.run(
        ["nsenter", f"--net={netns}", "ip", "route", "add", "default", "via", addr.rsplit(".", 1)[0] + ".1"],
        check=False,
    )
    assert ok(root, "network", "reload", "member").strip() == track.cids[-1]
    ok(root, "network", "disconnect", "n3", "member")
    assert "eth1" not in ok(root, "exec", "member", "ip", "-o", "link")
    proc = hutch(root, "network", "rm", "n1")
    assert proc.returncode == 2 and "network is being used" in proc.stderr
    proc = hutch(root, "network", "rm", "nosuch")
    assert proc.returncode == 1 and "network not found" in proc.stderr
    assert ok(root, "network", "rm", "-f", "n1") == "n1\n"
    assert hutch(root, "inspect", "member").returncode != 0
    assert ok(root, "network", "prune", "-f") == "n3\n"
    assert ok(root, "network", "ls", "-q") == "hutch\n"
    proc = hutch(root, "network", "rm", "hutch")
    assert proc.returncode == 125 and "cannot be removed" in proc.stderr


def test_none_host_and_container_modes(root: Path, track: Tracker) -> None:
    assert ok(root, "run", "--rm", "--network", "none", IMAGE, "ls", "/sys/class/net") == "lo\n"
    running(root, "--name", "owner", IMAGE, "sleep", "60")
    track.started("owner")
    mine = ok(root, "exec", "owner", "ip", "-o", "-4", "addr", "show", "eth0").split()[3]
    joined = ok(
        root, "run", "--rm", "--network", "container:owner", IMAGE, "ip", "-o", "-4", "addr", "show", "eth0"
    )
    assert joined.split()[3] == mine
    # It sees the owner's /etc/hosts (its address under the owner's name), after its own --add-host.
    hosts = ok(root, "run", "--rm", "--network", "container:owner", "--add-host", "x.test:10.2.3.4", IMAGE,
               "cat", "/etc/hosts")  # fmt: skip
    assert (
        hosts.startswith("10.2.3.4\tx.test\n") and f"{mine.split('/')[0]}\t" in hosts and " owner\n" in hosts
    )
    proc = hutch(root, "run", "--rm", "--network", "none", "-p", "8080:80", IMAGE, "true")
    assert proc.returncode == 125 and "-p" in proc.stderr


def test_killed_engine_then_rm_force_cleans_up(root: Path, track: Tracker) -> None:
    """A foreground run whose hutch is SIGKILLed leaves its container; `rm -f` takes the network with it."""
    proc = subprocess.Popen(
        [*run_suite.HUTCH, "--root", str(root), "run", "--name", "orphan", "-p", f"{_free_port()}:80", IMAGE,
         "sleep", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while hutch(root, "inspect", "-f", "{{.State.Status}}", "orphan").stdout.strip() != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cid = track.started("orphan")
    proc.kill()
    proc.wait()
    assert (NETNS_DIR / cid).exists()
    ok(root, "rm", "-f", "orphan")
    assert net_leftovers([cid], track.addresses, track.ifindexes) == []


def test_failed_starts_leave_nothing(root: Path, track: Tracker) -> None:
    """A command that is not there (127, after the plugins ran) and a plugin that fails (an address in use:
    125) leave no netns, rule, lease or DNS name of the container, which stays created."""
    ok(root, "network", "create", "--subnet", "10.89.220.0/24", "failing")
    running(root, "--name", "holder", "--network", "failing", "--ip", "10.89.220.9", IMAGE, "sleep", "60")
    track.started("holder")
    port = _free_port()
    missing = ok(root, "create", "--network", "failing", "-p", f"{port}:80", IMAGE, "no-such-command").strip()
    taken = ok(root, "create", "--network", "failing", "--ip", "10.89.220.9", IMAGE, "true").strip()
    track.cids += [missing, taken]
    proc = hutch(root, "start", "-a", missing)
    assert proc.returncode == 127 and proc.stderr.startswith("Error: ")
    proc = hutch(root, "start", "-a", taken)
    assert proc.returncode == 125 and proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1
    assert "10.89.220.9" in proc.stderr
    for cid in (missing, taken):
        assert ok(root, "inspect", "-f", "{{.State.Status}}", cid) == "created\n"
    assert net_leftovers([missing, taken], [], []) == []
    assert f"--dport {port}" not in _iptables()
    leases = [p.name for p in (IPAM_DIR / "failing").iterdir() if p.name[0].isdigit()]
    assert leases == ["10.89.220.9"]


def test_publish_all_and_several_networks(root: Path, track: Tracker) -> None:
    """-P publishes the image's EXPOSEd ports on free host ports; a container on two networks has an
    interface and an address on each, and a name on the user network."""
    proc = subprocess.run(
        [
            *run_suite.HUTCH,
            "--root",
            str(root),
            "import",
            "-q",
            "-c",
            "EXPOSE 8080/tcp",
            "-",
            "localhost/exposed:1",
        ],
        input=run_suite._tar_layer(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    ok(root, "network", "create", "second")
    running(
        root, "--name", "multi", "-P", "--network", "bridge,second", "localhost/exposed:1", "sh", "-c", HTTPD
    )
    cid = track.started("multi")
    (line,) = ok(root, "port", "multi").splitlines()
    assert line.startswith("8080/tcp -> 0.0.0.0:")
    port = int(line.rsplit(":", 1)[1])
    assert (
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        == f"hello from {cid[:12]}\n".encode()
    )
    links = ok(root, "exec", "multi", "ip", "-o", "-4", "addr")
    assert " eth0 " in links and " eth1 " in links and "10.88." in links and "10.89." in links
    assert sorted(json.loads(ok(root, "inspect", "multi"))[0]["NetworkSettings"]["Networks"]) == [
        "hutch",
        "second",
    ]
    out = ok(root, "run", "--rm", "--network", "second", IMAGE, "wget", "-qO-", "http://multi:8080/")
    assert out == f"hello from {cid[:12]}\n"


def test_network_rules_follow_the_network(root: Path, track: Tracker, outside: str) -> None:
    """A network's own firewall chains (masquerade, forwarding; isolation when --internal) appear with its
    first container, are made once however many run, stay while the network exists and go with `network
    rm` and `prune`: its containers reach the outside through the host, which has no route back to them."""
    ok(root, "network", "create", "--subnet", "10.89.230.0/24", "ruled")
    bridge = _bridges(root)["ruled"]
    assert chains_of(bridge) == []
    assert ok(root, "run", "--rm", "--network", "ruled", IMAGE, "wget", "-qO-", outside) == "outside\n"
    expected = [
        f":HUTCH-FWD-{bridge} - [0:0]",
        f"-A FORWARD -j HUTCH-FWD-{bridge}",
        f"-A HUTCH-FWD-{bridge} -d 10.89.230.0/24 -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A HUTCH-FWD-{bridge} -s 10.89.230.0/24 -i {bridge} -j ACCEPT",
        f":HUTCH-NAT-{bridge} - [0:0]",
        f"-A POSTROUTING -j HUTCH-NAT-{bridge}",
        f"-A HUTCH-NAT-{bridge} -s 10.89.230.0/24 -d 10.89.230.0/24 -j RETURN",
        f"-A HUTCH-NAT-{bridge} -s 10.89.230.0/24 -d 224.0.0.0/4 -j RETURN",
        f"-A HUTCH-NAT-{bridge} -s 10.89.230.0/24 -j MASQUERADE",
    ]
    assert chains_of(bridge) == expected
    # Containers starting at once on a network whose rules were removed behind its back make them once.
    subprocess.run(["iptables", "-D", "FORWARD", "-j", f"HUTCH-FWD-{bridge}"], check=True)
    subprocess.run(["iptables", "-F", f"HUTCH-FWD-{bridge}"], check=True)
    subprocess.run(["iptables", "-X", f"HUTCH-FWD-{bridge}"], check=True)
    argv = [*run_suite.HUTCH, "--root", str(root), "run", "--rm", "--network", "ruled", IMAGE, "true"]
    procs = [subprocess.Popen(argv, stderr=subprocess.PIPE) for _ in range(4)]
    assert [p.wait() for p in procs] == [0] * 4, [p.stderr.read() for p in procs if p.stderr]
    assert chains_of(bridge) == expected
    # No rule per container: two at once add nothing, and the chains outlive them (the bridge does not).
    running(root, "--name", "r1", "--network", "ruled", IMAGE, "sleep", "60")
    track.started("r1")
    assert ok(root, "run", "--rm", "--network", "ruled", IMAGE, "wget", "-qO-", outside) == "outside\n"
    assert chains_of(bridge) == expected
    # A firewall reload that dropped them is healed by the next container of the network.
    subprocess.run(["iptables", "-t", "nat", "-F", f"HUTCH-NAT-{bridge}"], check=True)
    subprocess.run(["iptables", "-I", "FORWARD", "-j", f"HUTCH-FWD-{bridge}"], check=True)  # a second jump
    assert ok(root, "run", "--rm", "--network", "ruled", IMAGE, "wget", "-qO-", outside) == "outside\n"
    assert chains_of(bridge) == expected
    ok(root, "rm", "-f", "r1")
    assert not Path(f"/sys/class/net/{bridge}").exists()
    assert chains_of(bridge) == expected
    assert ok(root, "network", "rm", "ruled") == "ruled\n"
    assert chains_of(bridge) == []

    # --internal: forwarding off the bridge dropped both ways, no masquerade; prune takes them.
    ok(root, "network", "create", "--internal", "walled")
    bridge = _bridges(root)["walled"]
    assert hutch(root, "run", "--rm", "--network", "walled", IMAGE, "wget", "-qO-", outside).returncode != 0
    assert chains_of(bridge) == [
        f":HUTCH-FWD-{bridge} - [0:0]",
        f"-A FORWARD -j HUTCH-FWD-{bridge}",
        f"-A HUTCH-FWD-{bridge} -i {bridge} ! -o {bridge} -j DROP",
        f"-A HUTCH-FWD-{bridge} ! -i {bridge} -o {bridge} -j DROP",
    ]
    assert ok(root, "network", "prune", "-f") == "walled\n"
    assert chains_of(bridge) == []
    # The default network's stay, as its bridge does.
    ok(root, "run", "--rm", IMAGE, "true")
    assert "-A HUTCH-NAT-hutch0 -s 10.88.0.0/16 -j MASQUERADE" in chains_of("hutch0")


def test_killed_run_then_rm_force_and_system_prune_clean_up(root: Path, track: Tracker) -> None:
    """A SIGKILLed foreground run on a user network with a published port: `rm -f` takes the container's
    part (veth, netns, lease, DNAT), `system prune` the network's (conflist, chains, bridge)."""
    ok(root, "network", "create", "crashy")
    bridge = _bridges(root)["crashy"]
    port = _free_port()
    proc = subprocess.Popen(
        [*run_suite.HUTCH, "--root", str(root), "run", "--name", "victim", "--network", "crashy", "-p",
         f"{port}:80", IMAGE, "sleep", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while hutch(root, "inspect", "-f", "{{.State.Status}}", "victim").stdout.strip() != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cid = track.started("victim")
    proc.kill()
    proc.wait()
    assert chains_of(bridge) and f"--dport {port}" in _iptables()
    ok(root, "rm", "-f", "victim")
    assert net_leftovers([cid], track.addresses, track.ifindexes) == []
    assert f"--dport {port}" not in _iptables()
    assert "crashy" in ok(root, "system", "prune", "-f")
    assert chains_of(bridge) == []
    assert not Path(f"/sys/class/net/{bridge}").exists()
    assert not (Path(root) / "networks" / "crashy.conflist").exists()
    assert not [p for p in (IPAM_DIR / "crashy").glob("*") if p.name[0].isdigit()]


def test_owner_removed_under_a_joined_container_takes_its_interface(root: Path, track: Tracker) -> None:
    """A container's namespace takes its veth with it when nothing else lives in it; when another container
    joined it (--network container:), rm of the owner deletes the interface there and then (the joiner keeps
    lo only) and frees the address, rather than leave a released address on a live interface."""
    running(root, "--name", "host1", IMAGE, "sleep", "60")
    cid = track.started("host1")
    address = track.addresses[-1]
    running(root, "--name", "guest", "--network", "container:host1", IMAGE, "sleep", "60")
    guest = track.started("guest")
    assert f"inet {address}/16" in ok(root, "exec", "guest", "ip", "-o", "-4", "addr")
    ok(root, "rm", "-f", "host1")
    assert ok(root, "exec", "guest", "ls", "/sys/class/net") == "lo\n"
    assert net_leftovers([cid], [address], track.ifindexes) == []
    assert not (IPAM_DIR / "hutch" / address).exists()
    ok(root, "rm", "-f", guest)


def test_ipv6_network_rules_in_ip6tables(root: Path, track: Tracker) -> None:
    """An --ipv6 network's masquerade and forwarding rules are made for its IPv6 subnet too, and go."""
    ok(
        root,
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.89.240.0/24",
        "--subnet",
        "fd00:0:89:f0::/64",
        "six",
    )
    bridge = _bridges(root)["six"]
    out = ok(
        root,
        "run",
        "--rm",
        "--network",
        "six",
        IMAGE,
        "ip",
        "-o",
        "-6",
        "addr",
        "show",
        "eth0",
        "scope",
        "global",
    )
    assert "inet6 fd00:0:89:f0::" in out

    def v6_rules() -> list[str]:
        text = subprocess.run(["ip6tables-save"], capture_output=True, text=True, check=True).stdout
        return [line for line in text.splitlines() if f"-{bridge} " in line or line.endswith(f"-{bridge}")]

    assert f"-A HUTCH-NAT-{bridge} -s fd00:0:89:f0::/64 -j MASQUERADE" in v6_rules()
    assert f"-A HUTCH-NAT-{bridge} -s 10.89.240.0/24 -j MASQUERADE" in chains_of(bridge)
    ok(root, "network", "rm", "six")
    assert v6_rules() == [] and chains_of(bridge) == []
