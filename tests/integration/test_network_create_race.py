"""`hutch network create` and `rm` beside other commands and the host: concurrent creates each get a name,
bridge and subnet of their own (chosen and written under one host-wide lock); a subnet of the host's own is
refused; rm deletes an idle bridge only under the bridge's lock."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.integration.test_engine_run import HUTCH, hutch, ok

pytestmark = pytest.mark.skipif(not Path("/usr/lib/cni/bridge").exists(), reason="no CNI plugins")


def test_concurrent_creates_get_distinct_bridges_and_subnets(tmp_path: Path) -> None:
    names = [f"race{i}" for i in range(6)]
    procs = [
        subprocess.Popen(
            [*HUTCH, "--root", str(tmp_path), "network", "create", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    docs = json.loads(ok(tmp_path, "network", "inspect", *names))
    bridges = [d["network_interface"] for d in docs]
    subnets = [d["subnets"][0]["subnet"] for d in docs]
    assert len(set(bridges)) == len(names), bridges
    assert len(set(subnets)) == len(names), subnets


def test_concurrent_unnamed_creates_get_distinct_names(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [*HUTCH, "--root", str(tmp_path), "network", "create"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    out = []
    for p in procs:
        stdout, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        out.append(stdout.strip())
    assert len(set(out)) == 4, out


def _host_link_subnet() -> str:
    """A subnet of the host's own (a link route of an interface that is not a container bridge)."""
    out = subprocess.run(["ip", "-4", "route", "show", "scope", "link"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        cols = line.split()
        dev = cols[cols.index("dev") + 1] if "dev" in cols else ""
        if "/" in cols[0] and not dev.startswith(("hutch", "cni-", "podman")):
            return cols[0]
    raise AssertionError(f"no link route of the host's own: {out.stdout!r}")


def test_a_subnet_the_host_uses_is_refused(tmp_path: Path) -> None:
    """As podman: a --subnet overlapping a host interface's would shadow the host's own route."""
    subnet = _host_link_subnet()
    proc = hutch(tmp_path, "network", "create", "--subnet", subnet, "shadow")
    assert proc.returncode == 125, proc.stdout
    assert proc.stderr == f"Error: subnet {subnet} is already used on the host or by another config\n"
    assert not (tmp_path / "networks" / "shadow.conflist").exists()


def test_network_rm_takes_the_bridge_lock(tmp_path: Path) -> None:
    """network rm deletes an idle bridge under the bridge's lock, as teardown does: a container's ADD,
    which holds it, never has the bridge deleted under it."""
    import fcntl
    import os
    import time

    ok(tmp_path, "network", "create", "locked")
    bridge = json.loads(ok(tmp_path, "network", "inspect", "locked"))[0]["network_interface"]
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)  # as a crash left it
    lock = f"/run/hutch/cni/locks/{bridge}"
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # an ADD on this bridge in progress
        proc = subprocess.Popen(
            [*HUTCH, "--root", str(tmp_path), "network", "rm", "locked"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)
        assert Path(f"/sys/class/net/{bridge}").exists()
        fcntl.flock(fd, fcntl.LOCK_UN)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert not Path(f"/sys/class/net/{bridge}").exists()
    finally:
        os.close(fd)
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)


def test_network_rm_goes_past_one_it_cannot_remove(tmp_path: Path) -> None:
    """As podman: each network's error is a line, and the others are still removed."""
    ok(tmp_path, "network", "create", "gone")
    proc = hutch(tmp_path, "network", "rm", "hutch", "gone")
    assert proc.returncode == 125
    assert proc.stderr == "Error: default network hutch cannot be removed\n"
    assert proc.stdout == "gone\n"
    assert not (tmp_path / "networks" / "gone.conflist").exists()
