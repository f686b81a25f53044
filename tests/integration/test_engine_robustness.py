"""The engine under stress and after accidents: 50 `run -d` at once, `hutch` killed with SIGKILL at points of
`run`, and a reboot (the runtime state in /run and the mounts gone). Each ends with a consistent state (what
ps and inspect say matches the processes that run) and, after `rm -f`, nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_lifecycle import RUNTIME_STATE, gone, until
from tests.integration.test_engine_run import HUTCH, IMAGE, hutch, leftovers, ok

remote = run_suite.remote
root = run_suite.root

PARALLEL = 50


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def inspect_all(root: Path, ids: list[str]) -> list[dict[str, object]]:
    docs: list[dict[str, object]] = json.loads(ok(root, "inspect", *ids))
    return docs


def test_fifty_detached_runs_at_once(root: Path) -> None:
    procs = [
        subprocess.Popen(
            [*HUTCH, "--root", str(root), "run", "-d", IMAGE, "sleep", "120"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PARALLEL)
    ]
    outcomes = [(p.wait(timeout=300), p.stdout.read().strip(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    try:
        failed = [(code, err) for code, _, err in outcomes if code != 0]
        assert failed == []
        ids = [out for _, out, _ in outcomes]
        assert len(set(ids)) == PARALLEL
        assert sorted(ok(root, "ps", "-q", "--no-trunc").split()) == sorted(ids)
        docs = inspect_all(root, ids)
        assert len({d["Name"] for d in docs}) == PARALLEL  # generated names are unique too
        for doc in docs:
            state = doc["State"]
            assert isinstance(state, dict) and state["Status"] == "running" and alive(int(state["Pid"]))
    finally:
        rm = [
            subprocess.Popen([*HUTCH, "--root", str(root), "rm", "-f", cid]) for _, cid, _ in outcomes if cid
        ]
        for p in rm:
            p.wait(timeout=300)
    assert ok(root, "ps", "-aq") == ""
    assert leftovers(root) == []


@pytest.mark.parametrize("delay", [0.02, 0.05, 0.08, 0.11, 0.15, 0.2, 0.3, 0.6])
def test_sigkill_of_hutch_during_run_then_rm_cleans_up(root: Path, delay: float) -> None:
    name = f"killed-{int(delay * 1000)}"
    proc = subprocess.Popen(
        [*HUTCH, "--root", str(root), "run", "--name", name, IMAGE, "sleep", "120"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    listed = hutch(root, "ps", "-a", "--format", "{{.Names}} {{.Status}}")
    assert listed.returncode == 0, listed.stderr  # whatever was half done, the store still reads
    proc = hutch(root, "rm", "-f", "--ignore", name)
    assert proc.returncode == 0, proc.stderr
    assert name not in ok(root, "ps", "-a", "--format", "{{.Names}}")
    assert leftovers(root) == []
    assert (
        [p for p in os.listdir(RUNTIME_STATE) if p.startswith("killed")] == []
        if RUNTIME_STATE.exists()
        else True
    )


def test_after_a_reboot_containers_are_exited_and_start_again(root: Path) -> None:
    cid = ok(root, "run", "-d", "--name", "rebooted", IMAGE, "sleep", "120").strip()
    try:
        pid = int(ok(root, "inspect", "-f", "{{.State.Pid}}", cid))
        # A reboot, as far as the container goes: every process of it and its monitor gone, /run emptied
        # of its runtime state, its rootfs no longer mounted.
        monitor = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        for victim in (monitor, pid):
            os.kill(victim, signal.SIGKILL)
        until(lambda: not alive(pid))
        subprocess.run(["rm", "-rf", str(RUNTIME_STATE / cid)], check=True)
        merged = root / "containers" / cid / "merged"
        subprocess.run(["umount", "-l", str(merged)], check=False)
        for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            for sub in Path(base).glob(f"*/hutch/{cid}"):
                subprocess.run(["rmdir", str(sub)], check=False)
        status = ok(root, "ps", "-a", "--format", "{{.Status}}", "--filter", f"id={cid}")
        assert status.startswith("Exited"), status
        assert ok(root, "start", cid).strip() in (cid, "rebooted")
        assert ok(root, "exec", cid, "echo", "back").strip() == "back"
    finally:
        ok(root, "rm", "-f", cid)
    assert gone(root, cid) == []
