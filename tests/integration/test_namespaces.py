"""linux.namespaces: each kind new or joined by path, user namespace maps, time namespace offsets.

Each test reads the effect from inside the container (/proc/self/ns/*, uid_map, hostname, /proc/uptime, the
network devices) and compares it with what the host sees.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import (
    RW_ROOT,
    add_namespace,
    remove_namespace,
    run_ok,
    sh,
    status_field,
    traversable,
    userns,
)

# spec type -> name under /proc/PID/ns
PROC_NS = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}


@pytest.fixture
def reachable(tmp_path: Path) -> Any:
    """The bundles of this test can be reached by a user namespace's root."""
    with traversable(tmp_path):
        yield


def _inside_ns(out: str) -> dict[str, str]:
    """Parse `name:link` lines printed by the container."""
    links = {}
    for line in out.splitlines():
        name, _, link = line.partition(" ")
        if link:
            links[name] = link
    return links


NS_SCRIPT = "for n in pid net mnt ipc uts user cgroup time; do echo $n $(readlink /proc/self/ns/$n); done"


@pytest.mark.usefixtures("reachable")
@pytest.mark.parametrize("kind", ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"])
def test_new_namespace_differs_from_host(bundle: Any, runtime: Any, kind: str) -> None:
    def edit(spec: dict[str, Any]) -> None:
        if kind == "user":
            userns(spec)
        else:
            add_namespace(spec, kind)

    out = run_ok(runtime, sh(bundle, NS_SCRIPT, edit=edit))
    inside = _inside_ns(out)
    name = PROC_NS[kind]
    assert inside[name] != os.readlink(f"/proc/self/ns/{name}"), out


@pytest.mark.parametrize("kind", ["network", "ipc", "uts", "cgroup", "time", "user"])
def test_namespace_not_listed_is_the_hosts(bundle: Any, runtime: Any, kind: str) -> None:
    def edit(spec: dict[str, Any]) -> None:
        remove_namespace(spec, kind)
        if kind == "uts":
            spec["hostname"] = ""
        if kind == "network":
            # a fresh sysfs needs a network namespace of our own; bind the host's instead
            for mnt in spec["mounts"]:
                if mnt["destination"] == "/sys":
                    mnt.update(
                        type="bind", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"]
                    )

    out = run_ok(runtime, sh(bundle, NS_SCRIPT, edit=edit))
    name = PROC_NS[kind]
    assert _inside_ns(out)[name] == os.readlink(f"/proc/self/ns/{name}"), out


def test_pid_namespace_process_is_pid_1_and_sees_only_its_own(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "echo pid=$$; ls -d /proc/[0-9]* | wc -l"))
    lines = out.split()
    assert lines[0] == "pid=1"
    # sh itself and `ls` (and the shell of the pipe): never the host's hundreds of processes
    assert int(lines[1]) <= 3, out


def test_network_namespace_has_only_loopback(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "ls /sys/class/net; echo --; cat /proc/net/dev"))
    devices, _, dev_table = out.partition("--")
    assert devices.split() == ["lo"]
    names = [line.split(":")[0].strip() for line in dev_table.splitlines() if ":" in line]
    assert names == ["lo"]


def test_new_network_namespace_has_loopback_up(bundle: Any, runtime: Any) -> None:
    # As runc does: a container in a new netns can reach 127.0.0.1 at once.
    flags = run_ok(runtime, sh(bundle, "cat /sys/class/net/lo/flags"))
    assert int(flags, 16) & 0x1, flags  # IFF_UP


def test_joined_network_namespace_keeps_its_loopback_down(bundle: Any, runtime: Any, netns: str) -> None:
    def edit(spec: dict[str, Any]) -> None:
        add_namespace(spec, "network", f"/run/netns/{netns}")

    flags = run_ok(runtime, sh(bundle, "cat /sys/class/net/lo/flags", edit=edit))
    assert not int(flags, 16) & 0x1, flags  # the runtime leaves a namespace it joins as it is


def test_uts_namespace_hostname_does_not_change_hosts(bundle: Any, runtime: Any) -> None:
    host_before = os.uname().nodename
    caps = {k: ["CAP_SYS_ADMIN"] for k in ("bounding", "effective", "permitted")}
    b = sh(bundle, "hostname; hostname changed-inside; hostname", hostname="box1", capabilities=caps)
    out = run_ok(runtime, b)
    assert out.split() == ["box1", "changed-inside"]
    assert os.uname().nodename == host_before


