"""containerd drives hutch-runtime: `ctr run --runc-binary <hutch-runtime>`, through containerd's runc shim
(containerd-shim-runc-v2), against a private containerd started for the session.

What the shim sends, seen by logging hutch-runtime's argv (every call has the global flags
`--root <runc-root>/<namespace> --log <bundle>/log.json --log-format json`):

    create --bundle B --pid-file P ID           stdio are fifos the shim opened, or --console-socket S (-t)
    start ID
    exec --process F --detach --pid-file P ID   `ctr task exec` (plus --console-socket S with -t)
    kill ID 15, kill ID 9                       `ctr task kill`
    kill --all ID 9                             the shim, when init exits while exec'd processes remain
    pause ID, resume ID, ps --format json ID    `ctr task pause`, `resume`, `ps`
    delete ID, delete --force ID                `ctr task delete`, `ctr run --rm`

containerd reports the last `"level":"error"` line of log.json to its user when a call fails.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest


def _id() -> str:
    return "hutch-" + uuid.uuid4().hex[:12]


def _run(ctr: Any, *args: str, check: bool = False, flags: tuple[str, ...] = ()) -> Any:
    """`ctr run --rm` of the busybox image with hutch-runtime as the shim's runc binary."""
    return ctr.run("run", "--rm", *ctr.runc_flags, *flags, ctr.image, _id(), *args, check=check)


def _task_status(ctr: Any, container_id: str) -> str:
    for line in ctr.run("tasks", "list").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == container_id:
            return str(fields[-1])
    return ""


