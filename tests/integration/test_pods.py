"""hutch pods: an infra container (catatonit from a locally built pause image) holds the namespaces; the
pod's containers talk over localhost, share its hostname, and its ports are published on the infra
container; stop and start bring it back; rm -f leaves no container, netns or rule behind.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from pathlib import Path

from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import IMAGE, hutch, ok
from tests.integration.test_network import NETNS_DIR, _iptables, net_leftovers

remote = run_suite.remote
root = run_suite.root

HTTPD = "mkdir -p /www && echo pod says hi > /www/index.html && exec httpd -f -p 8080 -h /www"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until_running(root: Path, name: str) -> None:
    deadline = time.monotonic() + 10
    while ok(root, "inspect", "-f", "{{.State.Status}}", name).strip() != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_pod_shares_localhost_ports_and_hostname(root: Path) -> None:
    port = _free_port()
    pod_id = ok(root, "pod", "create", "--name", "duo", "-p", f"{port}:8080").strip()
    assert len(pod_id) == 64
    lines = ok(root, "pod", "ps").splitlines()
    assert lines[0].split()[:3] == ["POD", "ID", "NAME"]
    assert lines[1].split()[:3] == [pod_id[:12], "duo", "Created"]
    infra = json.loads(ok(root, "pod", "inspect", "duo"))["InfraContainerID"]
    try:
        ok(root, "run", "-d", "--pod", "duo", "--name", "duo-web", IMAGE, "sh", "-c", HTTPD)
        _until_running(root, "duo-web")
        # Over localhost, in the pod's shared UTS namespace (hostname = the pod's name).
        out = ok(
            root,
            "run",
            "--rm",
            "--pod",
            "duo",
            IMAGE,
            "sh",
            "-c",
            "wget -qO- http://127.0.0.1:8080/; hostname",
        )
        assert out == "pod says hi\nduo\n"
        # The pod's port, published on its infra container.
        assert ok(root, "port", "duo-web") == f"8080/tcp -> 0.0.0.0:{port}\n"
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read() == b"pod says hi\n"
        doc = json.loads(ok(root, "pod", "inspect", "duo"))
        assert doc["State"] == "Running" and doc["NumContainers"] == 2
        assert doc["SharedNamespaces"] == ["cgroup", "ipc", "net", "uts"]
        web = ok(root, "inspect", "-f", "{{.State.Pid}}", "duo-web").strip()
        infra_pid = ok(root, "inspect", "-f", "{{.State.Pid}}", infra).strip()
        for ns in ("net", "ipc", "uts"):
            assert os.readlink(f"/proc/{web}/ns/{ns}") == os.readlink(f"/proc/{infra_pid}/ns/{ns}")
        # Stop and start: the member joins the restarted infra's namespaces again.
        assert ok(root, "pod", "stop", "-t", "1", "duo") == pod_id + "\n"
        assert json.loads(ok(root, "pod", "inspect", "duo"))["State"] == "Exited"
        assert not (NETNS_DIR / infra).exists()
        ok(root, "pod", "start", "duo")
        _until_running(root, "duo-web")
        deadline = time.monotonic() + 5
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert body == b"pod says hi\n"
        # rm without -f refuses a running pod.
        proc = hutch(root, "pod", "rm", "duo")
        assert proc.returncode == 125 and proc.stderr.startswith("Error: ")
    finally:
        ok(root, "pod", "rm", "-f", "duo")
    assert ok(root, "pod", "ps", "-q") == ""
    assert ok(root, "ps", "-aq") == ""
    assert net_leftovers([infra], [], []) == []
    assert f"--dport {port}" not in _iptables()
    proc = hutch(root, "pod", "rm", "duo")
    assert proc.returncode == 125 and "no such pod" in proc.stderr


def _cgroup_of(pid: str, controller: str) -> str:
    """The host's path of a process's cgroup in one v1 hierarchy (or "" for v2), from /proc/PID/cgroup."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    raise AssertionError(f"no {controller} cgroup for {pid}")


def _pid(root: Path, name: str) -> str:
    return ok(root, "inspect", "-f", "{{.State.Pid}}", name).strip()