def test_ipc_namespace_has_its_own_sysv_objects(bundle: Any, runtime: Any) -> None:
    # a SysV shared memory segment made on the host is not visible in the container's ipc namespace
    made = subprocess.run(["python3", "-c", _MAKE_SHM], capture_output=True, text=True, check=True)
    shmid = made.stdout.strip()
    try:
        out = run_ok(runtime, sh(bundle, "cat /proc/sysvipc/shm | awk 'NR>1 {print $2}'"))
        assert shmid not in out.split()
        assert shmid in Path("/proc/sysvipc/shm").read_text().split()
    finally:
        subprocess.run(["ipcrm", "-m", shmid], check=False)


_MAKE_SHM = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
shmid = libc.shmget(0, 4096, 0o600 | 0o1000)  # IPC_PRIVATE, IPC_CREAT
assert shmid >= 0, ctypes.get_errno()
print(shmid)
"""


def test_cgroup_namespace_roots_the_containers_cgroups(bundle: Any, runtime: Any) -> None:
    host = Path("/proc/self/cgroup").read_text().splitlines()
    assert any(not line.endswith(":/") for line in host), "the test needs the host in a non-root cgroup"

    def edit(spec: dict[str, Any]) -> None:
        add_namespace(spec, "cgroup")

    out = run_ok(runtime, sh(bundle, "cat /proc/self/cgroup", edit=edit))
    lines = out.splitlines()
    assert lines and all(line.endswith(":/") for line in lines), out


def test_without_cgroup_namespace_the_cgroup_paths_show(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "cat /proc/self/cgroup"))
    assert any(not line.endswith(":/") for line in out.splitlines()), out


def test_time_namespace_offsets(bundle: Any, runtime: Any) -> None:
    offset = 10_000_000  # seconds, about 116 days

    def edit(spec: dict[str, Any]) -> None:
        add_namespace(spec, "time")
        spec["linux"]["timeOffsets"] = {
            "boottime": {"secs": offset, "nanosecs": 0},
            "monotonic": {"secs": offset, "nanosecs": 0},
        }

    before = float(Path("/proc/uptime").read_text().split()[0])
    out = run_ok(runtime, sh(bundle, "cat /proc/uptime", edit=edit))
    after = float(Path("/proc/uptime").read_text().split()[0])
    inside = float(out.split()[0])
    assert before + offset - 1 <= inside <= after + offset + 1, (before, inside, after)


def test_time_namespace_without_offsets_keeps_the_clock(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        add_namespace(spec, "time")

    before = float(Path("/proc/uptime").read_text().split()[0])
    out = run_ok(runtime, sh(bundle, "cat /proc/uptime", edit=edit))
    inside = float(out.split()[0])
    assert before - 1 <= inside <= before + 30


# --- user namespaces ---


@pytest.mark.usefixtures("reachable")
def test_user_namespace_maps(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        add_namespace(spec, "user")
        spec["linux"]["uidMappings"] = [
            {"containerID": 0, "hostID": 100000, "size": 1000},
            {"containerID": 1000, "hostID": 200000, "size": 10},
        ]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]

    out = run_ok(
        runtime,
        sh(bundle, "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u", edit=edit),
    )
    uid_part, gid_part, uid = out.split("--")
    assert [line.split() for line in uid_part.strip().splitlines()] == [
        ["0", "100000", "1000"],
        ["1000", "200000", "10"],
    ]
    assert [line.split() for line in gid_part.strip().splitlines()] == [["0", "300000", "65536"]]
    assert uid.strip() == "0"


@pytest.mark.usefixtures("reachable")
def test_user_namespace_file_ownership_and_host_uid(bundle: Any, runtime: Any) -> None:
    b = sh(
        bundle,
        "stat -c '%u:%g' /owned /bin/busybox; cat /proc/self/status | grep -E '^(Uid|Gid):'",
        edit=userns,
    )
    owned = b / "rootfs" / "owned"
    owned.write_text("x")
    os.chown(owned, 100000 + 7, 100000 + 8)
    out = run_ok(runtime, b)
    lines = out.splitlines()
    assert lines[0] == "7:8"  # host 100007 is 7 inside
    assert lines[1] == "65534:65534"  # host root is not mapped: the overflow id
    assert status_field(out, "Uid").split() == ["0", "0", "0", "0"]


@pytest.mark.usefixtures("reachable")
def test_user_namespace_process_is_the_mapped_uid_on_the_host(bundle: Any, runtime: Any) -> None:
    b = bundle(["sleep", "30"], edit=userns)
    runtime.run("create", "--bundle", b, "c1")
    pid = runtime.state("c1")["pid"]
    status = Path(f"/proc/{pid}/status").read_text()
    assert status_field(status, "Uid").split() == ["100000"] * 4
    assert status_field(status, "Gid").split() == ["100000"] * 4
    assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", "100000", "65536"]
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")


@pytest.mark.usefixtures("reachable")
def test_user_namespace_root_has_caps_only_inside(bundle: Any, runtime: Any) -> None:
    # CAP_SYS_ADMIN inside the user namespace: mounting a tmpfs works; but the host's files stay the host's
    caps = ["CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_DAC_OVERRIDE"]
    b = sh(
        bundle,
        "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted;"
        " echo x > /hostfile 2>/dev/null && echo wrote || echo denied",
        edit=userns,
        root=RW_ROOT,
        capabilities={k: caps for k in ("bounding", "effective", "permitted")},
    )
    (b / "rootfs" / "tmp").chmod(0o1777)
    (b / "rootfs" / "hostfile").write_text("host\n")
    (b / "rootfs" / "hostfile").chmod(0o644)
    out = run_ok(runtime, b)
    assert out.split() == ["mounted", "denied"]
    assert (b / "rootfs" / "hostfile").read_text() == "host\n"


# --- joining namespaces by path ---


@pytest.fixture
def netns() -> Any:
    """A network namespace made with `ip netns add`, removed after the test."""
    name = f"hutch-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
        assert not Path("/run/netns", name).exists()


def test_join_network_namespace_by_path(bundle: Any, runtime: Any, netns: str) -> None:
    path = f"/run/netns/{netns}"
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)

    def edit(spec: dict[str, Any]) -> None:
        add_namespace(spec, "network", path)

    out = run_ok(
        runtime, sh(bundle, "readlink /proc/self/ns/net; cat /sys/class/net/lo/operstate", edit=edit)
    )
    link, state = out.split()
    assert link == f"net:[{os.stat(path).st_ino}]"
    assert state == "unknown"  # lo is up (a fresh namespace's lo is "down")


def test_join_pid_and_uts_namespaces_of_another_container(bundle: Any, runtime: Any) -> None:
    first = bundle(["sleep", "30"], hostname="first-box")
    runtime.run("create", "--bundle", first, "first")
    pid = runtime.state("first")["pid"]

    def edit(spec: dict[str, Any]) -> None:
        add_namespace(spec, "pid", f"/proc/{pid}/ns/pid")
        add_namespace(spec, "uts", f"/proc/{pid}/ns/uts")
        spec["hostname"] = ""

    out = run_ok(
        runtime, sh(bundle, "hostname; echo $$; cat /proc/1/cmdline | tr '\\0' ' '", edit=edit), "second"
    )
    hostname, mypid, cmdline = out.split("\n", 2)
    assert hostname == "first-box"
    assert mypid != "1"
    # pid 1 of the joined namespace is the first container's init, still waiting to exec `sleep`
    assert cmdline.strip() != ""
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")


@pytest.mark.usefixtures("reachable")
def test_join_user_namespace_by_path(bundle: Any, runtime: Any) -> None:
    first = bundle(["sleep", "30"], edit=userns)
    runtime.run("create", "--bundle", first, "first")
    pid = runtime.state("first")["pid"]

    def edit(spec: dict[str, Any]) -> None:
        add_namespace(spec, "user", f"/proc/{pid}/ns/user")
        # a fresh network namespace under a joined user namespace: owned by it
        spec["linux"].pop("uidMappings", None)
        spec["linux"].pop("gidMappings", None)

    out = run_ok(
        runtime, sh(bundle, "readlink /proc/self/ns/user; cat /proc/self/uid_map", edit=edit), "second"
    )
    link, *uid_map = out.split()
    assert link == os.readlink(f"/proc/{pid}/ns/user")
    assert uid_map == ["0", "100000", "65536"]


def test_join_a_missing_namespace_path_fails(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    def edit(spec: dict[str, Any]) -> None:
        add_namespace(spec, "network", str(tmp_path / "no-such-netns"))

    result = runtime.run("run", "--bundle", bundle(["true"], edit=edit), "c1", check=False)
    assert result.returncode != 0
    assert "no-such-netns" in result.stderr
    assert not (runtime.root / "c1").exists()


def test_join_a_path_of_the_wrong_type_fails(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        add_namespace(spec, "network", "/proc/self/ns/uts")

    result = runtime.run("run", "--bundle", bundle(["true"], edit=edit), "c1", check=False)
    assert result.returncode != 0
    assert "network" in result.stderr
    assert not (runtime.root / "c1").exists()


@pytest.mark.usefixtures("reachable")
def test_exec_joins_every_namespace(bundle: Any, runtime: Any) -> None:
    b = bundle(["sleep", "30"], edit=lambda spec: (userns(spec), add_namespace(spec, "cgroup")))
    runtime.run("run", "--detach", "--bundle", b, "c1")
    pid = runtime.state("c1")["pid"]
    out = runtime.run("exec", "c1", "sh", "-c", NS_SCRIPT).stdout
    inside = _inside_ns(out)
    for kind in ("pid", "net", "mnt", "ipc", "uts", "user", "cgroup"):
        assert inside[kind] == os.readlink(f"/proc/{pid}/ns/{kind}"), kind
