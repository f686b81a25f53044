"""Pods and networks under concurrent commands and bad input: two members started at once both join the
infra container one of them started; a pod name podman would refuse is refused, leaving nothing behind;
`network reload` goes past a container with nothing to reload, or one that fails."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import HUTCH, IMAGE, hutch, ok

remote = run_suite.remote
root = run_suite.root


def test_two_members_started_at_once_share_the_infra(root: Path) -> None:
    ok(root, "pod", "create", "--name", "race")
    try:
        for name in ("race-a", "race-b"):
            ok(root, "create", "--pod", "race", "--name", name, IMAGE, "sleep", "30")
        ok(root, "pod", "stop", "-t", "0", "race")  # the infra, started by the creates, stopped
        procs = [
            subprocess.Popen(
                [*HUTCH, "--root", str(root), "start", name],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("race-a", "race-b")
        ]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
        hostnames = {ok(root, "exec", name, "hostname").strip() for name in ("race-a", "race-b")}
        assert hostnames == {"race"}
        doc = json.loads(ok(root, "pod", "inspect", "race"))
        assert {c["State"] for c in doc["Containers"]} == {"running"}
    finally:
        ok(root, "pod", "rm", "-f", "race")


def test_a_bad_pod_name_is_refused(root: Path) -> None:
    before = ok(root, "ps", "-a", "-q")
    for bad in ("a/b", "-x", "with space"):
        proc = hutch(root, "pod", "create", f"--name={bad}")
        assert proc.returncode == 125, proc.stderr
        assert proc.stderr.startswith("Error: ") and "[a-zA-Z0-9][a-zA-Z0-9_.-]*" in proc.stderr
    assert ok(root, "pod", "ps", "-q") == ""
    assert ok(root, "ps", "-a", "-q") == before


def test_a_missing_pod_is_podmans_one_line(root: Path) -> None:
    proc = hutch(root, "pod", "inspect", "nosuchpod")
    assert proc.returncode == 125
    assert proc.stderr == "Error: no pod with name or ID nosuchpod found: no such pod\n"


def test_reload_all_goes_past_a_container_without_networks(root: Path) -> None:
    """podman's `network reload --all` reloads every running container; one with --network none has
    nothing to reload (it was refused, and the reload stopped there)."""
    none = ok(root, "run", "-d", "--network", "none", IMAGE, "sleep", "30").strip()
    bridged = ok(root, "run", "-d", IMAGE, "sleep", "30").strip()
    try:
        proc = hutch(root, "network", "reload", "--all")
        assert proc.returncode == 0, proc.stderr
        assert set(proc.stdout.split()) >= {none, bridged}
    finally:
        hutch(root, "rm", "-f", "-t", "0", none, bridged)


def test_reload_all_says_each_error_and_reloads_the_rest(root: Path) -> None:
    host = ok(root, "run", "-d", "--network", "host", IMAGE, "sleep", "30").strip()
    bridged = ok(root, "run", "-d", IMAGE, "sleep", "30").strip()
    try:
        proc = hutch(root, "network", "reload", host, bridged)
        assert proc.returncode == 125
        assert proc.stdout.split() == [bridged]
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("Error: ")
    finally:
        hutch(root, "rm", "-f", "-t", "0", host, bridged)


def test_host_gateway_without_a_network_is_refused(root: Path) -> None:
    """--add-host NAME:host-gateway names the network's gateway: with --network none there is none (the
    hosts file had a line with no address), and podman refuses it too."""
    before = ok(root, "ps", "-a", "-q")
    proc = hutch(
        root, "run", "--rm", "--network", "none", "--add-host", "gw:host-gateway", IMAGE, "cat", "/etc/hosts"
    )
    assert proc.returncode == 125, proc.stdout
    assert proc.stderr.startswith("Error: --add-host") and len(proc.stderr.splitlines()) == 1
    assert ok(root, "ps", "-a", "-q") == before
    hosts = ok(root, "run", "--rm", "--add-host", "gw:host-gateway", IMAGE, "cat", "/etc/hosts")
    assert "10.88.0.1\tgw\n" in hosts


def test_a_refused_member_leaves_the_infra_as_it_was(root: Path) -> None:
    """run --pod with -p is refused (the pod's ports are its infra's) before the infra is started."""
    ok(root, "pod", "create", "--name", "still")
    try:
        infra = json.loads(ok(root, "pod", "inspect", "still"))["InfraContainerID"]
        proc = hutch(root, "run", "--rm", "--pod", "still", "-p", "8080", IMAGE, "true")
        assert proc.returncode == 125 and proc.stderr.startswith("Error: -p"), proc.stderr
        assert ok(root, "inspect", "-f", "{{.State.Status}}", infra).strip() == "created"
    finally:
        ok(root, "pod", "rm", "-f", "still")


def test_pod_pause_all_goes_past_a_pod_it_cannot_pause(root: Path) -> None:
    """As podman: each pod's error is said and the other pods are still acted on (exit 125)."""
    ok(root, "pod", "create", "--name", "idle")  # nothing of it runs
    ok(root, "pod", "create", "--name", "busy")
    try:
        ok(root, "run", "-d", "--pod", "busy", "--name", "busy-1", IMAGE, "sleep", "30")
        proc = hutch(root, "pod", "pause", "--all")
        assert proc.returncode == 125
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("Error: ")
        busy = json.loads(ok(root, "pod", "inspect", "busy"))["Id"]
        assert proc.stdout.split() == [busy]
        assert ok(root, "inspect", "-f", "{{.State.Status}}", "busy-1").strip() == "paused"
    finally:
        hutch(root, "pod", "unpause", "busy")
        hutch(root, "pod", "rm", "-f", "idle", "busy")


