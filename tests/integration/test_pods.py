"""hutch pods: an infra container (catatonit from a locally built pause image) holds the namespaces; the
pod's containers talk over localhost, share its hostname, and its ports are published on the infra
container; stop and start bring it back; rm -f leaves no container, netns or rule behind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
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
        out = ok(
            root,
            "run",
            "--rm",
            "--pod",
            "trio",
            IMAGE,
            "sh",
            "-c",
            "ps -o pid,args; cat /etc/hostname; echo $HOSTNAME; hostname",
        )
        assert (
            "1 /catatonit -P" in out and "sleep 1000" in out and out.endswith("podhost\npodhost\npodhost\n")
        )
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
        proc = hutch(root, "run", "--rm", "--pod", "nosuchpod", IMAGE, "true")
        assert proc.returncode == 125 and "no such pod" in proc.stderr
        assert hutch(root, "pod", "top", "nosuchpod").returncode == 125
    finally:
        ok(root, "pod", "rm", "-f", "fresh", "bare")
    assert ok(root, "pod", "ps", "-q") == "" and ok(root, "ps", "-aq") == ""
    assert net_leftovers(infras, [], []) == []
    assert f"--dport {port}" not in _iptables()


TALKER = (
    "trap 'echo got-usr1' USR1; echo {0}-one; sleep 0.3; echo {0}-two >&2; while true; do sleep 0.1; done"
)


def _states(root: Path, pod: str) -> list[str]:
    return [c["State"] for c in json.loads(ok(root, "pod", "inspect", pod))["Containers"]]


def test_pod_pause_top_stats_logs_kill_restart_prune(root: Path) -> None:
    pod_id = ok(root, "pod", "create", "--name", "chat", "--memory", "96m").strip()
    infra = json.loads(ok(root, "pod", "inspect", "chat"))["InfraContainerID"]
    try:
        ok(root, "run", "-d", "--pod", "chat", "--name", "chat-a", IMAGE, "sh", "-c", TALKER.format("a"))
        time.sleep(0.1)
        ok(root, "run", "-d", "--pod", "chat", "--name", "chat-b", IMAGE, "sh", "-c", TALKER.format("b"))
        ida = ok(root, "inspect", "-f", "{{.Id}}", "chat-a").strip()[:12]
        idb = ok(root, "inspect", "-f", "{{.Id}}", "chat-b").strip()[:12]
        time.sleep(0.6)
        # logs: interleaved by time, each line after its container's id (names with --names).
        proc = hutch(root, "pod", "logs", "chat")
        assert proc.stdout == f"{ida} a-one\n{idb} b-one\n" and proc.stderr == f"{ida} a-two\n{idb} b-two\n"
        proc = hutch(root, "pod", "logs", "--names", "--tail", "1", "chat")
        assert proc.stdout == "" and proc.stderr == "chat-a a-two\nchat-b b-two\n"
        assert ok(root, "pod", "logs", "-n", "-c", "chat-b", "chat") == "chat-b b-one\n"
        # top: every container's processes, the infra's catatonit first.
        rows = ok(root, "pod", "top", "chat", "pid", "args").splitlines()
        assert rows[0].split() == ["PID", "COMMAND"] and rows[1].split() == ["1", "/catatonit", "-P"]
        assert sum("sleep 0.1" in r or r.split()[1:2] == ["sh"] for r in rows) >= 2
        # stats: a row per container, the pod's memory limit as theirs.
        lines = ok(root, "pod", "stats", "--no-stream", "chat").splitlines()
        assert lines[0].split()[:3] == ["POD", "CID", "NAME"] and len(lines) == 4
        docs = json.loads(ok(root, "pod", "stats", "--no-stream", "--format", "json", "chat"))
        assert {d["name"] for d in docs} == {"chat-a", "chat-b", f"{pod_id[:12]}-infra"}
        assert all(d["pod"] == pod_id[:12] and d["mem_usage"].endswith(" / 100.7MB") for d in docs), docs
        out = ok(root, "pod", "stats", "--no-stream", "--format", "{{.Name}} {{.PIDS}}", "chat")
        assert f"{pod_id[:12]}-infra 1" in out.splitlines()
        # pause and unpause: every container's cgroup frozen, then thawed.
        assert ok(root, "pod", "pause", "chat") == pod_id + "\n"
        assert _states(root, "chat") == ["paused"] * 3
        pid_a = _pid(root, "chat-a")
        assert (
            Path(f"/sys/fs/cgroup/freezer{_cgroup_of(pid_a, 'freezer')}/freezer.state").read_text()
            == "FROZEN\n"
        )
        ok(root, "pod", "unpause", "chat")
        assert _states(root, "chat") == ["running"] * 3
        assert hutch(root, "pod", "unpause", "chat").returncode == 125
        # kill -s: the signal reaches every container.
        ok(root, "pod", "kill", "-s", "USR1", "chat")
        deadline = time.monotonic() + 5
        while ok(root, "pod", "logs", "chat").count("got-usr1") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # logs -f follows until the containers stop: the lines so far (two got-usr1 last), then new ones.
        follow = subprocess.Popen(
            [*run_suite.HUTCH, "--root", str(root), "pod", "logs", "-f", "-n", "chat"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert follow.stdout is not None
        seen = [follow.stdout.readline() for _ in range(4)]  # a-one, b-one, got-usr1 twice
        assert sorted(seen[2:]) == ["chat-a got-usr1\n", "chat-b got-usr1\n"], seen
        ok(root, "pod", "kill", "-s", "USR1", "chat")
        later = [follow.stdout.readline() for _ in range(2)]
        assert sorted(later) == ["chat-a got-usr1\n", "chat-b got-usr1\n"]
        ok(root, "pod", "kill", "chat")
        assert follow.communicate(timeout=15)[0] == "" and follow.returncode == 0
        assert json.loads(ok(root, "pod", "inspect", "chat"))["State"] == "Exited"
        assert ok(root, "inspect", "-f", "{{.State.ExitCode}}", "chat-a") == "137\n"
        # restart: everything runs again.
        ok(root, "pod", "restart", "chat")
        assert _states(root, "chat") == ["running"] * 3
        ok(root, "pod", "stop", "-t", "0", "chat")
        # prune removes the stopped pod and everything of it.
        assert ok(root, "pod", "prune", "-f") == pod_id + "\n"
    finally:
        hutch(root, "pod", "rm", "-f", "chat")
    assert ok(root, "pod", "ps", "-q") == "" and ok(root, "ps", "-aq") == ""
    assert not any(Path("/sys/fs/cgroup").glob(f"*/**/{pod_id}"))
    assert net_leftovers([infra], [], []) == []


def test_pod_cgroup_parent_and_share_parent_false(root: Path) -> None:
    parent = f"hutch-test-parent-{os.getpid()}"
    pod_id = ok(
        root, "pod", "create", "--name", "kids", "--cgroup-parent", parent, "--pids-limit", "50"
    ).strip()
    doc = json.loads(ok(root, "pod", "inspect", "kids"))
    assert doc["CgroupParent"] == f"/{parent}" and doc["CgroupPath"] == f"/{parent}/{pod_id}"
    loose = ok(root, "pod", "create", "--name", "loose", "--share-parent=false").strip()
    try:
        ok(root, "run", "-d", "--pod", "kids", "--name", "kid", IMAGE, "sleep", "1000")
        ok(root, "run", "-d", "--pod", "loose", "--name", "stray", IMAGE, "sleep", "1000")
        _until_running(root, "kid")
        _until_running(root, "stray")
        cid = ok(root, "inspect", "-f", "{{.Id}}", "kid").strip()
        assert _cgroup_of(_pid(root, "kid"), "pids") == f"/{parent}/{pod_id}/{cid}"
        assert Path(f"/sys/fs/cgroup/pids/{parent}/{pod_id}/pids.max").read_text() == "50\n"
        # --share-parent=false: the member's cgroup is not below the pod's (the infra's still is).
        stray = ok(root, "inspect", "-f", "{{.Id}}", "stray").strip()
        assert f"/{loose}/" not in _cgroup_of(_pid(root, "stray"), "pids")
        assert _cgroup_of(_pid(root, "stray"), "pids").endswith(f"/hutch/{stray}")
    finally:
        ok(root, "pod", "rm", "-f", "kids", "loose")
    assert not Path(f"/sys/fs/cgroup/pids/{parent}").exists()
    assert not Path(f"/sys/fs/cgroup/memory/{parent}").exists()
    assert not any(Path("/sys/fs/cgroup").glob(f"*/**/{loose}"))


def test_a_failed_create_removes_the_pod_new_made(root: Path) -> None:
    # --pod new:NAME makes the pod before the rest of create is checked: a create that fails afterwards
    # (here a relative --workdir) takes that pod with it, and a pod that existed before is left alone.
    proc = hutch(root, "run", "--rm", "--pod", "new:fails", "-w", "relative", IMAGE, "true")
    assert (proc.returncode, proc.stderr) == (125, "Error: --workdir 'relative': must be an absolute path\n")
    assert hutch(root, "pod", "exists", "fails").returncode == 1
    ok(root, "pod", "create", "--name", "stays")
    try:
        proc = hutch(root, "run", "--rm", "--pod", "new:stays", IMAGE, "true")
        assert proc.returncode == 125
        assert hutch(root, "pod", "exists", "stays").returncode == 0
    finally:
        ok(root, "pod", "rm", "-f", "stays")
    assert ok(root, "ps", "-aq") == ""


def test_containers_and_pods_share_one_name_space(root: Path) -> None:
    """As in podman: a container cannot take a pod's name (create, rename), nor a pod a container's."""
    ok(root, "pod", "create", "--name", "shared-name")
    cid = ok(root, "create", "--network", "none", "--name", "ctr-name", IMAGE, "true").strip()
    try:
        taken = hutch(root, "create", "--network", "none", "--name", "shared-name", IMAGE, "true")
        assert taken.returncode == 125
        assert taken.stderr == 'Error: name "shared-name" is in use: pod already exists\n'
        renamed = hutch(root, "rename", "ctr-name", "shared-name")
        assert renamed.returncode == 125 and "pod already exists" in renamed.stderr
        pod = hutch(root, "pod", "create", "--name", "ctr-name")
        assert pod.returncode == 125
        assert pod.stderr == 'Error: name "ctr-name" is in use: container already exists\n'
        names = ok(root, "ps", "-a", "--format", "{{.Names}}").split()
        assert "ctr-name" in names and "shared-name" not in names
        assert ok(root, "pod", "ps", "--format", "{{.Name}}").split() == ["shared-name"]
    finally:
        ok(root, "rm", "-f", cid)
        ok(root, "pod", "rm", "-f", "shared-name")
