"""run/create's cgroup and process flags of round 2 (--device-cgroup-rule, blkio, --memory-swappiness,
--cpu-rt-*, --cgroup-parent, --personality, --umask, --no-hosts, --env-host): the values the container's
cgroupfs files and process show, and bad values refused with one line and nothing left."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import IMAGE, hutch, leftovers

remote = run_suite.remote
root = run_suite.root


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return hutch(root, "run", "--rm", "--network", "none", *args)


def test_cgroup_files_show_the_flags(root: Path) -> None:
    script = (
        "cd /sys/fs/cgroup; cat blkio/blkio.bfq.weight blkio/blkio.throttle.read_bps_device "
        "blkio/blkio.throttle.write_bps_device blkio/blkio.throttle.read_iops_device "
        "blkio/blkio.throttle.write_iops_device memory/memory.swappiness cpu/cpu.rt_runtime_us "
        "cpu/cpu.rt_period_us; grep '^c 10:229 ' devices/devices.list"
    )
    dev = next(p for p in ("/dev/vda", "/dev/sda", "/dev/loop0") if os.path.exists(p))
    st = os.stat(dev)
    majmin = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    proc = run(
        root, "--blkio-weight", "300", "--device-read-bps", f"{dev}:1mb", "--device-write-bps", f"{dev}:2048",
        "--device-read-iops", f"{dev}:50", "--device-write-iops", f"{dev}:100", "--memory-swappiness", "17",
        "--cpu-rt-runtime", "5000", "--cpu-rt-period", "100000", "--device-cgroup-rule", "c 10:229 mr",
        IMAGE, "sh", "-c", script,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n") == [
        "300", f"{majmin} 1048576", f"{majmin} 2048", f"{majmin} 50", f"{majmin} 100",
        "17", "5000", "100000", "c 10:229 rm", "",
    ]  # fmt: skip
    assert leftovers(root) == []


def test_device_cgroup_rule_lets_a_made_device_open(root: Path) -> None:
    # /dev/fuse's numbers under a name of the container's own: opening it needs the rule, not a --device.
    script = "mknod /tmp/f c 10 229; exec 3<>/tmp/f && echo opened"
    denied = run(root, "--cap-add", "MKNOD", IMAGE, "sh", "-c", script)
    assert denied.returncode == 1 and "Operation not permitted" in denied.stderr
    allowed = run(
        root, "--cap-add", "MKNOD", "--device-cgroup-rule", "c 10:229 rw", IMAGE, "sh", "-c", script
    )
    assert (allowed.returncode, allowed.stdout) == (0, "opened\n"), allowed.stderr


@pytest.fixture()
def bfq_loop(tmp_path: Path) -> Iterator[str]:
    """A loop device on the bfq scheduler (weights per device need it)."""
    backing = tmp_path / "disk"
    backing.write_bytes(b"\0" * (1 << 20))
    dev = subprocess.run(
        ["losetup", "-f", "--show", str(backing)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        Path(f"/sys/block/{os.path.basename(dev)}/queue/scheduler").write_text("bfq")
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def test_blkio_weight_device(root: Path, bfq_loop: str) -> None:
    st = os.stat(bfq_loop)
    proc = run(
        root, "--blkio-weight-device", f"{bfq_loop}:200", IMAGE, "cat", "/sys/fs/cgroup/blkio/blkio.bfq.weight_device"
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)} 200" in proc.stdout.split("\n")


def test_cgroup_parent_holds_the_container_and_goes_with_it(root: Path) -> None:
    proc = run(root, "--cgroup-parent", "/hutch-test-parent", IMAGE, "cat", "/proc/self/cgroup")
    assert proc.returncode == 0, proc.stderr
    # The cgroup namespace hides the path inside; the host saw the cgroup made under the parent, now gone.
    assert not Path("/sys/fs/cgroup/memory/hutch-test-parent").exists()
    cid = hutch(root, "create", "--cgroup-parent", "hutch-test-parent2", IMAGE, "sleep", "100").stdout.strip()
    try:
        assert hutch(root, "start", cid).returncode == 0
        procs = Path(f"/sys/fs/cgroup/memory/hutch-test-parent2/{cid}/cgroup.procs").read_text().split()
        assert len(procs) == 1
    finally:
        hutch(root, "rm", "-f", "-t", "0", cid)
    assert not Path("/sys/fs/cgroup/memory/hutch-test-parent2").exists()
    assert leftovers(root) == []


def test_cgroups_no_conmon_is_what_hutch_does(root: Path) -> None:
    proc = run(root, "--cgroups", "no-conmon", IMAGE, "cat", "/sys/fs/cgroup/pids/pids.max")
    assert (proc.returncode, proc.stdout) == (0, "2048\n"), proc.stderr  # the container's own cgroup


def test_process_flags(root: Path) -> None:
    proc = run(root, "--umask", "0077", IMAGE, "sh", "-c", "umask; touch /tmp/f; stat -c %a /tmp/f")
    assert proc.stdout.split() == ["0077", "600"], proc.stderr
    proc = run(root, "--personality", "LINUX32", "--security-opt", "seccomp=unconfined", IMAGE, "uname", "-m")
    assert proc.stdout.strip() in ("i686", "armv7l"), proc.stderr
    proc = run(root, "--no-hosts", IMAGE, "sh", "-c", "test -e /etc/hosts; echo $?")
    assert proc.stdout.strip() == "1"  # the image has none, and none is bound over it
    env = dict(os.environ, HUTCH_ENV_HOST_PROBE="seen", OVERRIDE="host")  # the image has OVERRIDE=image
    got = subprocess.run(
        [*run_suite.HUTCH, "--root", str(root), "run", "--rm", "--network", "none", "--env-host",
         "-e", "HOME=/flag", IMAGE, "env"],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    ).stdout.split("\n")  # fmt: skip
    assert "HUTCH_ENV_HOST_PROBE=seen" in got and "HOME=/flag" in got
    assert "OVERRIDE=host" in got  # the host's environment over the image's, as podman puts it
    assert "HUTCH_ENV_HOST_PROBE=seen" not in run(root, IMAGE, "env").stdout


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--blkio-weight", "5"], "--blkio-weight '5'"),
        (["--device-read-bps", "/nonexistent:1mb"], "--device-read-bps '/nonexistent:1mb'"),
        (["--device-write-iops", "/dev/null:10"], "is not a block device"),
        (["--device-cgroup-rule", "x 1"], "--device-cgroup-rule 'x 1'"),
        (["--memory-swappiness", "101"], "--memory-swappiness 101"),
        (["--cpu-rt-runtime", "2000", "--cpu-rt-period", "1000"], "--cpu-rt-runtime 2000"),
        (["--cgroup-parent", "/"], "--cgroup-parent '/'"),
        (["--cgroups", "split"], "--cgroups 'split'"),
        (["--cgroups", "disabled"], "--cgroups 'disabled'"),
        (["--cgroups", "none"], "--cgroups 'none'"),
        (["--personality", "PDP11"], "--personality 'PDP11'"),
        (["--umask", "99"], "--umask '99'"),
        (["--no-hosts", "--add-host", "a:1.2.3.4"], "--no-hosts and --add-host"),
    ],
)
def test_bad_values_are_one_line_and_leave_nothing(root: Path, flags: list[str], message: str) -> None:
    before = hutch(root, "ps", "-aq").stdout
    proc = run(root, *flags, IMAGE, "true")
    assert proc.returncode == 125
    assert proc.stderr.startswith("Error: ") and message in proc.stderr and proc.stderr.count("\n") == 1
    assert hutch(root, "ps", "-aq").stdout == before
    assert leftovers(root) == []