def _wait_for_task(ctr: Any, container_id: str, status: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        found = _task_status(ctr, container_id)
        if found == status or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_run_rm_prints(ctr: Any) -> None:
    result = _run(ctr, "echo", "hello from hutch", check=True)
    assert result.stdout == "hello from hutch\n"
    assert ctr.run("containers", "list", "--quiet").stdout == ""


@pytest.mark.parametrize("code", [0, 3, 42])
def test_run_exit_code_propagates(ctr: Any, code: int) -> None:
    result = _run(ctr, "sh", "-c", f"echo before-exit; exit {code}")
    assert result.returncode == code, result.stderr
    assert result.stdout == "before-exit\n"


def test_run_stdout_and_stderr_apart(ctr: Any) -> None:
    """The shim gives the container fifos for stdout and stderr (ctr 1.6 never closes stdin: not tested)."""
    result = _run(ctr, "sh", "-c", "echo to-stdout; echo to-stderr >&2", check=True)
    assert result.stdout == "to-stdout\n"
    assert "to-stderr" in result.stderr


def test_run_sees_its_own_namespaces(ctr: Any) -> None:
    result = _run(ctr, "sh", "-c", "echo $$; hostname; id -u; cat /proc/self/uid_map | tr -s ' '", check=True)
    pid, hostname, uid, uid_map = result.stdout.splitlines()
    assert pid == "1"
    assert hostname  # ctr leaves the hostname to the runtime's default, not the host's
    assert uid == "0"
    assert uid_map.split() == ["0", "0", "4294967295"]


def test_run_env_cwd(ctr: Any) -> None:
    result = _run(
        ctr,
        "sh",
        "-c",
        'echo "$GREETING $(pwd) $(id -u)"',
        check=True,
        flags=("--env", "GREETING=hi there", "--cwd", "/tmp"),
    )
    assert result.stdout == "hi there /tmp 0\n"


def test_run_tty(ctr: Any) -> None:
    """`ctr run -t`: the shim passes --console-socket and copies the pty to ctr's terminal."""
    code, output = ctr.run_tty(
        "run", "--rm", "--tty", *ctr.runc_flags, ctr.image, _id(), "sh", "-c", "tty; exit 5"
    )
    assert code == 5, output
    assert "/dev/pts/0" in output


def test_run_missing_command_reports_the_runtime_error(ctr: Any) -> None:
    """The shim reads the error from hutch-runtime's --log (JSON lines) and containerd passes it on."""
    result = _run(ctr, "/no/such/program")
    assert result.returncode != 0
    assert "OCI runtime create failed" in result.stderr
    assert 'exec: "/no/such/program"' in result.stderr  # runc's wording, which callers match on
    assert ctr.run("containers", "list", "--quiet").stdout == ""


def test_detached_task_exec_kill_delete(ctr: Any) -> None:
    container_id = _id()
    ctr.run("run", "--detach", *ctr.runc_flags, ctr.image, container_id, "sleep", "1000")
    assert _wait_for_task(ctr, container_id, "RUNNING") == "RUNNING"

    pids = ctr.run("tasks", "ps", container_id).stdout.split()
    assert pids[0] == "PID" and len(pids) > 2  # header and init's pid

    result = ctr.run(
        "tasks",
        "exec",
        "--exec-id",
        "e1",
        container_id,
        "sh",
        "-c",
        "echo in-exec; cat /proc/1/cmdline; exit 6",
        check=False,
    )
    assert result.returncode == 6, result.stderr
    assert result.stdout == "in-exec\nsleep\x001000\x00"

    ctr.run("tasks", "kill", "--signal", "SIGKILL", container_id)
    assert _wait_for_task(ctr, container_id, "STOPPED") == "STOPPED"
    ctr.run("tasks", "delete", container_id)
    ctr.run("containers", "delete", container_id)
    assert ctr.run("containers", "list", "--quiet").stdout == ""


def test_task_kill_sigterm_reaches_a_trapping_process(ctr: Any, tmp_path: Path) -> None:
    """`ctr task kill` (SIGTERM) while `ctr run` waits: the trap runs, and its exit status comes back."""
    container_id = _id()
    script = 'trap "echo got-term; exit 3" TERM; echo ready; while true; do sleep 0.1; done'
    out = (tmp_path / "out").open("w+")
    runner = subprocess.Popen(
        [*ctr.base, "run", "--rm", *ctr.runc_flags, ctr.image, container_id, "sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while "ready" not in (tmp_path / "out").read_text():
            assert runner.poll() is None, (tmp_path / "out").read_text()
            assert time.monotonic() < deadline, "the container never set its trap"
            time.sleep(0.05)
        ctr.run("tasks", "kill", container_id)
        assert runner.wait(timeout=20) == 3
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        out.close()
    assert (tmp_path / "out").read_text() == "ready\ngot-term\n"


def test_exec_tty(ctr: Any) -> None:
    container_id = _id()
    ctr.run("run", "--detach", *ctr.runc_flags, ctr.image, container_id, "sleep", "1000")
    assert _wait_for_task(ctr, container_id, "RUNNING") == "RUNNING"
    code, output = ctr.run_tty(
        "tasks", "exec", "--tty", "--exec-id", "t1", container_id, "sh", "-c", "tty; exit 4"
    )
    assert code == 4, output
    assert "/dev/pts/" in output


def test_run_with_containerd_default_seccomp_profile(ctr: Any) -> None:
    result = _run(ctr, "grep", "Seccomp:", "/proc/self/status", check=True, flags=("--seccomp",))
    assert result.stdout == "Seccomp:\t2\n"  # SECCOMP_MODE_FILTER


def test_pause_resume(ctr: Any) -> None:
    container_id = _id()
    ctr.run("run", "--detach", *ctr.runc_flags, ctr.image, container_id, "sleep", "1000")
    assert _wait_for_task(ctr, container_id, "RUNNING") == "RUNNING"
    ctr.run("tasks", "pause", container_id)
    assert _task_status(ctr, container_id) == "PAUSED"
    ctr.run("tasks", "resume", container_id)
    assert _task_status(ctr, container_id) == "RUNNING"
    result = ctr.run("tasks", "exec", "--exec-id", "after", container_id, "echo", "resumed")
    assert result.stdout == "resumed\n"
