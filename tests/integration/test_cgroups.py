"""cgroups on this host (hybrid: v1 controllers, hugetlb on the v2 hierarchy): the effects, seen from inside
the container and in the kernel's own files.

Every container id and explicit cgroupsPath here starts with "hcg-", so the module can check at its end that
nothing of its own is left anywhere under /sys/fs/cgroup (other suites may run at the same time).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import sh, wait_for

from hutch.oci.config import parse
from hutch.runtime import cgroups
from hutch.runtime.cgroups import devices_bpf, freezer, layout, stats

CGROUP_ROOT = Path("/sys/fs/cgroup")
HOST = layout.detect()
PREFIX = "hcg-"


def _ours() -> list[str]:
    found = []
    for dirpath, dirnames, _files in os.walk(CGROUP_ROOT):
        for name in dirnames:
            if name.startswith(PREFIX):
                found.append(os.path.join(dirpath, name))
    return found


@pytest.fixture(scope="module", autouse=True)
def _nothing_left_under_sys_fs_cgroup() -> Iterator[None]:
    before = set(_ours())
    yield
    left = sorted(set(_ours()) - before)
    for d in sorted(left, key=len, reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(d)
    assert not left, f"cgroups left behind: {left}"


def need_v1(*controllers: str) -> None:
    missing = [c for c in controllers if HOST.where(c) != "v1"]
    if missing:
        pytest.skip(f"this host has no v1 {', '.join(missing)}")


@pytest.fixture
def cid(test_token: str) -> str:
    return f"{PREFIX}{test_token[:10]}"


def record(runtime: Any, container_id: str) -> dict[str, Any]:
    state = json.loads((Path(runtime.root) / container_id / "state.json").read_text())
    rec: dict[str, Any] = state["cgroup"]
    return rec


def v1dir(rec: dict[str, Any], controller: str) -> Path:
    return Path(rec["v1"][controller])


def read(path: Path) -> str:
    return path.read_text().strip()


def resources_spec(resources: dict[str, Any], cgroups_path: str | None = None) -> Any:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"].setdefault("resources", {}).update(resources)
        if cgroups_path is not None:
            spec["linux"]["cgroupsPath"] = cgroups_path

    return edit


def init_pid(runtime: Any, container_id: str) -> int:
    return int(runtime.state(container_id)["pid"])


def proc_cgroups(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        out[controllers] = path
    return out


def cpu_usage_ns(rec: dict[str, Any]) -> int:
    if "cpuacct" in rec["v1"]:
        return int(read(v1dir(rec, "cpuacct") / "cpuacct.usage"))
    stat = dict(line.split() for line in read(Path(rec["v2"]) / "cpu.stat").splitlines())
    return int(stat["usage_usec"]) * 1000


# --- where the cgroups are, and that they go ---


def test_default_path_joins_every_hierarchy_and_is_removed(runtime: Any, bundle: Any, cid: str) -> None:
    runtime.run("run", "-d", "--bundle", bundle(["sleep", "100"]), cid)
    pid = init_pid(runtime, cid)
    rec = record(runtime, cid)
    assert rec["path"] == f"hutch/{cid}"
    mine = proc_cgroups(pid)
    dirs = cgroups.directories(rec)
    for h in HOST.hierarchies():
        d = layout.cgroup_dir(h, f"hutch/{cid}", v2=False)
        assert d in dirs
        assert mine[",".join(h.controllers)].endswith(f"/hutch/{cid}")
        assert str(pid) in read(Path(d) / "cgroup.procs").split()
    if HOST.v2 is not None:
        assert mine[""].endswith(f"/hutch/{cid}")
        assert str(pid) in read(Path(rec["v2"]) / "cgroup.procs").split()
    runtime.run("delete", "--force", cid)
    assert [d for d in dirs if os.path.exists(d)] == []


def test_absolute_path(runtime: Any, bundle: Any, cid: str) -> None:
    path = f"/{cid}-parent/ctr"
    runtime.run("run", "-d", "--bundle", bundle(["sleep", "100"], edit=resources_spec({}, path)), cid)
    rec = record(runtime, cid)
    for h in HOST.hierarchies():
        assert os.path.isdir(os.path.join(h.mountpoint, path.lstrip("/")))
    if HOST.v2 is not None:
        assert rec["v2"] == os.path.join(HOST.v2.mountpoint, path.lstrip("/"))
    runtime.run("delete", "--force", cid)
    for h in HOST.hierarchies():  # the parent we made went too
        assert not os.path.exists(os.path.join(h.mountpoint, f"{cid}-parent"))


def test_relative_path_is_below_the_runtimes_own_cgroup(runtime: Any, bundle: Any, cid: str) -> None:
    # The runtime runs in our cgroups; on v1 the container goes below ours (memory here is a sub-cgroup).
    path = f"{cid}-rel/ctr"
    runtime.run("run", "-d", "--bundle", bundle(["sleep", "100"], edit=resources_spec({}, path)), cid)
    rec = record(runtime, cid)
    for h in HOST.hierarchies():
        assert rec["v1"][h.controllers[0]] == os.path.join(h.own_dir(), path)
    runtime.run("delete", "--force", cid)
    assert [d for d in cgroups.directories(rec) if os.path.exists(d)] == []


def test_the_same_id_under_two_roots_gets_two_cgroups(
    runtime: Any, bundle: Any, cid: str, tmp_path: Path
) -> None:
    b = bundle(["sleep", "100"])
    runtime.run("run", "-d", "--bundle", b, cid)
    other = [runtime.binary, "--root", str(tmp_path / "other-root")]
    try:
        subprocess.run([*other, "run", "-d", "--bundle", str(b), cid], check=True, timeout=30)
        rec2 = json.loads((tmp_path / "other-root" / cid / "state.json").read_text())["cgroup"]
        assert record(runtime, cid)["path"] == f"hutch/{cid}"
        assert rec2["path"] == f"hutch/{cid}-1"
    finally:
        subprocess.run([*other, "delete", "--force", cid], check=False, timeout=30)


def test_an_occupied_cgroup_is_refused(runtime: Any, bundle: Any, cid: str) -> None:
    need_v1("pids")
    occupied = Path(HOST.v1["pids"].mountpoint) / f"{cid}-busy"
    occupied.mkdir()
    sleeper = subprocess.Popen(["sleep", "100"])
    try:
        (occupied / "cgroup.procs").write_text(str(sleeper.pid))
        b = bundle(["true"], edit=resources_spec({}, f"/{cid}-busy"))
        result = runtime.run("run", "--bundle", b, cid, check=False)
        assert result.returncode != 0
        assert "is not empty" in result.stderr
        assert sleeper.poll() is None  # untouched
        assert str(sleeper.pid) in read(occupied / "cgroup.procs")
    finally:
        sleeper.kill()
        sleeper.wait()
        wait_for(lambda: read(occupied / "cgroup.procs") == "", what="the sleeper to leave")
        occupied.rmdir()
    for h in HOST.hierarchies():
        if h is not HOST.v1["pids"]:
            assert not os.path.exists(os.path.join(h.mountpoint, f"{cid}-busy"))


def test_exec_joins_the_containers_cgroups(runtime: Any, bundle: Any, cid: str, tmp_path: Path) -> None:
    runtime.run("run", "-d", "--bundle", bundle(["sleep", "100"]), cid)
    pid_file = tmp_path / "exec.pid"
    runtime.run("exec", "-d", "--pid-file", pid_file, cid, "sleep", "50")
    exec_pid = int(pid_file.read_text())
    assert proc_cgroups(exec_pid) == proc_cgroups(init_pid(runtime, cid))
    assert exec_pid in cgroups.pids(record(runtime, cid))


def test_delete_force_after_the_runtime_was_killed_in_create(
    runtime: Any, bundle: Any, cid: str, tmp_path: Path
) -> None:
    # A createRuntime hook kills the runtime after the cgroups exist (init, left alone, exits); delete --force
    # still runs the poststop hooks, which may undo what the create hooks did.
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}
    poststop = {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {tmp_path}/poststop"]}
    b = bundle(["sleep", "100"], hooks={"createRuntime": [hook], "poststop": [poststop]})
    result = runtime.run("create", "--bundle", b, cid, check=False)
    assert result.returncode == -signal.SIGKILL
    # No state.json yet (it is written once the container is created), but the cgroups are on record.
    assert not (Path(runtime.root) / cid / "state.json").exists()
    rec = json.loads((Path(runtime.root) / cid / "creating.json").read_text())["cgroup"]
    assert all(os.path.isdir(d) for d in cgroups.directories(rec))
    runtime.run("delete", "--force", cid)
    assert [d for d in cgroups.directories(rec) if os.path.exists(d)] == []
    assert not (Path(runtime.root) / cid).exists()
    assert json.loads((tmp_path / "poststop").read_text())["id"] == cid  # the state on its stdin


def test_delete_force_after_the_runtime_was_killed_before_it_recorded_its_cgroups(
    runtime: Any, cid: str
) -> None:
    # What a create killed between its mkdirs and its first state.json leaves: the state dir, and hutch/<id>
    # below our cgroup in some hierarchies. An occupied one is not that create's and stays.
    need_v1("pids")
    (Path(runtime.root) / cid).mkdir(parents=True)
    leaves = [layout.cgroup_dir(h, f"hutch/{cid}", v2=False) for h in HOST.hierarchies()]
    if HOST.v2 is not None:
        leaves.append(layout.cgroup_dir(HOST.v2, f"hutch/{cid}", v2=True))
    for d in leaves:
        os.makedirs(d, exist_ok=True)
    busy = layout.cgroup_dir(HOST.v1["pids"], f"hutch/{cid}", v2=False)
    sleeper = subprocess.Popen(["sleep", "100"])
    try:
        Path(busy, "cgroup.procs").write_text(str(sleeper.pid))
        runtime.run("delete", "--force", cid)
        assert [d for d in leaves if os.path.exists(d)] == [busy]
        assert sleeper.poll() is None
        assert not (Path(runtime.root) / cid).exists()
    finally:
        sleeper.kill()
        sleeper.wait()
        wait_for(lambda: read(Path(busy, "cgroup.procs")) == "", what="the sleeper to leave")
        os.rmdir(busy)


def test_delete_force_after_the_foreground_runtime_was_killed(runtime: Any, bundle: Any, cid: str) -> None:
    proc = runtime.popen("run", "--bundle", bundle(["sleep", "100"]), cid)
    try:
        wait_for(lambda: (Path(runtime.root) / cid / "state.json").exists(), 10, "the container")
        wait_for(lambda: runtime.state(cid)["status"] == "running", 10, "the container to run")
    finally:
        proc.kill()
        proc.wait()
    rec = record(runtime, cid)
    assert cgroups.pids(rec)
    runtime.run("delete", "--force", cid)
    assert [d for d in cgroups.directories(rec) if os.path.exists(d)] == []


# --- a field the host cannot honour ---


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"memory": {"swappiness": 200}}, "linux.resources.memory.swappiness: 200 is out of range"),
        (
            {"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]},
            "hugepageLimits[0].pageSize: '3MB' is not a huge",
        ),
        ({"network": {"classID": 7}}, "linux.resources.network.classID:"),
        ({"blockIO": {"leafWeight": 300}}, "linux.resources.blockIO.leafWeight:"),
        (
            {"unified": {"memory.max": "1000000"}},
            "unified['memory.max']: the memory controller is on cgroup v1",
        ),
    ],
)
def test_unhonourable_field_is_an_error_and_leaves_nothing(
    runtime: Any, bundle: Any, cid: str, resources: dict[str, Any], message: str
) -> None:
    if "network" in resources and HOST.where("net_cls") is not None:
        pytest.skip("this host mounts net_cls")
    if "unified" in resources and HOST.mode != "hybrid":
        pytest.skip("only a hybrid host puts memory on v1 beside a v2 hierarchy")
    result = runtime.run(
        "run", "--bundle", bundle(["true"], edit=resources_spec(resources)), cid, check=False
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert not (Path(runtime.root) / cid).exists()
    assert [p for p in _ours() if cid in p] == []


def test_unified_on_a_v1_only_record_is_an_error() -> None:
    from hutch.errors import HostError
    from hutch.oci.resources import Resources

    with pytest.raises(HostError, match=r"linux\.resources\.unified: this host has no cgroup v2"):
        cgroups.apply({"v1": {}, "v2": ""}, Resources(unified={"pids.max": "1"}), update=False, devices=False)


# --- limits, by their effects ---


def test_memory_hog_is_oom_killed(runtime: Any, bundle: Any, cid: str) -> None:
    limit = 48 << 20
    b = bundle(["tail", "/dev/zero"], edit=resources_spec({"memory": {"limit": limit, "swap": limit}}))
    result = runtime.run("run", "--keep", "--bundle", b, cid, check=False, timeout=60)
    assert result.returncode == 137, result.stderr
    rec = record(runtime, cid)
    assert stats.oom_kills(rec) >= 1
    if HOST.where("memory") == "v1":
        oom = dict(line.split() for line in read(v1dir(rec, "memory") / "memory.oom_control").splitlines())
        assert int(oom["oom_kill"]) >= 1
        assert read(v1dir(rec, "memory") / "memory.limit_in_bytes") == str(limit)
    runtime.run("delete", cid)


def test_pids_limit_makes_fork_fail(runtime: Any, bundle: Any, cid: str) -> None:
    # busybox sh gives up at the first fork that fails: sh and three sleeps fit under 4, the fifth does not.
    script = "for i in 1 2 3 4 5 6 7 8; do sleep 3 & done; wait; echo all forked"
    b = sh(bundle, script, edit=resources_spec({"pids": {"limit": 4}}))
    result = runtime.run("run", "--keep", "--bundle", b, cid, check=False)
    assert "can't fork" in result.stderr
    assert "all forked" not in result.stdout
    assert result.returncode != 0
    where = cgroups.where(record(runtime, cid), "pids")
    assert where is not None
    assert read(Path(where[1]) / "pids.max") == "4"
    events = dict(line.split() for line in read(Path(where[1]) / "pids.events").splitlines())
    assert int(events["max"]) >= 1  # the kernel counted the refused fork
    runtime.run("delete", cid)


def test_pids_limit_leaves_room_for_what_fits(runtime: Any, bundle: Any, cid: str) -> None:
    script = "sleep 1 & sleep 1 & wait; echo all forked"
    b = sh(bundle, script, edit=resources_spec({"pids": {"limit": 3}}))
    assert runtime.run("run", "--bundle", b, cid).stdout.strip() == "all forked"


def test_cpu_quota_holds_a_busy_loop(runtime: Any, bundle: Any, cid: str) -> None:
    b = sh(bundle, "while :; do :; done", edit=resources_spec({"cpu": {"quota": 20000, "period": 100000}}))
    runtime.run("run", "-d", "--bundle", b, cid)
    rec = record(runtime, cid)
    if HOST.where("cpu") == "v1":
        assert read(v1dir(rec, "cpu") / "cpu.cfs_quota_us") == "20000"
    before, t0 = cpu_usage_ns(rec), time.monotonic()
    time.sleep(1.0)
    used = (cpu_usage_ns(rec) - before) / 1e9 / (time.monotonic() - t0)
    assert 0.01 < used < 0.35, f"a 20% quota let the loop use {used:.0%} of a CPU"
    # Lift the quota: the kernel has it at once.
    runtime.run("update", "--cpu-quota", "-1", cid)
    if HOST.where("cpu") == "v1":
        assert read(v1dir(rec, "cpu") / "cpu.cfs_quota_us") == "-1"


KMSG = {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666}
TRY_KMSG = "if echo -n > /dev/kmsg; then echo open; else echo denied; fi"


def test_v1_denied_device_cannot_be_opened(runtime: Any, bundle: Any, cid: str) -> None:
    need_v1("devices")
    b = sh(bundle, TRY_KMSG, edit=lambda s: s["linux"].__setitem__("devices", [KMSG]))
    assert runtime.run("run", "--bundle", b, cid).stdout.strip() == "denied"


def test_v1_device_rules_read_back(runtime: Any, bundle: Any, cid: str) -> None:
    need_v1("devices")
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"},
    ]

    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["devices"] = [KMSG]
        spec["linux"]["resources"] = {"devices": rules}

    b = sh(bundle, TRY_KMSG + "; sleep 100", edit=edit)
    runtime.run("run", "-d", "--bundle", b, cid)
    listed = read(v1dir(record(runtime, cid), "devices") / "devices.list").splitlines()
    assert "c 1:11 w" in listed
    assert "c 1:3 rwm" in listed and "a *:* rwm" not in listed


def test_v1_allowed_device_output(runtime: Any, bundle: Any, cid: str) -> None:
    need_v1("devices")
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"},
    ]

    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["devices"] = [KMSG]
        spec["linux"]["resources"] = {"devices": rules}

    assert runtime.run("run", "--bundle", sh(bundle, TRY_KMSG, edit=edit), cid).stdout.strip() == "open"


# --- v2 devices (a BPF program) and the v2 freezer, on this host's v2 hierarchy ---


class Child:
    """A forked process that waits for a word on a pipe, then tries to open devices and reports."""

    def __init__(self) -> None:
        self.go_r, self.go_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(self.go_w)
                os.close(self.out_r)
                while True:
                    word = os.read(self.go_r, 64).decode()
                    if not word or word == "exit":
                        os._exit(0)
                    results = []
                    for path in word.split(","):
                        try:
                            os.close(os.open(path, os.O_WRONLY))
                            results.append(f"{path}=ok")
                        except OSError as e:
                            results.append(f"{path}={e.errno}")
                    os.write(self.out_w, " ".join(results).encode())
            finally:
                os._exit(1)
        os.close(self.go_r)
        os.close(self.out_w)

    def ask(self, paths: str) -> str:
        os.write(self.go_w, paths.encode())
        return os.read(self.out_r, 4096).decode()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        for fd in (self.go_w, self.out_r):
            os.close(fd)


def v2_only_layout(*controllers: str) -> layout.Layout:
    """This host's layout, with the given controllers taken off v1: they then go to the v2 hierarchy."""
    if HOST.v2 is None:
        pytest.skip("this host has no cgroup v2 hierarchy")
    v1 = {
        c: h for c, h in HOST.v1.items() if c not in controllers and not set(h.controllers) & set(controllers)
    }
    return layout.Layout(v1, HOST.v2)


