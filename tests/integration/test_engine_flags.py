"""`hutch run`/`create` flags beyond the basics, and `hutch update`: each effect seen from inside the
container (/proc/self/status, mountinfo, its own cgroupfs, ids), in the kernel's files or in inspect; bad
values fail with one line naming the flag, exit 125, and leave nothing behind."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import IMAGE, hutch, leftovers, ok

# The module's registry and pulled image, as test_engine_run makes them.
remote = run_suite.remote
root = run_suite.root


def mine(root: Path) -> list[str]:
    """leftovers(), less the cgroups of other roots' containers (other suites run beside this one): a
    cgroup counts when its runtime state names a bundle under our root, or when it is still there after
    a few seconds without any runtime state (another root's container being torn down goes by then)."""
    deadline = time.monotonic() + 5
    while True:
        out = []
        for item in leftovers(root):
            cid = item.rsplit("/", 1)[-1]
            state = Path("/run/hutch/runtime") / cid / "state.json"
            if item.startswith("cgroup ") and state.exists() and str(root) not in state.read_text():
                continue
            out.append(item)
        if not out or time.monotonic() > deadline or not all(i.startswith("cgroup ") for i in out):
            return out
        time.sleep(0.2)


def run(root: Path, *args: str) -> str:
    """`run --rm ARGS`: its stdout, after checking it exited 0 and left nothing."""
    proc = hutch(root, "run", "--rm", *args)
    assert proc.returncode == 0, f"run {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}"
    assert mine(root) == []
    return proc.stdout


def refused(root: Path, *args: str, flag: str) -> str:
    """`run --rm ARGS` fails with one `Error:` line naming `flag`, exits 125, and leaves nothing."""
    proc = hutch(root, "run", "--rm", *args)
    assert proc.returncode == 125, proc.stderr
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert flag in proc.stderr, proc.stderr
    assert mine(root) == []
    assert ok(root, "ps", "-aq") == ""
    return proc.stderr


def status(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}


def inspect(root: Path, name: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(ok(root, "inspect", name))[0]
    return doc


def cap_mask(names: list[str]) -> int:
    numbers = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5}
    numbers |= {"CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10}
    numbers |= {"CAP_NET_ADMIN": 12, "CAP_SYS_CHROOT": 18, "CAP_SYS_ADMIN": 21, "CAP_SETFCAP": 31}
    mask = 0
    for n in names:
        mask |= 1 << numbers[n]
    return mask


def test_env_file_labels_annotations_group_add(root: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\n\nFROM_FILE=1\nOVERRIDE=file\n")
    out = run(
        root, "--env-file", str(env_file), "-e", "OVERRIDE=flag", "--group-add", "extra", "--group-add", "3000",
        IMAGE, "sh", "-c", "echo $FROM_FILE $OVERRIDE; id -G",
    )  # fmt: skip
    assert out.splitlines() == ["1 flag", "0 2000 3000"]
    cid = ok(
        root, "create", "--label", "team=a", "-l", "empty", "--annotation", "org.example/k=v",
        "--stop-signal", "SIGHUP", "--stop-timeout", "3", IMAGE, "true",
    ).strip()  # fmt: skip
    doc = inspect(root, cid)
    config = doc["Config"]
    assert isinstance(config, dict)
    assert config["Labels"] == {"team": "a", "empty": ""}
    assert config["Annotations"] == {"org.example/k": "v"}
    assert (config["StopSignal"], config["StopTimeout"]) == ("SIGHUP", 3)
    spec = json.loads((root / "containers" / cid / "userdata" / "config.json").read_text())
    assert spec["annotations"]["org.example/k"] == "v"
    ok(root, "rm", cid)
    proc = hutch(root, "run", "--rm", "--env-file", str(tmp_path / "missing"), IMAGE, "true")
    assert proc.returncode == 125 and "--env-file" in proc.stderr
    refused(root, "--group-add", "nosuchgroup", IMAGE, "true", flag="--group-add")
    refused(root, "--stop-signal", "SIGNOPE", IMAGE, "true", flag="--stop-signal")


def test_stop_signal_and_stop_timeout_drive_stop(root: Path) -> None:
    # The image says SIGUSR1; --stop-signal TERM reaches the trap, which exits 3.
    script = "trap 'exit 3' TERM; while :; do sleep 0.1; done"
    cid = ok(root, "run", "-d", "--stop-signal", "TERM", IMAGE, "sh", "-c", script).strip()
    ok(root, "stop", cid)
    assert ok(root, "inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "3"
    ok(root, "rm", cid)
    # sleep as PID 1 ignores SIGUSR1: killed once its 1 s --stop-timeout is over, not after 10 s.
    cid = ok(root, "run", "-d", "--stop-timeout", "1", IMAGE, "sleep", "1000").strip()
    started = time.monotonic()
    ok(root, "stop", cid)
    took = time.monotonic() - started
    assert 0.9 < took < 6, took
    assert ok(root, "inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "137"
    ok(root, "rm", cid)
    assert mine(root) == []


def test_cap_add_and_drop(root: Path) -> None:
    default = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID"]
    default += ["CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_SETFCAP"]
    got = status(run(root, "--cap-add", "sys_admin", "--cap-add", "CAP_NET_ADMIN", "--cap-drop", "chown",
                     IMAGE, "cat", "/proc/self/status"))  # fmt: skip
    want = cap_mask([c for c in default if c != "CAP_CHOWN"] + ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"])
    assert int(got["CapBnd"], 16) == want and int(got["CapEff"], 16) == want
    # With CAP_SYS_ADMIN podman's seccomp profile lets mount(2) through: the capability works.
    assert (
        run(
            root,
            "--cap-add",
            "SYS_ADMIN",
            IMAGE,
            "sh",
            "-c",
            "mkdir /tmp/m && mount -t tmpfs t /tmp/m && echo ok",
        )
        == "ok\n"
    )
    got = status(run(root, "--cap-drop", "ALL", "--cap-add", "kill", IMAGE, "cat", "/proc/self/status"))
    assert int(got["CapBnd"], 16) == cap_mask(["CAP_KILL"])
    got = status(run(root, "--cap-drop", "all", IMAGE, "cat", "/proc/self/status"))
    assert int(got["CapEff"], 16) == 0 and int(got["CapBnd"], 16) == 0
    # A non-root user gets only the added capabilities, ambient so that they survive its exec (as podman).
    got = status(run(root, "-u", "app", "--cap-add", "NET_ADMIN", IMAGE, "cat", "/proc/self/status"))
    assert int(got["CapEff"], 16) == int(got["CapAmb"], 16) == cap_mask(["CAP_NET_ADMIN"])
    got = status(run(root, "-u", "app", IMAGE, "cat", "/proc/self/status"))
    assert int(got["CapEff"], 16) == int(got["CapAmb"], 16) == 0
    refused(root, "--cap-add", "CAP_NOPE", IMAGE, "true", flag="--cap-add")
    refused(root, "--cap-drop", "nope", IMAGE, "true", flag="--cap-drop")


def test_privileged(root: Path) -> None:
    ours = int(status(Path("/proc/self/status").read_text())["CapBnd"], 16)
    script = "cat /proc/self/status; grep -E ' /sys | /proc/keys ' /proc/self/mountinfo; ls /dev"
    out = run(root, "--privileged", IMAGE, "sh", "-c", script)
    got = status(out)
    assert int(got["CapBnd"], 16) == ours  # every capability the engine has
    assert got["Seccomp"] == "0"
    sys_line = next(line for line in out.splitlines() if " /sys " in line)
    assert " rw," in sys_line  # /sys is writable
    assert " /proc/keys " not in out  # nothing masked
    host_devices = {d for d in os.listdir("/dev") if d.startswith(("loop", "vd", "null", "zero"))}
    assert host_devices <= set(out.split())
    assert run(root, IMAGE, "sh", "-c", "grep -c ' /proc/keys ' /proc/self/mountinfo") == "1\n"


def test_security_opts(root: Path) -> None:
    out = run(
        root, "--security-opt", "no-new-privileges", "--security-opt", "mask=/etc/hostname",
        "--security-opt", "unmask=/proc/keys", "--security-opt", "label=disable",
        "--security-opt", "apparmor=unconfined", "--security-opt", "seccomp=unconfined",
        IMAGE, "sh", "-c",
        "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status; wc -c < /etc/hostname; "
        "grep -c ' /proc/keys ' /proc/self/mountinfo || true",
    )  # fmt: skip
    lines = out.split()
    assert lines == ["NoNewPrivs:", "1", "Seccomp:", "0", "0", "0"], out
    got = run(root, "--security-opt", "unmask=ALL", IMAGE, "sh", "-c", "grep -c -E ' /proc/(keys|sys) ' "
              "/proc/self/mountinfo || true")  # fmt: skip
    assert got == "0\n"
    refused(root, "--security-opt", "bogus=1", IMAGE, "true", flag="--security-opt")
    refused(root, "--security-opt", "mask=relative", IMAGE, "true", flag="--security-opt")


def test_sysctl_shm_ulimit_oom_score(root: Path) -> None:
    out = run(
        root, "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.msgmax=4096", "--shm-size", "10m",
        "--ulimit", "nofile=1000:2000", "--ulimit", "nproc=300", "--oom-score-adj", "200", IMAGE, "sh", "-c",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax /proc/self/oom_score_adj; "
        "grep ' /dev/shm ' /proc/self/mountinfo; grep -E 'open files|processes' /proc/self/limits",
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[:3] == ["1", "4096", "200"]
    assert "size=10240k" in lines[3]
    assert lines[4].split()[-3:-1] == ["300", "300"]
    assert lines[5].split()[-3:-1] == ["1000", "2000"]
    refused(root, "--ulimit", "nofile=30000", IMAGE, "true", flag="--ulimit")
    refused(root, "--ulimit", "bogus=1", IMAGE, "true", flag="--ulimit")
    refused(root, "--sysctl", "kernel.hostname2=x", IMAGE, "true", flag="--sysctl")
    refused(root, "--sysctl", "vm.swappiness=1", IMAGE, "true", flag="--sysctl")
    refused(root, "--shm-size", "lots", IMAGE, "true", flag="--shm-size")
    refused(root, "--oom-score-adj", "5000", IMAGE, "true", flag="--oom-score-adj")


def test_device(root: Path) -> None:
    out = run(root, "--device", "/dev/null:/dev/mynull:rw", IMAGE, "sh", "-c",
              "ls -l /dev/mynull; echo x > /dev/mynull && echo wrote")  # fmt: skip
    first, second = out.splitlines()
    assert first.startswith("c") and "1,   3" in first
    assert second == "wrote"
    # The cgroup allows what the permissions say: /dev/kmsg (not a default device) only for writing.
    out = run(root, "--device", "/dev/kmsg:/dev/k:w", IMAGE, "sh", "-c", "head -c1 /dev/k || echo denied")
    assert out == "denied\n"
    refused(root, "--device", "/dev/no-such-device", IMAGE, "true", flag="--device")
    refused(root, "--device", "/etc/passwd", IMAGE, "true", flag="--device")


CGROUP_FILES = (
    "memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes memory/memory.soft_limit_in_bytes "
    "cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares cpuset/cpuset.cpus cpuset/cpuset.mems "
    "pids/pids.max"
)


def test_resources_in_cgroupfs(root: Path) -> None:
    script = "cd /sys/fs/cgroup && cat " + CGROUP_FILES
    out = run(
        root, "-m", "64m", "--memory-swap", "96m", "--memory-reservation", "32m", "--cpus", "0.5",
        "--cpu-shares", "512", "--cpuset-cpus", "0", "--cpuset-mems", "0", "--pids-limit", "100",
        IMAGE, "sh", "-c", script,
    )  # fmt: skip
    assert out.split() == [
        str(64 << 20),
        str(96 << 20),
        str(32 << 20),
        "50000",
        "100000",
        "512",
        "0",
        "0",
        "100",
    ]
    # podman's defaults: twice the memory as memory+swap, 2048 pids; --cpu-quota/--cpu-period as given.
    out = run(root, "--memory", "100m", "--cpu-quota", "20000", "--cpu-period", "50000", IMAGE, "sh", "-c",
              "cd /sys/fs/cgroup && cat memory/memory.memsw.limit_in_bytes cpu/cpu.cfs_quota_us "
              "cpu/cpu.cfs_period_us pids/pids.max")  # fmt: skip
    assert out.split() == [str(200 << 20), "20000", "50000", "2048"]
    assert run(root, "--pids-limit", "-1", IMAGE, "cat", "/sys/fs/cgroup/pids/pids.max") == "max\n"
    refused(root, "--memory", "10x", IMAGE, "true", flag="--memory")
    refused(root, "--memory", "1k", IMAGE, "true", flag="--memory")
    refused(root, "--cpus", "many", IMAGE, "true", flag="--cpus")
    refused(root, "--cpus", "1", "--cpu-quota", "1000", IMAGE, "true", flag="--cpus")
    refused(root, "--memory-swap", "1g", IMAGE, "true", flag="--memory-swap")
    refused(root, "--pids-limit", "lots", IMAGE, "true", flag="--pids-limit")
    refused(root, "--cpuset-cpus", "a-b", IMAGE, "true", flag="--cpuset-cpus")


def test_init_is_catatonit_at_pid_1(root: Path) -> None:
    out = run(root, "--init", IMAGE, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; "
              "grep -c ' /run/podman-init ' /proc/self/mountinfo")  # fmt: skip
    assert out.splitlines() == ["/run/podman-init -- sh -c " + out.splitlines()[0].split(" -c ", 1)[1], "1"]
    # catatonit reaps and forwards: the exit code comes through.
    assert hutch(root, "run", "--rm", "--init", IMAGE, "sh", "-c", "exit 5").returncode == 5
    cid = ok(root, "create", "--init", IMAGE, "true").strip()
    assert ok(root, "inspect", "-f", "{{.HostConfig.Init}}", cid) == "true\n"
    ok(root, "rm", cid)


def _ns(pid: str, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def test_namespace_flags(root: Path) -> None:
    script = "for n in pid ipc uts cgroup; do readlink /proc/self/ns/$n; done; hostname; cat /etc/hostname"
    script += "; echo $HOSTNAME"
    host = [_ns("self", k) for k in ("pid", "ipc", "uts", "cgroup")] + [os.uname().nodename] * 3
    out = run(root, "--pid", "host", "--ipc", "host", "--uts", "host", "--cgroupns", "host", IMAGE, "sh", "-c",
              script).split()  # fmt: skip
    assert out == host
    out = run(root, "--pid", "private", "--cgroupns", "private", IMAGE, "sh", "-c", script).split()
    assert out[0] != host[0] and out[3] != host[3] and out[1] != host[1]
    # --ipc host shares the host's /dev/shm (its mount source); --ipc none has no /dev/shm at all.
    shm = "grep ' /dev/shm ' /proc/self/mountinfo | cut -d' ' -f3"
    host_shm = [
        x for x in Path("/proc/self/mountinfo").read_text().splitlines() if x.split()[4] == "/dev/shm"
    ]
    # (the last mount on /dev/shm is the one seen there)
    assert run(root, "--ipc", "host", IMAGE, "sh", "-c", shm).strip() == host_shm[-1].split()[2]
    assert run(root, "--ipc", "none", IMAGE, "sh", "-c", "ls /dev/shm 2>&1 || true").endswith(
        "No such file or directory\n"
    )
    refused(root, "--uts", "host", "--hostname", "x", IMAGE, "true", flag="--hostname")
    refused(root, "--pid", "bogus", IMAGE, "true", flag="--pid")
    refused(root, "--ipc", "container:no-such-container", IMAGE, "true", flag="no-such-container")


def test_join_another_containers_namespaces(root: Path) -> None:
    cid = ok(root, "run", "-d", "--name", "nsowner", IMAGE, "sleep", "1000").strip()
    try:
        pid = ok(root, "inspect", "-f", "{{.State.Pid}}", cid).strip()
        proc = hutch(root, "run", "--rm", "--pid", "container:nsowner", "--ipc", f"container:{cid[:12]}",
                     "--uts", "container:nsowner", IMAGE, "sh", "-c",
                     "for n in pid ipc uts; do readlink /proc/self/ns/$n; done; "
                     "cat /proc/1/cmdline | tr '\\0' ' '")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[:3] == [_ns(pid, "pid"), _ns(pid, "ipc"), _ns(pid, "uts")]
        assert lines[3].strip() == "sleep 1000"
    finally:
        ok(root, "rm", "-f", cid)
    assert mine(root) == []


def _cgroup_file(pid: str, controller: str, name: str) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return (Path("/sys/fs/cgroup") / controller / path.lstrip("/") / name).read_text().strip()
    raise AssertionError(f"no {controller} cgroup for {pid}")


def test_update_running_container_and_restart_keeps_it(root: Path) -> None:
    cid = ok(root, "run", "-d", "-m", "64m", IMAGE, "sleep", "1000").strip()
    try:
        pid = ok(root, "inspect", "-f", "{{.State.Pid}}", cid).strip()
        assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
        ok(
            root,
            "update",
            "--memory",
            "128m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "77",
            "--cpu-shares",
            "256",
            cid,
        )
        assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(128 << 20)
        assert _cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "150000"
        assert _cgroup_file(pid, "cpu", "cpu.shares") == "256"
        assert _cgroup_file(pid, "pids", "pids.max") == "77"
        got = ok(root, "inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} "
                 "{{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}}", cid)  # fmt: skip
        assert got.split() == [str(128 << 20), "1500000000", "77", "256"]
        ok(root, "restart", "-t", "0", cid)
        pid = ok(root, "inspect", "-f", "{{.State.Pid}}", cid).strip()
        assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(128 << 20)
        assert _cgroup_file(pid, "pids", "pids.max") == "77"
        proc = hutch(root, "update", "--memory", "10x", cid)
        assert proc.returncode == 125 and proc.stderr.startswith("Error: --memory '10x'"), proc.stderr
        proc = hutch(root, "update", "--memory", "64m", "no-such-container")
        assert proc.returncode == 125 and "no such container" in proc.stderr
    finally:
        ok(root, "rm", "-f", cid)
    # A stopped container's update is kept for its next start.
    cid = ok(root, "create", IMAGE, "cat", "/sys/fs/cgroup/pids/pids.max").strip()
    ok(root, "update", "--pids-limit", "33", cid)
    assert ok(root, "start", "-a", cid) == "33\n"
    ok(root, "rm", cid)
    assert mine(root) == []


def test_inspect_shows_the_flags(root: Path, tmp_path: Path) -> None:
    cid = ok(
        root, "create", "-v", f"{tmp_path}:/host:ro", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN",
        "-m", "64m", "--cpus", "2", "--cpu-shares", "100", "--pids-limit", "99", "--device", "/dev/null:/dev/n",
        "--ulimit", "nproc=100:200", "--sysctl", "net.core.somaxconn=100", "--shm-size", "1m", "--init",
        "--stop-timeout", "7", "--tmpfs", "/scratch:size=1m", IMAGE, "true",
    ).strip()  # fmt: skip
    try:
        host = inspect(root, cid)["HostConfig"]
        assert isinstance(host, dict)
        assert host["Binds"] == [f"{tmp_path}:/host:ro,rprivate"]
        assert (host["CapAdd"], host["CapDrop"]) == (["NET_ADMIN"], ["CHOWN"])
        assert (host["Memory"], host["NanoCpus"], host["CpuShares"], host["PidsLimit"]) == (
            64 << 20, 2_000_000_000, 100, 99,
        )  # fmt: skip
        assert host["Devices"] == [
            {"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rwm"}
        ]
        assert {"Name": "RLIMIT_NPROC", "Soft": 100, "Hard": 200} in host["Ulimits"]
        assert host["Sysctls"] == {"net.core.somaxconn": "100"}
        assert (host["ShmSize"], host["Init"], host["Privileged"]) == (1 << 20, True, False)
        assert ok(root, "inspect", "-f", "{{.Config.StopTimeout}}", cid) == "7\n"
        # podman shows binds and volumes in Mounts, tmpfs mounts in HostConfig.Tmpfs.
        assert [m["Destination"] for m in inspect(root, cid)["Mounts"]] == ["/host"]  # type: ignore[index]
        assert host["Tmpfs"] == {"/scratch": "noexec,nosuid,nodev,tmpcopyup,size=1m"}
    finally:
        ok(root, "rm", cid)


@pytest.mark.parametrize(
    "args",
    [
        ["--cap-add", "bogus"],
        ["--memory", "10x"],
        ["--device", "/dev/nope"],
        ["-v", "/no/such/dir:/x"],
        ["--mount", "type=bogus,target=/x"],
    ],
)
def test_bad_values_on_create_leave_nothing(root: Path, args: list[str]) -> None:
    proc = hutch(root, "create", "--name", "bad", *args, IMAGE, "true")
    assert proc.returncode == 125 and proc.stderr.count("\n") == 1 and args[0] in proc.stderr, proc.stderr
    assert hutch(root, "inspect", "bad").returncode == 125
    assert mine(root) == []


def test_update_through_another_runtime(root: Path) -> None:
    """`update` of a container run by runc goes through `runc update`: its cgroups change too."""
    cid = ok(root, "run", "-d", "--runtime", "runc", "-m", "64m", IMAGE, "sleep", "1000").strip()
    try:
        pid = ok(root, "inspect", "-f", "{{.State.Pid}}", cid).strip()
        ok(root, "update", "--memory", "96m", "--pids-limit", "55", cid)
        assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(96 << 20)
        assert _cgroup_file(pid, "pids", "pids.max") == "55"
        assert ok(root, "inspect", "-f", "{{.HostConfig.Memory}}", cid) == f"{96 << 20}\n"
    finally:
        ok(root, "rm", "-f", cid)
    assert mine(root) == []