def test_pod_shares_pid_and_cgroup_under_the_pods_cgroup_with_its_limits(root: Path) -> None:
    pod_id = ok(
        root, "pod", "create", "--name", "trio", "--share", "+pid", "--hostname", "podhost",
        "--label", "team=blue", "--memory", "64m", "--cpus", "0.5",
    ).strip()  # fmt: skip
    doc = json.loads(ok(root, "pod", "inspect", "trio"))
    assert doc["SharedNamespaces"] == ["cgroup", "ipc", "net", "pid", "uts"]
    assert doc["Labels"] == {"team": "blue"} and doc["Hostname"] == "podhost"
    assert doc["CgroupPath"] == f"hutch/pods/{pod_id}"
    infra = doc["InfraContainerID"]
    pod_dirs: list[Path] = []
    try:
        ok(root, "run", "-d", "--pod", "trio", "--name", "trio-sleep", IMAGE, "sleep", "1000")
        _until_running(root, "trio-sleep")
        # The shared PID namespace: catatonit is PID 1 and the other member's sleep is visible.
        out = ok(root, "run", "--rm", "--pod", "trio", IMAGE, "sh", "-c", "ps -o pid,args; hostname")
        assert "1 /catatonit -P" in out and "sleep 1000" in out and out.endswith("podhost\n")
        # The pod's memory limit bounds the member (its cgroup is below the pod's), seen from inside.
        stat = ok(root, "exec", "trio-sleep", "cat", "/sys/fs/cgroup/memory/memory.stat")
        assert f"hierarchical_memory_limit {64 << 20}\n" in stat
        member, infra_pid = _pid(root, "trio-sleep"), _pid(root, infra)
        cid = ok(root, "inspect", "-f", "{{.Id}}", "trio-sleep").strip()
        for ns in ("pid", "cgroup", "ipc", "uts", "net"):
            assert os.readlink(f"/proc/{member}/ns/{ns}") == os.readlink(f"/proc/{infra_pid}/ns/{ns}")
        for controller in ("memory", "cpu", "pids"):
            path = _cgroup_of(member, controller)
            assert path.endswith(f"/hutch/pods/{pod_id}/{cid}"), path
            assert _cgroup_of(infra_pid, controller).endswith(f"/hutch/pods/{pod_id}/{infra}")
            pod_dirs.append(Path(f"/sys/fs/cgroup/{controller}{os.path.dirname(path)}"))
        assert (pod_dirs[0] / "memory.limit_in_bytes").read_text() == f"{64 << 20}\n"
        assert (pod_dirs[1] / "cpu.cfs_quota_us").read_text() == "50000\n"
        # The shared cgroup namespace's root is the infra's cgroup: the member is beside it.
        inside = ok(root, "exec", "trio-sleep", "cat", "/proc/self/cgroup")
        assert f":/../{cid}\n" in inside
    finally:
        ok(root, "pod", "rm", "-f", "trio")
    assert pod_dirs and not any(d.exists() for d in pod_dirs)
    assert not any(Path("/sys/fs/cgroup").glob(f"*/**/{pod_id}"))
    assert net_leftovers([infra], [], []) == []


def test_pod_new_infra_false_and_exists(root: Path) -> None:
    port = _free_port()
    ok(
        root,
        "run",
        "-d",
        "--pod",
        "new:fresh",
        "--name",
        "fresh-web",
        "-p",
        f"{port}:8080",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    )
    infras: list[str] = []
    try:
        _until_running(root, "fresh-web")
        assert hutch(root, "pod", "exists", "fresh").returncode == 0
        assert hutch(root, "pod", "exists", "nosuchpod").returncode == 1
        doc = json.loads(ok(root, "pod", "inspect", "fresh"))
        infras.append(doc["InfraContainerID"])
        assert doc["State"] == "Running" and doc["NumContainers"] == 2
        # The container's -p went to the pod's infra container.
        deadline = time.monotonic() + 5
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert body == b"pod says hi\n"
        # Without an infra container: no shared namespace, but the pod's cgroup.
        ok(root, "pod", "create", "--infra=false", "--name", "bare")
        doc = json.loads(ok(root, "pod", "inspect", "bare"))
        assert doc["InfraContainerID"] == "" and doc["CreateInfra"] is False and doc["SharedNamespaces"] == []
        ok(root, "run", "-d", "--pod", "bare", "--name", "bare-sleep", IMAGE, "sleep", "1000")
        _until_running(root, "bare-sleep")
        pid = _pid(root, "bare-sleep")
        assert _cgroup_of(pid, "memory").endswith(
            f"/hutch/pods/{doc['Id']}/" + ok(root, "inspect", "-f", "{{.Id}}", "bare-sleep").strip()
        )
        assert os.readlink(f"/proc/{pid}/ns/uts") != os.readlink("/proc/self/ns/uts")
        assert json.loads(ok(root, "pod", "inspect", "bare"))["State"] == "Running"
        # Bad input: one line, exit 125, no pod left.
        for args in (
            ("--infra=false", "-p", "8080:80"),
            ("--infra=false", "--share", "net"),
            ("--share", "bogus"),
            ("--memory", "lots"),
        ):
            proc = hutch(root, "pod", "create", "--name", "bad", *args)
            assert (
                proc.returncode == 125 and proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1
            ), proc.stderr
            assert hutch(root, "pod", "exists", "bad").returncode == 1
    finally:
        ok(root, "pod", "rm", "-f", "fresh", "bare")
    assert ok(root, "pod", "ps", "-q") == "" and ok(root, "ps", "-aq") == ""
    assert net_leftovers(infras, [], []) == []
    assert f"--dport {port}" not in _iptables()