def linux_with(
    resources: dict[str, Any], cgroups_path: str, devices: list[dict[str, Any]] | None = None
) -> Any:
    spec = {
        "ociVersion": "1.2.0",
        "linux": {"cgroupsPath": cgroups_path, "resources": resources, "devices": devices or []},
    }
    linux = parse(spec, "test").linux
    assert linux is not None
    return linux


def test_v2_device_program_denies_and_allows(cid: str) -> None:
    host = v2_only_layout("devices")
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"},
    ]
    child = Child()
    rec: dict[str, Any] = {}
    try:
        rec = cgroups.setup(cid, linux_with({"devices": rules}, f"/{cid}"), child.pid, host=host)
        assert "devices" not in rec["v1"]
        assert devices_bpf.attached(rec["v2"]), "a device program is attached to the v2 cgroup"
        answer = child.ask("/dev/null,/dev/kmsg,/dev/tty0")
        # /dev/null is a default device; kmsg is allowed for writing; tty0 (c 4:0) is denied.
        assert answer == "/dev/null=ok /dev/kmsg=ok /dev/tty0=1"
    finally:
        child.close()
        if rec:
            cgroups.destroy(rec)
    assert not os.path.exists(rec["v2"])


def test_v2_device_program_default_deny(cid: str) -> None:
    host = v2_only_layout("devices")
    child = Child()
    rec: dict[str, Any] = {}
    try:
        rec = cgroups.setup(
            cid, linux_with({"devices": [{"allow": False, "access": "rwm"}]}, f"/{cid}"), child.pid, host=host
        )
        assert child.ask("/dev/zero,/dev/kmsg") == "/dev/zero=ok /dev/kmsg=1"
    finally:
        child.close()
        if rec:
            cgroups.destroy(rec)