def test_table_formats_have_podmans_header(root: Path) -> None:
    """network ls and pod ps --format 'table ...': a header line of the columns' titles (not with
    --noheading), as podman prints it; a plain template prints the rows alone."""
    lines = ok(root, "network", "ls", "--format", "table {{.Name}}\t{{.ID}}").splitlines()
    assert lines[0].split() == ["NAME", "NETWORK", "ID"] and any(ln.split()[0] == "hutch" for ln in lines[1:])
    plain = ok(root, "network", "ls", "--noheading", "--format", "table {{.Name}}").split()
    assert "NAME" not in plain and "hutch" in plain
    ok(root, "pod", "create", "--name", "fmt")
    try:
        lines = ok(root, "pod", "ps", "--format", "table {{.Name}}\t{{.Status}}").splitlines()
        assert lines[0].split() == ["NAME", "STATUS"] and ["fmt", "Created"] in [ln.split() for ln in lines]
        assert ok(root, "pod", "ps", "--format", "{{.Name}}").split() == ["fmt"]
    finally:
        ok(root, "pod", "rm", "-f", "fmt")


def test_pod_rm_refuses_a_pod_whose_infra_runs(root: Path) -> None:
    """podman's pod rm without -f refuses a pod any of whose containers runs, its infra too."""
    ok(root, "pod", "create", "--name", "held")
    try:
        ok(root, "run", "--pod", "held", "--name", "held-1", IMAGE, "true")  # starts the infra
        infra = json.loads(ok(root, "pod", "inspect", "held"))["InfraContainerID"]
        assert ok(root, "inspect", "-f", "{{.State.Status}}", infra).strip() == "running"
        proc = hutch(root, "pod", "rm", "held")
        assert proc.returncode == 125 and infra in proc.stderr, proc.stderr
        assert ok(root, "inspect", "-f", "{{.State.Status}}", infra).strip() == "running"
    finally:
        ok(root, "pod", "rm", "-f", "held")


def test_pod_stats_rows_are_the_running_containers(root: Path) -> None:
    """As podman's pod stats: a container of the pod that is not running has no row."""
    ok(root, "pod", "create", "--name", "half")
    try:
        ok(root, "run", "-d", "--pod", "half", "--name", "half-up", IMAGE, "sleep", "30")
        ok(root, "run", "--pod", "half", "--name", "half-done", IMAGE, "true")
        docs = json.loads(ok(root, "pod", "stats", "--no-stream", "--format", "json", "half"))
        names = {d["name"] for d in docs}
        assert "half-up" in names and "half-done" not in names and len(names) == 2, names
    finally:
        ok(root, "pod", "rm", "-f", "half")


def test_port_lists_running_containers_only(root: Path) -> None:
    """As podman's port: a container that does not run has no port mappings to list."""
    cid = ok(root, "create", "-p", "8080", IMAGE, "true").strip()
    try:
        assert ok(root, "port", cid) == ""
        assert cid[:12] not in ok(root, "port", "--all")
    finally:
        ok(root, "rm", "-f", cid)


