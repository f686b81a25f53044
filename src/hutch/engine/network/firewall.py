"""hutch's own firewall rules, per network rather than per container (as netavark keeps them): a chain per
bridge in the filter table (forwarding to and from the subnet accepted; on an --internal network, traffic
between the bridge and any other interface dropped) and one in the nat table (masquerade for the subnet,
but not within it or to multicast), each jumped to once from FORWARD or POSTROUTING.

`ensure` reads the tables (one iptables-save) and writes only what is missing or different (one
iptables-restore --noflush, whose chain declaration flushes and refills that chain in one transaction), so
it is idempotent, heals rules a firewall reload dropped, and costs nothing more than the read when all is in
place. Changing nf_tables rules waits for an RCU grace period (~15 ms a transaction here): that is why they
are made once per network, not per container. `remove` (network rm/prune) takes them away.
"""

from __future__ import annotations

import contextlib

from hutch.engine.network import locks, spawn
from hutch.errors import HostError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LOCK = f"{locks.LOCK_DIR}/firewall"
_TOOLS = {4: ("iptables-save", "iptables-restore"), 6: ("ip6tables-save", "ip6tables-restore")}
_MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}


class FirewallError(HostError):
    """iptables could not read or change the network's rules."""


def chains(bridge: str) -> dict[str, str]:
    """The network's chain in each table (a bridge name is unique on the host and at most 15 characters,
    so the names fit iptables' 28)."""
    return {"filter": f"HUTCH-FWD-{bridge}", "nat": f"HUTCH-NAT-{bridge}"}