def test_v2_device_program_outside_the_cgroup_has_no_effect(cid: str) -> None:
    # The same program on a bare v2 cgroup, made here: only processes inside are held by it.
    from hutch.runtime.cgroups import devices

    assert HOST.v2 is not None
    d = Path(HOST.v2.mountpoint) / cid
    d.mkdir()
    inside, outside = Child(), Child()
    try:
        devices_bpf.attach(str(d), devices.effective([]))
        (d / "cgroup.procs").write_text(str(inside.pid))
        assert inside.ask("/dev/kmsg") == "/dev/kmsg=1"
        assert outside.ask("/dev/kmsg") == "/dev/kmsg=ok"
    finally:
        inside.close()
        outside.close()
        wait_for(lambda: read(d / "cgroup.procs") == "", what="the child to leave")
        d.rmdir()


def test_v2_freezer_pauses_and_resumes(cid: str) -> None:
    host = v2_only_layout("freezer")
    child = Child()
    rec: dict[str, Any] = {}
    try:
        rec = cgroups.setup(cid, linux_with({}, f"/{cid}"), child.pid, host=host)
        assert "freezer" not in rec["v1"]
        freezer.pause(rec)
        assert cgroups.is_frozen(rec)
        assert read(Path(rec["v2"]) / "cgroup.freeze") == "1"
        assert Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] in "SD"
        freezer.resume(rec)
        assert not cgroups.is_frozen(rec)
        assert child.ask("/dev/null") == "/dev/null=ok"  # it runs again
    finally:
        child.close()
        if rec:
            cgroups.destroy(rec)


