"""Regressions found in review of the engine's system, volume and management commands: what `system reset`
leaves behind (pods' cgroups, networks' firewall chains), and their error lines. Uses the registry and image
of test_engine_run."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.integration import test_engine_files as files_suite
from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import HUTCH, IMAGE, ok

remote = run_suite.remote
root = run_suite.root
fresh = files_suite.fresh


def _chains(bridge: str) -> list[str]:
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return [line for line in rules.splitlines() if f"-{bridge}" in line and "HUTCH-" in line]


def test_system_reset_removes_pods_and_networks(fresh: Path) -> None:
    ok(fresh, "network", "create", "--subnet", "10.89.241.0/24", "resetnet")
    bridge = json.loads(ok(fresh, "network", "inspect", "resetnet"))[0]["network_interface"]
    ok(fresh, "run", "-d", "--name", "onnet", "--network", "resetnet", IMAGE, "sleep", "1000")
    assert _chains(bridge) != []
    ok(fresh, "pod", "create", "--infra=false", "--name", "resetpod")
    pod_id = json.loads(ok(fresh, "pod", "inspect", "resetpod"))["Id"]
    ok(fresh, "run", "-d", "--pod", "resetpod", "--name", "inpod", IMAGE, "sleep", "1000")
    assert list(Path("/sys/fs/cgroup").glob(f"*/hutch/pods/{pod_id}")) != []
    assert ok(fresh, "system", "reset", "-f") == ""
    # Nothing of either is left on the host: the pod's cgroups, the network's chains and bridge.
    assert list(Path("/sys/fs/cgroup").glob(f"*/hutch/pods/{pod_id}")) == []
    assert _chains(bridge) == []
    assert not Path(f"/sys/class/net/{bridge}").exists()


def test_volume_rm_names_each_missing_volume(root: Path) -> None:
    proc = subprocess.run(
        [*HUTCH, "--root", str(root), "volume", "rm", "nosuch-a", "nosuch-b"],
        capture_output=True,
        text=True,
        check=False,
    )
    # podman prints an error line for every volume it could not remove; a missing one exits 1.
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and "nosuch-a" in lines[0] and "nosuch-b" in lines[1], proc.stderr


def test_run_rm_with_an_anonymous_volume_stays_off_secrets(root: Path) -> None:
    # Hot path: `secrets` imports random and hashlib (OpenSSL); a volume's name comes from os.urandom.
    proc = subprocess.run(
        [HUTCH[0], "-X", "importtime", *HUTCH[1:], "--root", str(root), "run", "--rm", "-v", "/data", IMAGE,
         "sh", "-c", "test -d /data && echo there"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "there\n", proc.stderr[-500:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "secrets" not in imported and "hashlib" not in imported


def test_system_df_verbose_counts_a_containers_volumes(fresh: Path) -> None:
    cid = ok(fresh, "run", "-d", "-v", "dfvol:/data", "-v", "/anon", IMAGE, "sleep", "1000").strip()
    table = ok(fresh, "system", "df", "-v").split("Containers space usage:")[1].split("Local Volumes")[0]
    lines = table.strip().splitlines()
    header, row = lines[0], next(line for line in lines if line.startswith(cid[:12]))
    start = header.index("LOCAL VOLUMES")
    assert row[start:].split()[0] == "2"  # podman's LOCAL VOLUMES: the named one and the anonymous one


def test_commit_keeps_the_containers_env_user_workdir_and_labels(root: Path) -> None:
    ok(
        root, "run", "-d", "--name", "rvcommit", "-e", "FROM_FLAG=yes", "-u", "app", "-w", "/home/app",
        "-l", "made.by=review", IMAGE, "sleep", "1000",
    )  # fmt: skip
    try:
        ok(root, "commit", "-q", "rvcommit", "rvcommitted")
        config = json.loads(ok(root, "image", "inspect", "rvcommitted"))[0]["Config"]
        assert "FROM_FLAG=yes" in config["Env"] and not any(e.startswith("HOSTNAME=") for e in config["Env"])
        assert config["User"] == "app" and config["WorkingDir"] == "/home/app"
        assert config["Labels"]["made.by"] == "review"
        # Seen from inside a container of the new image, as podman's commit gives them.
        out = ok(root, "run", "--rm", "rvcommitted", "sh", "-c", 'echo "$FROM_FLAG $(id -un) $(pwd)"')
        assert out == "yes app /home/app\n"
    finally:
        ok(root, "rm", "-f", "-t", "0", "rvcommit")
        subprocess.run([*HUTCH, "--root", str(root), "rmi", "rvcommitted"], capture_output=True, check=False)


def test_stats_refuses_an_interval_below_one(root: Path) -> None:
    for value in ("0", "-1"):
        proc = subprocess.run(
            [*HUTCH, "--root", str(root), "stats", "--no-stream", "-i", value],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        # podman: one error line, exit 125 (0 made a redraw loop that never slept)
        assert proc.returncode == 125, proc
        assert proc.stderr == "Error: invalid interval, must be a positive number greater zero\n"


def test_volume_prune_prompt_lists_the_volumes(fresh: Path) -> None:
    ok(fresh, "volume", "create", "rv-unused")
    ok(fresh, "volume", "create", "rv-used")
    ok(fresh, "run", "-d", "--name", "rv-user", "-v", "rv-used:/data", IMAGE, "sleep", "1000")
    proc = subprocess.run(
        [*HUTCH, "--root", str(fresh), "volume", "prune"], input="n\n", capture_output=True, text=True
    )
    # podman names what it would remove between the warning and the question; "n" removes nothing.
    assert proc.returncode == 0
    assert "will be removed:\nrv-unused\nAre you sure you want to continue? [y/N] " in proc.stdout, (
        proc.stdout
    )
    assert sorted(ok(fresh, "volume", "ls", "-q").split()) == ["rv-unused", "rv-used"]


def test_volume_prune_leaves_a_volume_a_create_is_mounting(fresh: Path, tmp_path: Path) -> None:
    # The create's -v ...:U chowns a large tree after it took the volume: a prune in that window found no
    # container naming the volume (its record is written last) and removed it under the new container.
    tree = tmp_path / "many"
    tree.mkdir()
    for i in range(60000):
        (tree / str(i)).touch()
    ok(fresh, "volume", "create", "rvrace")
    run = subprocess.Popen(
        [*HUTCH, "--root", str(fresh), "run", "-d", "--name", "racer", "-u", "4321:4321",
         "-v", "rvrace:/data", "-v", f"{tree}:/many:U", IMAGE, "sleep", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while tree.stat().st_uid != 4321:  # the chown has begun: the volume is taken
            assert time.monotonic() < deadline and run.poll() is None, run.communicate()
            time.sleep(0.005)
        pruned = ok(fresh, "volume", "prune", "-f").split()
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        assert "rvrace" not in pruned
        assert ok(fresh, "volume", "ls", "-q").split() == ["rvrace"]
        assert (
            ok(fresh, "exec", "-u", "0", "racer", "sh", "-c", "echo kept > /data/f && cat /data/f")
            == "kept\n"
        )
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def test_export_to_a_missing_directory_names_the_output(root: Path, tmp_path: Path) -> None:
    ok(root, "create", "--name", "rv-export", IMAGE, "true")
    try:
        target = tmp_path / "nodir" / "out.tar"
        proc = subprocess.run(
            [*HUTCH, "--root", str(root), "export", "-o", str(target), "rv-export"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        # podman: "open FILE: no such file or directory", the file the user named (not a temporary one)
        assert proc.returncode == 125
        assert proc.stderr == f"Error: open {target}: no such file or directory\n", proc.stderr
    finally:
        ok(root, "rm", "rv-export")
