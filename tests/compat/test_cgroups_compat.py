"""cgroups with real callers: podman (conmon, cgroupfs manager) and containerd's ctr give hutch-runtime their own
cgroupsPath values and device rules; limits must land and the cgroups must go with the container."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any


def _cgroup_dirs(name: str) -> list[str]:
    found = []
    for dirpath, dirnames, _files in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(dirpath, d) for d in dirnames if name in d]
    return found


def test_podman_limits_and_devices(podman: Any) -> None:
    name = f"hcg-podman-{uuid.uuid4().hex[:8]}"
    script = (
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max;"
        " echo -n > /dev/null && echo null-ok"
    )
    out = podman.run(
        "run",
        "--rm",
        "--name",
        name,
        "--memory",
        "64m",
        "--pids-limit",
        "33",
        podman.image,
        "sh",
        "-c",
        script,
    ).stdout.split()
    assert out == [str(64 << 20), "33", "null-ok"]


def test_podman_cgroup_is_removed(podman: Any) -> None:
    name = f"hcg-podman-{uuid.uuid4().hex[:8]}"
    cid = podman.run("run", "-d", "--name", name, podman.image, "sleep", "100").stdout.strip()
    assert _cgroup_dirs(cid), "podman's container has cgroups"
    podman.run("rm", "-f", "-t", "0", name)
    assert _cgroup_dirs(cid) == []


def test_podman_pause_and_unpause(podman: Any) -> None:
    name = f"hcg-podman-{uuid.uuid4().hex[:8]}"
    podman.run("run", "-d", "--name", name, podman.image, "sleep", "100")
    podman.run("pause", name)
    assert json.loads(podman.run("inspect", name).stdout)[0]["State"]["Status"] == "paused"
    podman.run("unpause", name)
    assert json.loads(podman.run("inspect", name).stdout)[0]["State"]["Status"] == "running"
    podman.run("rm", "-f", "-t", "0", name)


def test_podman_update(podman: Any) -> None:
    name = f"hcg-podman-{uuid.uuid4().hex[:8]}"
    podman.run("run", "-d", "--name", name, "--memory", "64m", podman.image, "sleep", "100")
    podman.run("update", "--memory", "128m", name)
    pid = json.loads(podman.run("inspect", name).stdout)[0]["State"]["Pid"]
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    memory = next(line.split(":", 2)[2] for line in lines if ":memory:" in line)
    with open(f"/sys/fs/cgroup/memory{memory}/memory.limit_in_bytes") as f:
        assert f.read().strip() == str(128 << 20)
    podman.run("rm", "-f", "-t", "0", name)


def test_ctr_memory_limit(ctr: Any) -> None:
    cid = f"hcg-ctr-{uuid.uuid4().hex[:8]}"
    ctr.run(
        "run",
        "-d",
        "--runc-binary",
        ctr.runtime,
        "--memory-limit",
        str(32 << 20),
        ctr.image,
        cid,
        "sleep",
        "100",
    )
    memory = [d for d in _cgroup_dirs(cid) if d.startswith("/sys/fs/cgroup/memory/")]
    assert len(memory) == 1, memory
    with open(os.path.join(memory[0], "memory.limit_in_bytes")) as f:
        assert f.read().strip() == str(32 << 20)
    ctr.run("tasks", "kill", "--signal", "SIGKILL", cid)
    ctr.remove_containers()
    assert _cgroup_dirs(cid) == []


def test_ctr_default_device_rules(ctr: Any) -> None:
    cid = f"hcg-ctr-{uuid.uuid4().hex[:8]}"
    # mknod is allowed for any device (a default rule), opening one that is not a default device is not.
    script = "echo -n > /dev/null && echo null-ok; mknod /dev/k c 1 11; echo -n > /dev/k 2>/dev/null || echo kmsg-denied"
    result = ctr.run("run", "--rm", "--runc-binary", ctr.runtime, ctr.image, cid, "sh", "-c", script)
    assert result.stdout.split() == ["null-ok", "kmsg-denied"], result.stderr
    assert _cgroup_dirs(cid) == []