def test_v2_hugetlb_on_hybrid(runtime: Any, bundle: Any, cid: str) -> None:
    if HOST.where("hugetlb") != "v2":
        pytest.skip("hugetlb is not on the v2 hierarchy here")
    limits = [{"pageSize": "2MB", "limit": 4 << 21}]
    b = bundle(
        ["sleep", "100"], edit=resources_spec({"hugepageLimits": limits, "unified": {"hugetlb.1GB.max": "0"}})
    )
    runtime.run("run", "-d", "--bundle", b, cid)
    v2dir = Path(record(runtime, cid)["v2"])
    assert read(v2dir / "hugetlb.2MB.max") == str(4 << 21)
    assert read(v2dir / "hugetlb.1GB.max") == "0"
    event = json.loads(runtime.run("events", "--stats", cid).stdout)
    assert "2MB" in event["data"]["hugetlb"]


# --- pause, resume ---


def counter(pid: int) -> int:
    path = Path(f"/proc/{pid}/root/dev/shm/count")
    for _ in range(100):
        text = path.read_text().strip() if path.exists() else ""
        if text:
            return int(text)
        time.sleep(0.01)
    raise AssertionError("the counter file stayed empty")


def test_pause_stops_a_counter_and_resume_restarts_it(runtime: Any, bundle: Any, cid: str) -> None:
    b = sh(
        bundle,
        "i=0; while :; do i=$((i+1)); echo $i > /dev/shm/count.tmp; mv /dev/shm/count.tmp /dev/shm/count; done",
    )
    runtime.run("run", "-d", "--bundle", b, cid)
    pid = init_pid(runtime, cid)
    wait_for(lambda: Path(f"/proc/{pid}/root/dev/shm/count").exists(), 5, "the counter")
    runtime.run("pause", cid)
    assert runtime.state(cid)["status"] == "paused"
    rec = record(runtime, cid)
    if "freezer" in rec["v1"]:
        assert read(v1dir(rec, "freezer") / "freezer.state") == "FROZEN"
    first = counter(pid)
    time.sleep(0.3)
    assert counter(pid) == first
    assert runtime.run("pause", cid, check=False).returncode != 0  # not running
    assert runtime.run("exec", cid, "true", check=False).returncode != 0
    runtime.run("resume", cid)
    assert runtime.state(cid)["status"] == "running"
    wait_for(lambda: counter(pid) > first, 5, "the counter to move again")
    assert runtime.run("resume", cid, check=False).returncode != 0  # not paused