def test_a_pod_create_that_cannot_save_leaves_no_infra(root: Path) -> None:
    """The pod's record written last: when that fails (a read-only ROOT/pods here), its infra container
    and cgroup go too."""
    ok(root, "pod", "create", "--name", "first")  # ROOT/pods exists
    pods = root / "pods"
    before = ok(root, "ps", "-a", "-q")
    subprocess.run(["mount", "--bind", str(pods), str(pods)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(pods)], check=True)
        proc = hutch(root, "pod", "create", "--name", "unsaved")
        assert proc.returncode == 125 and proc.stderr.startswith("Error: "), proc.stderr
    finally:
        subprocess.run(["umount", str(pods)], check=True)
    try:
        assert ok(root, "ps", "-a", "-q") == before
        assert [ln.split()[1] for ln in ok(root, "pod", "ps", "--noheading").splitlines()] == ["first"]
    finally:
        ok(root, "pod", "rm", "-f", "first")


def test_network_rm_force_takes_the_pods_on_it(root: Path) -> None:
    """podman's network rm -f removes the containers and pods that use the network: a pod whose infra is
    on it goes whole (its member was left running in the netns of a removed infra)."""
    before = ok(root, "ps", "-a", "-q")
    ok(root, "network", "create", "podnet")
    try:
        ok(root, "pod", "create", "--network", "podnet", "--name", "onnet")
        ok(root, "run", "-d", "--pod", "onnet", "--name", "onnet-1", IMAGE, "sleep", "30")
        assert ok(root, "network", "rm", "-f", "podnet") == "podnet\n"
        assert hutch(root, "pod", "exists", "onnet").returncode == 1
        assert ok(root, "ps", "-a", "-q") == before
    finally:
        hutch(root, "pod", "rm", "-f", "onnet")
        hutch(root, "network", "rm", "-f", "podnet")


def test_pod_restart_honours_its_time(root: Path) -> None:
    """pod restart -t 0 kills at once what ignores SIGTERM (a sleep as PID 1), not after the default 10s."""
    import time

    ok(root, "pod", "create", "--name", "quick")
    try:
        ok(root, "run", "-d", "--pod", "quick", "--name", "quick-1", IMAGE, "sleep", "60")
        started = time.monotonic()
        ok(root, "pod", "restart", "-t", "0", "quick")
        assert time.monotonic() - started < 8
        assert ok(root, "inspect", "-f", "{{.State.Status}}", "quick-1").strip() == "running"
    finally:
        ok(root, "pod", "rm", "-f", "quick")


def test_pod_ps_no_trunc_shows_whole_ids(root: Path) -> None:
    pod_id = ok(root, "pod", "create", "--name", "whole").strip()
    try:
        infra = json.loads(ok(root, "pod", "inspect", "whole"))["InfraContainerID"]
        (row,) = [ln.split() for ln in ok(root, "pod", "ps", "--no-trunc").splitlines()[1:]]
        assert row[0] == pod_id and infra in row
        (row,) = [ln.split() for ln in ok(root, "pod", "ps").splitlines()[1:]]
        assert row[0] == pod_id[:12] and infra[:12] in row
    finally:
        ok(root, "pod", "rm", "-f", "whole")


def test_connect_whose_dns_fails_leaves_nothing_attached(root: Path) -> None:
    """network connect of a running container: when its names cannot be served (a directory stands where
    aardvark-dns's file for the bridge goes), the interface it got goes again, with its address, and the
    plan is as before; a later connect works."""
    ok(root, "network", "create", "dnsfail")
    try:
        ok(root, "run", "-d", "--name", "dnsf", IMAGE, "sleep", "60")
        bridge = json.loads(ok(root, "network", "inspect", "dnsfail"))[0]["network_interface"]
        blocker = Path("/run/hutch/aardvark") / bridge
        blocker.mkdir(parents=True)
        try:
            proc = hutch(root, "network", "connect", "dnsfail", "dnsf")
        finally:
            blocker.rmdir()
        assert proc.returncode == 125 and proc.stderr.startswith("Error: "), proc.stderr
        assert "eth1" not in ok(root, "exec", "dnsf", "ip", "-o", "link")
        doc = json.loads(ok(root, "inspect", "dnsf"))[0]
        assert list(doc["NetworkSettings"]["Networks"]) == ["hutch"]
        leases = Path("/run/hutch/cni/ipam/dnsfail")
        assert not leases.exists() or not [n for n in os.listdir(leases) if n[0].isdigit()]
        ok(root, "network", "connect", "dnsfail", "dnsf")
        assert "eth1" in ok(root, "exec", "dnsf", "ip", "-o", "link")
    finally:
        hutch(root, "rm", "-f", "-t", "0", "dnsf")
        hutch(root, "network", "rm", "-f", "dnsfail")


