"""Healthchecks: `hutch healthcheck run`, the check loop a container with a healthcheck gets, and what
inspect and ps show; the busybox image of test_engine_run. The check's effect is seen in the health state
(Status, FailingStreak, the log of results with their exit codes and output)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import IMAGE, hutch, leftovers, ok

remote = run_suite.remote
root = run_suite.root


def health(root: Path, name: str) -> dict[str, object]:
    doc = json.loads(ok(root, "inspect", name))[0]
    value: dict[str, object] = doc["State"]["Health"]
    return value


def loops(cid: str) -> list[int]:
    """The check loops of container `cid` that run (found by the name the loop carries)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"hutch-healthcheck-{cid[:12]}".encode() in cmdline:
            found.append(int(pid))
    return found


def test_check_states_streak_and_log(root: Path) -> None:
    cid = ok(
        root, "run", "-d", "--name", "hc-states", "--health-cmd", "cat /tmp/ok && echo fine",
        "--health-interval", "1h", "--health-retries", "2", IMAGE, "sleep", "100",
    ).strip()  # fmt: skip
    try:
        assert health(root, "hc-states")["Status"] == "starting"
        first = hutch(root, "healthcheck", "run", "hc-states")
        assert (first.returncode, first.stdout) == (1, "starting\n")  # one failure of the two allowed
        second = hutch(root, "healthcheck", "run", "hc-states")
        assert (second.returncode, second.stdout) == (1, "unhealthy\n")
        state = health(root, "hc-states")
        assert (state["Status"], state["FailingStreak"]) == ("unhealthy", 2)
        assert "unhealthy" in ok(root, "ps", "--format", "{{.Status}}", "--filter", "name=hc-states")
        ok(root, "exec", "hc-states", "sh", "-c", "echo yes > /tmp/ok")
        third = hutch(root, "healthcheck", "run", "hc-states")
        assert (third.returncode, third.stdout, third.stderr) == (0, "", "")
        state = health(root, "hc-states")
        assert (state["Status"], state["FailingStreak"]) == ("healthy", 0)
        log = state["Log"]
        assert isinstance(log, list) and [entry["ExitCode"] for entry in log] == [1, 1, 0]
        assert log[-1]["Output"] == "yes\nfine\n"
        assert "(healthy)" in ok(root, "ps", "--format", "{{.Status}}", "--filter", "name=hc-states")
    finally:
        ok(root, "rm", "-f", cid)
    assert leftovers(root) == []


def test_the_loop_runs_checks_and_ends_with_the_container(root: Path) -> None:
    cid = ok(
        root, "run", "-d", "--name", "hc-loop", "--health-cmd", "true", "--health-interval", "300ms",
        IMAGE, "sleep", "100",
    ).strip()  # fmt: skip
    try:
        assert len(loops(cid)) == 1
        deadline = time.monotonic() + 20
        while health(root, "hc-loop")["Status"] != "healthy" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert health(root, "hc-loop")["Status"] == "healthy"
        # A paused container is not checked, and its loop waits for it
        ok(root, "pause", "hc-loop")
        proc = hutch(root, "healthcheck", "run", "hc-loop")
        assert (proc.returncode, proc.stderr) == (125, f"Error: container {cid} is paused\n")
        last = health(root, "hc-loop")["Log"][-1]["Start"]  # type: ignore[index]
        time.sleep(1.5)
        assert len(loops(cid)) == 1
        assert health(root, "hc-loop")["Log"][-1]["Start"] == last  # type: ignore[index]
        ok(root, "unpause", "hc-loop")
        deadline = time.monotonic() + 20
        while health(root, "hc-loop")["Log"][-1]["Start"] == last and time.monotonic() < deadline:  # type: ignore[index]
            time.sleep(0.2)
        assert health(root, "hc-loop")["Log"][-1]["Start"] != last  # type: ignore[index]
    finally:
        ok(root, "rm", "-f", cid)
    assert loops(cid) == []
    assert leftovers(root) == []


def test_timeout_fails_the_check(root: Path) -> None:
    cid = ok(
        root, "run", "-d", "--name", "hc-slow", "--health-cmd", "sleep 30", "--health-timeout", "1s",
        "--health-retries", "1", "--health-interval", "1h", IMAGE, "sleep", "100",
    ).strip()  # fmt: skip
    try:
        started = time.monotonic()
        proc = hutch(root, "healthcheck", "run", "hc-slow")
        assert (proc.returncode, proc.stdout) == (1, "unhealthy\n")
        assert time.monotonic() - started < 15
        entry = health(root, "hc-slow")["Log"][-1]  # type: ignore[index]
        assert entry["ExitCode"] == -1 and "timeout" in entry["Output"]
    finally:
        ok(root, "rm", "-f", cid)


def test_start_period_failures_do_not_count(root: Path) -> None:
    cid = ok(
        root, "run", "-d", "--name", "hc-grace", "--health-cmd", "false", "--health-retries", "1",
        "--health-start-period", "1h", "--health-interval", "1h", IMAGE, "sleep", "100",
    ).strip()  # fmt: skip
    try:
        proc = hutch(root, "healthcheck", "run", "hc-grace")
        assert (proc.returncode, proc.stdout) == (1, "starting\n")
        assert health(root, "hc-grace")["FailingStreak"] == 0
    finally:
        ok(root, "rm", "-f", cid)


def test_no_healthcheck_and_bad_flags(root: Path) -> None:
    cid = ok(root, "create", "--health-cmd", "true", "--no-healthcheck", IMAGE, "true").strip()
    try:
        doc = json.loads(ok(root, "inspect", cid))[0]
        assert doc["Config"].get("Healthcheck") is None
        proc = hutch(root, "healthcheck", "run", cid)
        assert proc.returncode == 125
        assert proc.stderr == f"Error: container {cid} has no defined healthcheck\n"
    finally:
        ok(root, "rm", "-f", cid)
    proc = hutch(root, "run", "--rm", "--health-cmd", "true", "--health-interval", "5x", IMAGE, "true")
    assert proc.returncode == 125
    assert proc.stderr == "Error: --health-interval '5x': not a duration (such as 300ms, 1.5s or 1h30m)\n"
    assert leftovers(root) == []