def test_a_created_container_can_be_paused_and_resumed(runtime: Any, bundle: Any, cid: str) -> None:
    runtime.run("create", "--bundle", bundle(["true"]), cid)
    runtime.run("pause", cid)
    assert cgroups.is_frozen(record(runtime, cid))
    runtime.run("resume", cid)
    assert not cgroups.is_frozen(record(runtime, cid))
    assert runtime.state(cid)["status"] == "created"


def test_delete_force_of_a_paused_container(runtime: Any, bundle: Any, cid: str) -> None:
    runtime.run("run", "-d", "--bundle", sh(bundle, "sleep 100 & sleep 100"), cid)
    rec = record(runtime, cid)
    runtime.run("pause", cid)
    runtime.run("delete", "--force", cid)
    assert [d for d in cgroups.directories(rec) if os.path.exists(d)] == []


# --- every resource, read back after create and after update ---


def test_resources_read_back_after_create_and_update(runtime: Any, bundle: Any, cid: str) -> None:
    need_v1("memory", "cpu", "cpuset", "pids", "blkio")
    res = {
        "memory": {"limit": 256 << 20, "reservation": 128 << 20, "swappiness": 30, "disableOOMKiller": False},
        "cpu": {
            "shares": 512,
            "quota": 50000,
            "period": 100000,
            "burst": 1000,
            "cpus": "0",
            "mems": "0",
            "idle": 0,
        },
        "pids": {"limit": 64},
        "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1 << 20}]},
    }
    if os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
        res["memory"]["swap"] = 512 << 20
    b = bundle(["sleep", "100"], edit=resources_spec(res))
    runtime.run("run", "-d", "--bundle", b, cid)
    rec = record(runtime, cid)
    mem, cpu, cpuset, pids, blkio = (v1dir(rec, c) for c in ("memory", "cpu", "cpuset", "pids", "blkio"))
    assert read(mem / "memory.limit_in_bytes") == str(256 << 20)
    assert read(mem / "memory.soft_limit_in_bytes") == str(128 << 20)
    assert read(mem / "memory.swappiness") == "30"
    if "swap" in res["memory"]:
        assert read(mem / "memory.memsw.limit_in_bytes") == str(512 << 20)
    assert read(cpu / "cpu.shares") == "512"
    assert read(cpu / "cpu.cfs_quota_us") == "50000"
    assert read(cpu / "cpu.cfs_period_us") == "100000"
    assert read(cpu / "cpu.cfs_burst_us") == "1000"
    assert read(cpu / "cpu.idle") == "0"
    assert read(cpuset / "cpuset.cpus") == "0"
    assert read(cpuset / "cpuset.mems") == "0"
    assert read(pids / "pids.max") == "64"
    weight = "blkio.bfq.weight" if (blkio / "blkio.bfq.weight").exists() else "blkio.weight"
    assert read(blkio / weight) == "300"
    assert read(blkio / "blkio.throttle.read_bps_device") == f"254:0 {1 << 20}"

    # update by flags
    runtime.run(
        "update",
        "--memory", "200m",
        "--memory-reservation", "100m",
        "--cpu-shares", "256",
        "--cpu-quota", "30000",
        "--cpu-period", "200000",
        "--cpuset-cpus", "0-1" if os.cpu_count() and os.cpu_count() > 1 else "0",  # type: ignore[operator]
        "--pids-limit", "32",
        "--blkio-weight", "400",
        cid,
    )  # fmt: skip
    assert read(mem / "memory.limit_in_bytes") == str(200 << 20)
    assert read(mem / "memory.soft_limit_in_bytes") == str(100 << 20)
    assert read(cpu / "cpu.shares") == "256"
    assert read(cpu / "cpu.cfs_quota_us") == "30000"
    assert read(cpu / "cpu.cfs_period_us") == "200000"
    assert read(pids / "pids.max") == "32"
    assert read(blkio / weight) == "400"

    # update by --resources on stdin
    doc = {"memory": {"limit": 300 << 20}, "cpu": {"quota": 10000}, "pids": {"limit": -1}}
    runtime.run("update", "--resources", "-", cid, input=json.dumps(doc))
    assert read(mem / "memory.limit_in_bytes") == str(300 << 20)
    assert read(cpu / "cpu.cfs_quota_us") == "10000"
    assert read(cpu / "cpu.cfs_period_us") == "200000"  # left alone
    assert read(pids / "pids.max") == "max"


