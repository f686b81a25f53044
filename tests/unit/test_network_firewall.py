"""The per-network firewall rules: what iptables-restore is given to make them, or to remove them, from
what iptables-save shows (pure text: the integration tests apply them)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pytest import MonkeyPatch

from hutch.engine.network import firewall

EMPTY = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
"""


def _saved(body: dict[str, list[str]], jumps: int = 1) -> str:
    """iptables-save's text with the network's chains `body` and `jumps` jumps to each."""
    out = []
    for table, hook in (("filter", "FORWARD"), ("nat", "POSTROUTING")):
        chain = firewall.chains("hutch3")[table]
        out += [f"*{table}", f":{hook} ACCEPT [0:0]", f":{chain} - [0:0]"]
        out += [f"-A {hook} -j {chain}"] * jumps
        out += body.get(table, [])
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def test_masquerade_and_forwarding_for_each_subnet_of_the_family() -> None:
    body = firewall.wanted("hutch3", ["10.89.3.0/24", "fd00:0:89:3::/64"], False, 4)
    assert body["nat"] == [
        "-A HUTCH-NAT-hutch3 -s 10.89.3.0/24 -d 10.89.3.0/24 -j RETURN",
        "-A HUTCH-NAT-hutch3 -s 10.89.3.0/24 -d 224.0.0.0/4 -j RETURN",
        "-A HUTCH-NAT-hutch3 -s 10.89.3.0/24 -j MASQUERADE",
    ]
    assert body["filter"][1] == "-A HUTCH-FWD-hutch3 -s 10.89.3.0/24 -i hutch3 -j ACCEPT"
    v6 = firewall.wanted("hutch3", ["10.89.3.0/24", "fd00:0:89:3::/64"], False, 6)
    assert v6["nat"][1] == "-A HUTCH-NAT-hutch3 -s fd00:0:89:3::/64 -d ff00::/8 -j RETURN"


def test_internal_drops_what_leaves_or_enters_the_bridge_and_has_no_nat() -> None:
    assert firewall.wanted("hutch3", ["10.89.3.0/24"], True, 4) == {
        "filter": [
            "-A HUTCH-FWD-hutch3 -i hutch3 ! -o hutch3 -j DROP",
            "-A HUTCH-FWD-hutch3 ! -i hutch3 -o hutch3 -j DROP",
        ]
    }


def test_ensure_on_a_bare_host_declares_the_chains_and_one_jump_each() -> None:
    body = firewall.wanted("hutch3", ["10.89.3.0/24"], False, 4)
    script = firewall.plan_ensure(firewall.Tables(EMPTY), "hutch3", body)
    lines = script.splitlines()
    assert lines[:2] == ["*filter", ":HUTCH-FWD-hutch3 - [0:0]"]
    assert "-I FORWARD 1 -j HUTCH-FWD-hutch3" in lines and "-A POSTROUTING -j HUTCH-NAT-hutch3" in lines
    assert lines.count("COMMIT") == 2 and script.endswith("COMMIT\n")


def test_ensure_writes_nothing_when_all_is_in_place() -> None:
    body = firewall.wanted("hutch3", ["10.89.3.0/24"], False, 4)
    assert firewall.plan_ensure(firewall.Tables(_saved(body)), "hutch3", body) == ""


def test_ensure_refills_a_flushed_chain_and_drops_extra_jumps() -> None:
    body = firewall.wanted("hutch3", ["10.89.3.0/24"], False, 4)
    saved = _saved({"filter": body["filter"]}, jumps=2)  # nat chain flushed, jumps doubled
    script = firewall.plan_ensure(firewall.Tables(saved), "hutch3", body)
    assert script == (
        "*filter\n-D FORWARD -j HUTCH-FWD-hutch3\nCOMMIT\n"
        "*nat\n:HUTCH-NAT-hutch3 - [0:0]\n"
        + "\n".join(body["nat"])
        + "\n-D POSTROUTING -j HUTCH-NAT-hutch3\nCOMMIT\n"
    )


def test_remove_takes_the_jumps_then_the_chains_and_nothing_when_gone() -> None:
    body = firewall.wanted("hutch3", ["10.89.3.0/24"], False, 4)
    script = firewall.plan_remove(firewall.Tables(_saved(body)), "hutch3")
    assert script == (
        "*filter\n-D FORWARD -j HUTCH-FWD-hutch3\n-F HUTCH-FWD-hutch3\n-X HUTCH-FWD-hutch3\nCOMMIT\n"
        "*nat\n-D POSTROUTING -j HUTCH-NAT-hutch3\n-F HUTCH-NAT-hutch3\n-X HUTCH-NAT-hutch3\nCOMMIT\n"
    )
    assert firewall.plan_remove(firewall.Tables(EMPTY), "hutch3") == ""
    # Another network's chains are not this one's, even when one name starts the other's.
    assert firewall.plan_remove(firewall.Tables(_saved(body)), "hutch") == ""


def test_a_failed_read_still_collects_the_other_familys(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    """iptables-save failing: the error is raised once ip6tables-save, started beside it, is collected
    too (no zombie child, no pipe left open)."""
    (tmp_path / "iptables-save").write_text("#!/bin/sh\necho 'no nf_tables here' >&2\nexit 1\n")
    (tmp_path / "ip6tables-save").write_text("#!/bin/sh\nsleep 0.2\necho '*filter'\necho COMMIT\n")
    for f in tmp_path.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    before = _open_fds()
    check = firewall.Check("hutch3", ["10.89.3.0/24", "fd00:0:89:3::/64"], False)
    with pytest.raises(firewall.FirewallError, match="iptables-save: no nf_tables here"):
        check.finish()
    assert [target for _, target in _open_fds() - before if target.startswith("pipe:")] == []
    time.sleep(0.5)  # ip6tables-save has ended by now: not collected, it would be our zombie child
    assert _children_named("iptables-save", "ip6tables-save") == []


def _open_fds() -> set[tuple[str, str]]:
    """(fd, what it points to) of this process: a pipe of the check left open shows as a new pair (counting
    all fds failed once when something else in the test process closed two meanwhile)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:  # the listing's own fd
            continue
    return found


def _children_named(*names: str) -> list[int]:
    """Our child processes (running or zombie) whose command is one of `names`; other tests' children
    (a registry server a fixture started, say) are not counted."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == os.getpid() and comm in names:
            found.append(int(entry))
    return found