def _families(subnets: list[str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for s in subnets:  # as config keeps them: normalized CIDR text (no ipaddress import in the helper)
        out.setdefault(6 if ":" in s else 4, []).append(s)
    return out


def wanted(bridge: str, subnets: list[str], internal: bool, version: int) -> dict[str, list[str]]:
    """Each table's chain body (iptables-save's own spelling, so it compares as text)."""
    names = chains(bridge)
    fwd, nat = names["filter"], names["nat"]
    mine = _families(subnets).get(version, [])
    if internal:
        # Within the bridge only: the gateway address still answers (DNS), the rest of the world does not.
        drops = [f"-A {fwd} -i {bridge} ! -o {bridge} -j DROP", f"-A {fwd} ! -i {bridge} -o {bridge} -j DROP"]
        return {"filter": drops}
    filter_rules: list[str] = []
    nat_rules: list[str] = []
    for s in mine:
        filter_rules.append(
            f"-A {fwd} -d {s} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        )
        filter_rules.append(f"-A {fwd} -s {s} -i {bridge} -j ACCEPT")
        nat_rules.append(f"-A {nat} -s {s} -d {s} -j RETURN")
        nat_rules.append(f"-A {nat} -s {s} -d {_MULTICAST[version]} -j RETURN")
        nat_rules.append(f"-A {nat} -s {s} -j MASQUERADE")
    return {"filter": filter_rules, "nat": nat_rules}


_HOOKS = {"filter": "FORWARD", "nat": "POSTROUTING"}


class Tables:
    """iptables-save's output: each table's chains and their rules, in order."""

    def __init__(self, text: str) -> None:
        self.chains: dict[str, dict[str, list[str]]] = {}
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
                self.chains.setdefault(table, {})
            elif line.startswith(":") and table:
                self.chains[table].setdefault(line[1:].split()[0], [])
            elif line.startswith("-A ") and table:
                self.chains[table].setdefault(line.split()[1], []).append(line.strip())

    def rules(self, table: str, chain: str) -> list[str] | None:
        """The chain's rules, or None when it does not exist."""
        return self.chains.get(table, {}).get(chain)


def plan_ensure(tables: Tables, bridge: str, body: dict[str, list[str]]) -> str:
    """The iptables-restore input that makes the chains `body` and their single jumps; '' when all is so."""
    out = []
    for table, rules in body.items():
        chain = chains(bridge)[table]
        hook = _HOOKS[table]
        jump = f"-A {hook} -j {chain}"
        lines = []
        if tables.rules(table, chain) != rules:
            lines += [f":{chain} - [0:0]", *rules]
        jumps = (tables.rules(table, hook) or []).count(jump)
        if jumps == 0:
            # Filter: first in FORWARD, ahead of any DROP another tool put there.
            lines.append(f"-I {hook} 1 -j {chain}" if table == "filter" else jump)
        lines += [f"-D {hook} -j {chain}"] * max(0, jumps - 1)
        if lines:
            out += [f"*{table}", *lines, "COMMIT"]
    return "\n".join(out) + "\n" if out else ""


def plan_remove(tables: Tables, bridge: str) -> str:
    """The iptables-restore input that removes the network's jumps and chains; '' when there are none."""
    out = []
    for table, chain in chains(bridge).items():
        hook = _HOOKS[table]
        lines = [f"-D {hook} -j {chain}"] * (tables.rules(table, hook) or []).count(f"-A {hook} -j {chain}")
        if tables.rules(table, chain) is not None:
            lines += [f"-F {chain}", f"-X {chain}"]
        if lines:
            out += [f"*{table}", *lines, "COMMIT"]
    return "\n".join(out) + "\n" if out else ""


def _locked() -> contextlib.AbstractContextManager[None]:
    """Host-wide: two commands checking then writing the same chains would each add the jump."""
    return locks.held(LOCK)


def _run(argv: list[str], stdin: str = "") -> str:
    try:
        code, out, err = spawn.run(argv, stdin=stdin.encode())
    except OSError as e:
        raise FirewallError(f"{argv[0]}: {e.strerror}") from None
    if code != 0:
        text = " ".join(err.decode(errors="replace").split()) or f"exit status {code}"
        raise FirewallError(f"{argv[0]}: {text}")
    return out.decode(errors="replace")


def _versions(subnets: list[str], internal: bool) -> list[int]:
    """The families whose tables hold the network's rules (v4 always: an internal network's isolation
    holds whatever its subnets)."""
    found = set(_families(subnets))
    return sorted(found | {4}) if internal or not found else sorted(found)


class Check:
    """ensure() split around other work: the tables are read (iptables-save started) now, and `finish`
    compares them and, only if something is missing, runs ensure() under the lock."""

    def __init__(self, bridge: str, subnets: list[str], internal: bool) -> None:
        self.args = (bridge, subnets, internal)
        self.saves: dict[int, spawn.Started] = {}
        try:
            for v in _versions(subnets, internal):
                self.saves[v] = spawn.Started([_TOOLS[v][0]])
        except OSError:
            self.reap()  # the one started before: no zombie, no pipes left
            raise

    def finish(self) -> bool:
        """Whether rules had to be written."""
        bridge, subnets, internal = self.args
        missing = False
        # Every read collected before any is judged: an error must not leave the other family's running.
        reads = {version: started.wait() for version, started in self.saves.items()}
        for version, (code, out, err) in reads.items():
            if code != 0:
                text = " ".join(err.decode(errors="replace").split()) or f"exit status {code}"
                raise FirewallError(f"{_TOOLS[version][0]}: {text}")
            body = wanted(bridge, subnets, internal, version)
            missing = missing or bool(plan_ensure(Tables(out.decode(errors="replace")), bridge, body))
        return ensure(*self.args) if missing else False

    def reap(self) -> None:
        """The reads collected and dropped (the setup they served failed)."""
        for started in self.saves.values():
            started.wait()


def ensure(bridge: str, subnets: list[str], internal: bool) -> bool:
    """The network's rules in place; whether any had to be written."""
    changed = False
    with _locked():
        for version in _versions(subnets, internal):
            save, restore = _TOOLS[version]
            tables = Tables(_run([save]))
            script = plan_ensure(tables, bridge, wanted(bridge, subnets, internal, version))
            if script:
                _run([restore, "--noflush"], script)
                changed = True
    return changed


def remove(bridge: str, subnets: list[str]) -> None:
    """The network's chains and jumps gone, in every family they may be in."""
    with _locked():
        for version in sorted(set(_families(subnets)) | {4}):
            save, restore = _TOOLS[version]
            script = plan_remove(Tables(_run([save])), bridge)
            if script:
                _run([restore, "--noflush"], script)


# --- a container's plan: each network's saved conf carries {"subnets", "internal"} as "rules" ------------


def check_saved(saved: dict[str, Any]) -> Check | None:
    """The check of a saved network's rules, started; None for a plan saved before hutch kept rules per
    network (its conflist still carries the per-container plugins)."""
    rules = saved.get("rules")
    if rules is None:
        return None
    try:
        return Check(saved["bridge"], rules["subnets"], rules["internal"])
    except OSError as e:
        raise FirewallError(f"iptables-save: {e.strerror}") from None


def ensure_saved(saved: dict[str, Any]) -> None:
    """ensure() for a saved network (nothing for a plan from before the per-network rules)."""
    rules = saved.get("rules")
    if rules is not None:
        ensure(saved["bridge"], rules["subnets"], rules["internal"])