def test_dns_wait_goes_past_a_short_reply(tmp_path: Path) -> None:
    """wait_answering from inside a netns to a server that first answers with a 2-byte datagram, then with
    an answer: the short one is no answer (its header was read before its length was checked, and the
    wait gave up at once)."""
    import sys
    import uuid

    from hutch.engine.network import dns

    name = f"hutch-dnstest-{uuid.uuid4().hex[:8]}"
    server = tmp_path / "server.py"
    server.write_text(
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('127.0.0.1', 53))\n"
        "query, peer = s.recvfrom(512)\n"
        "s.sendto(query[:2], peer)\n"
        "query, peer = s.recvfrom(512)\n"
        "s.sendto(query[:2] + bytes([0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]) + query[12:], peer)\n"
    )
    subprocess.run(["ip", "netns", "add", name], check=True)
    proc = None
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        proc = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, str(server)])
        assert dns.wait_answering(f"/run/netns/{name}", "127.0.0.1", "member", timeout=10)
        assert proc.wait(10) == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_network_rm_and_a_create_on_it_at_once(root: Path) -> None:
    """A create naming a network and network rm of it, started at once (rm later and later each round):
    either the create finds no network or rm finds it in use; never a container left on a network rm
    removed (rm looked for users, then a create's plan named the network before its conflist went)."""
    import time

    for i in range(20):
        net = f"racenet{i}"
        ok(root, "network", "create", net)
        create = subprocess.Popen(
            [*HUTCH, "--root", str(root), "create", "--network", net, IMAGE, "true"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(0.005 * i)
        rm = hutch(root, "network", "rm", net)
        out, err = create.communicate(timeout=60)
        try:
            if create.returncode == 0:
                assert rm.returncode == 2, f"round {i}: rm exited {rm.returncode} with a container on {net}"
                assert hutch(root, "network", "exists", net).returncode == 0
            else:
                assert rm.returncode == 0 and "network not found" in err, err
        finally:
            if create.returncode == 0:
                ok(root, "rm", out.strip())
            hutch(root, "network", "rm", "-f", net)


def test_pod_rm_does_not_kill_a_member_started_meanwhile(root: Path) -> None:
    """pod rm (without -f) while a member of the pod starts: either the start fails (the member is gone)
    or rm refuses, leaving it running; rm never kills it (it checked for running members before taking the
    pods lock, then removed each with force)."""
    import time

    for i in range(5):
        pod = f"racepod{i}"
        ok(root, "pod", "create", "--name", pod)
        for n in range(3):
            ok(root, "create", "--pod", pod, "--name", f"{pod}-{n}", IMAGE, "sleep", "60")
        ok(root, "pod", "stop", "-t", "0", pod)  # the infra the creates started: nothing runs
        rm = subprocess.Popen([*HUTCH, "--root", str(root), "pod", "rm", pod], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(0.03 * i)
        start = hutch(root, "start", f"{pod}-2")
        _, err = rm.communicate(timeout=60)
        try:
            if start.returncode == 0:
                assert rm.returncode == 125, f"round {i}: pod rm exited {rm.returncode} and started {pod}-2"
                state = ok(root, "inspect", "-f", "{{.State.Status}}", f"{pod}-2").strip()
                assert state == "running" and "is running" in err
            else:
                assert rm.returncode == 0 and hutch(root, "inspect", f"{pod}-2").returncode == 125
        finally:
            hutch(root, "pod", "rm", "-f", pod)


def test_rm_refuses_a_pods_infra_container(root: Path) -> None:
    """rm, even -f, of a pod's infra container is podman's error and exit code; the pod keeps it."""
    ok(root, "pod", "create", "--name", "keepinfra")
    try:
        pod = json.loads(ok(root, "pod", "inspect", "keepinfra"))
        infra = pod["InfraContainerID"]
        for flags in ([], ["-f"]):
            proc = hutch(root, "rm", *flags, infra)
            assert proc.returncode == 125 and proc.stdout == ""
            assert proc.stderr == (
                f"Error: container {infra} is the infra container of pod {pod['Id']} and cannot be removed "
                "without removing the pod\n"
            )
        assert ok(root, "inspect", "-f", "{{.Id}}", infra).strip() == infra
    finally:
        ok(root, "pod", "rm", "-f", "keepinfra")
    assert hutch(root, "inspect", infra).returncode == 125
