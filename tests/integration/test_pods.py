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
        assert doc["SharedNamespaces"] == ["net", "ipc", "uts"]
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