def test_realtime_with_a_budget_from_the_parent(runtime: Any, bundle: Any, cid: str) -> None:
    need_v1("cpu")
    cpu_root = Path(HOST.v1["cpu"].mountpoint)
    if not (cpu_root / "cpu.rt_runtime_us").exists():
        pytest.skip("no real-time group scheduling")
    res = {"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 10000}}
    runtime.run("run", "-d", "--bundle", bundle(["sleep", "100"], edit=resources_spec(res, f"/{cid}")), cid)
    cpu = v1dir(record(runtime, cid), "cpu")
    assert read(cpu / "cpu.rt_period_us") == "1000000"
    assert read(cpu / "cpu.rt_runtime_us") == "10000"
    runtime.run("update", "--cpu-rt-runtime", "20000", cid)
    assert read(cpu / "cpu.rt_runtime_us") == "20000"


def test_realtime_on_the_default_path(runtime: Any, bundle: Any, cid: str) -> None:
    # hutch/ (ours) gets the budget the container asks for: a new cgroup has none to hand down.
    need_v1("cpu")
    if not (Path(HOST.v1["cpu"].mountpoint) / "cpu.rt_runtime_us").exists():
        pytest.skip("no real-time group scheduling")
    res = {"cpu": {"realtimeRuntime": 10000}}
    runtime.run("run", "-d", "--bundle", bundle(["sleep", "100"], edit=resources_spec(res)), cid)
    cpu = v1dir(record(runtime, cid), "cpu")
    assert read(cpu / "cpu.rt_runtime_us") == "10000"
    assert int(read(cpu.parent / "cpu.rt_runtime_us")) >= 10000
    runtime.run("update", "--cpu-rt-runtime", "25000", cid)
    assert read(cpu / "cpu.rt_runtime_us") == "25000"
    assert int(read(cpu.parent / "cpu.rt_runtime_us")) >= 25000


def test_delete_gives_the_realtime_budget_back(runtime: Any, bundle: Any, cid: str) -> None:
    # hutch/ holds the real-time budget of the containers below it; a deleted container's share must go
    # back, or it piles up there with every container until the host's budget is gone.
    need_v1("cpu")
    top = Path(HOST.v1["cpu"].mountpoint)
    if not (top / "cpu.rt_runtime_us").exists():
        pytest.skip("no real-time group scheduling")
    own = top / f"{cid}-own"  # the runtime's own cpu cgroup: the hutch/ below it is this test's alone
    parent = own / "hutch"

    def in_own(*args: str) -> None:
        shell = f'echo $$ > {own}/cgroup.procs && exec "$@"'
        subprocess.run(["sh", "-c", shell, "sh", *runtime.command(*args)], check=True, timeout=30)

    own.mkdir()
    try:
        (own / "cpu.rt_runtime_us").write_text("50000")
        in_own("run", "-d", "--bundle", bundle(["sleep", "100"]), f"{cid}-keep")  # keeps hutch/ there
        assert read(parent / "cpu.rt_runtime_us") == "0"
        realtime = bundle(["true"], edit=resources_spec({"cpu": {"realtimeRuntime": 10000}}))
        in_own("create", "--bundle", realtime, f"{cid}-a")
        in_own("create", "--bundle", realtime, f"{cid}-b")
        assert read(parent / "cpu.rt_runtime_us") == "20000"
        in_own("delete", "--force", f"{cid}-a")
        assert read(parent / "cpu.rt_runtime_us") == "10000"
        in_own("delete", "--force", f"{cid}-b")
        assert read(parent / "cpu.rt_runtime_us") == "0"
        in_own("run", "--bundle", realtime, f"{cid}-c")
        assert read(parent / "cpu.rt_runtime_us") == "0"
        in_own("delete", "--force", f"{cid}-keep")
        assert read(parent / "cpu.rt_runtime_us") == "0"  # hutch/ stays, with nothing held for the gone
    finally:
        for name in ("a", "b", "c", "keep"):
            runtime.run("delete", "--force", f"{cid}-{name}", check=False)
        with contextlib.suppress(OSError):
            parent.rmdir()
        own.rmdir()


def test_a_parent_is_left_without_trying_and_the_default_one_stays(
    runtime: Any, bundle: Any, cid: str, tmp_path: Path
) -> None:
    # The runtime runs in a cpu cgroup of this test's own, so the hutch/ below it there is this test's alone.
    need_v1("cpu")
    own = Path(HOST.v1["cpu"].mountpoint) / f"{cid}-own"
    parent = own / "hutch"
    trace = tmp_path / "trace"

    def in_own(*args: str, strace: bool = False) -> None:
        traced = ["strace", "-f", "-qq", "-e", "trace=rmdir", "-o", str(trace)] if strace else []
        shell = f'echo $$ > {own}/cgroup.procs && exec "$@"'
        subprocess.run(["sh", "-c", shell, "sh", *traced, *runtime.command(*args)], check=True, timeout=30)

    own.mkdir()
    try:
        in_own("run", "-d", "--bundle", bundle(["sleep", "100"]), f"{cid}-keep")
        in_own("run", "-d", "--bundle", bundle(["sleep", "100"]), f"{cid}-a")
        in_own("delete", "--force", f"{cid}-a", strace=True)
        removed = [line.split('"')[1] for line in trace.read_text().splitlines() if "rmdir(" in line]
        # Its own cgroups only (and its state dir): no rmdir of a parent another container is below.
        assert removed and all(p.endswith(f"/{cid}-a") for p in removed), removed
        assert (parent / f"{cid}-keep").is_dir()
        in_own("delete", "--force", f"{cid}-keep", strace=True)
        removed = [line.split('"')[1] for line in trace.read_text().splitlines() if "rmdir(" in line]
        assert removed and all(p.endswith(f"/{cid}-keep") for p in removed), removed
        # hutch/ stays, as podman's parent cgroup does: no mkdir and rmdir of it in every hierarchy per run.
        assert parent.is_dir() and not (parent / f"{cid}-keep").exists()
    finally:
        for name in ("a", "keep"):
            runtime.run("delete", "--force", f"{cid}-{name}", check=False)
        with contextlib.suppress(OSError):
            parent.rmdir()
        own.rmdir()


def test_update_memory_below_usage_with_check(runtime: Any, bundle: Any, cid: str) -> None:
    runtime.run("run", "-d", "--bundle", bundle(["sleep", "100"]), cid)
    doc = {"memory": {"limit": 4096, "checkBeforeUpdate": True}}
    result = runtime.run("update", "-r", "-", cid, input=json.dumps(doc), check=False)
    assert result.returncode != 0
    assert "memory.limit" in result.stderr and "usage" in result.stderr


def test_update_of_a_stopped_container_fails(runtime: Any, bundle: Any, cid: str) -> None:
    runtime.run("run", "--keep", "--bundle", bundle(["true"]), cid)
    result = runtime.run("update", "--pids-limit", "5", cid, check=False)
    assert result.returncode != 0 and "stopped" in result.stderr


# --- ps, events ---


def test_ps_lists_the_containers_processes(runtime: Any, bundle: Any, cid: str) -> None:
    runtime.run("run", "-d", "--bundle", sh(bundle, "sleep 101 & sleep 102"), cid)
    rec = record(runtime, cid)
    wait_for(lambda: len(cgroups.pids(rec)) == 2, 5, "two processes")
    listed = json.loads(runtime.run("ps", "--format", "json", cid).stdout)
    assert sorted(listed) == cgroups.pids(rec)
    table = runtime.run("ps", cid).stdout.splitlines()
    assert table[0].split()[:2] == ["UID", "PID"]
    assert len(table) == 3
    assert any("sleep 101" in line for line in table) and any("sleep 102" in line for line in table)
    custom = runtime.run("ps", cid, "-o", "pid,comm").stdout.split()
    assert custom == ["PID", "COMMAND", *(x for p in cgroups.pids(rec) for x in (str(p), "sleep"))]


def test_events_stats(runtime: Any, bundle: Any, cid: str) -> None:
    res = {"memory": {"limit": 64 << 20}, "pids": {"limit": 10}}
    runtime.run("run", "-d", "--bundle", sh(bundle, "sleep 100", edit=resources_spec(res)), cid)
    event = json.loads(runtime.run("events", "--stats", cid).stdout)
    assert event["type"] == "stats" and event["id"] == cid
    data = event["data"]
    assert data["memory"]["usage"]["limit"] == 64 << 20
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"] == {"current": 1, "limit": 10}
    assert data["cpu"]["usage"]["total"] > 0
    assert "hugetlb" in data and "blkio" in data


def test_events_stream_reports_an_oom(runtime: Any, bundle: Any, cid: str) -> None:
    limit = 48 << 20
    script = "sleep 0.5; tail /dev/zero; sleep 100"
    b = sh(bundle, script, edit=resources_spec({"memory": {"limit": limit, "swap": limit}}))
    runtime.run("run", "-d", "--bundle", b, cid)
    proc = runtime.popen("events", "--interval", "10s", cid, stdout=subprocess.PIPE, text=True)
    try:
        types = []
        deadline = time.monotonic() + 20
        assert proc.stdout is not None
        while "oom" not in types and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            types.append(json.loads(line)["type"])
        assert types[0] == "stats"
        assert "oom" in types
    finally:
        proc.kill()
        proc.wait()


def test_systemd_cgroup_is_a_clear_error(runtime: Any, bundle: Any, cid: str) -> None:
    result = runtime.run("--systemd-cgroup", "run", "--bundle", bundle(["true"]), cid, check=False)
    assert result.returncode != 0
    assert "systemd" in result.stderr


def test_features_say_v1_and_v2(runtime: Any) -> None:
    feats = json.loads(runtime.run("features").stdout)
    assert feats["linux"]["cgroup"]["v1"] is True
    assert feats["linux"]["cgroup"]["v2"] is True
    assert feats["linux"]["cgroup"]["systemd"] is False
