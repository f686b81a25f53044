"""podman (through conmon) drives hutch-runtime: `podman --runtime <hutch-runtime>` runs the busybox image.

What podman and conmon send, seen by logging hutch-runtime's argv:

    create --bundle B --pid-file P ID           conmon; stdio are pipes conmon reads (or --console-socket S
                                                with -t); the pid file must exist when create exits
    start ID                                    podman
    exec --pid-file P --process F --detach ID   conmon, for `podman exec` (plus --tty --console-socket S)
    kill ID 15, kill ID 9                       podman stop (signal numbers), podman kill
    delete --force ID                           podman rm, and `podman container cleanup` after the exit
    (each with the global --root=DIR --log-format=json when given `--runtime-flag`s)

Every test checks what the container printed or what podman reports from hutch-runtime's answers.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

UNCONFINED = ("--security-opt", "seccomp=unconfined")


def _inspect(podman: Any, name: str) -> dict[str, Any]:
    docs: list[dict[str, Any]] = json.loads(podman.run("inspect", "--type", "container", name).stdout)
    return docs[0]


def _wait_for_status(podman: Any, name: str, status: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = _inspect(podman, name)["State"]
        if state["Status"] == status or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


# --- podman run --rm ---


def test_run_rm_prints_and_leaves_nothing(podman: Any) -> None:
    result = podman.run("run", "--rm", *UNCONFINED, podman.image, "echo", "hello from hutch")
    assert result.stdout == "hello from hutch\n"
    assert podman.run("ps", "--all", "--quiet").stdout == ""
    assert podman.runtime_ids() == []


@pytest.mark.parametrize("code", [0, 1, 7, 42, 255])
def test_run_exit_code_propagates(podman: Any, code: int) -> None:
    result = podman.run("run", "--rm", *UNCONFINED, podman.image, "sh", "-c", f"exit {code}", check=False)
    assert result.returncode == code, result.stderr


def test_run_killed_by_signal_exits_128_plus_signal(podman: Any) -> None:
    result = podman.run("run", "--rm", *UNCONFINED, podman.image, "sh", "-c", "kill -9 $$", check=False)
    assert result.returncode == 137, result.stderr


def test_run_stdio_passes_through(podman: Any) -> None:
    """conmon hands the container pipes: stdin reaches it, stdout and stderr come back apart."""
    result = podman.run(
        "run",
        "--rm",
        "--interactive",
        *UNCONFINED,
        podman.image,
        "sh",
        "-c",
        "tr a-z A-Z; echo to-stderr >&2",
        input="quiet words\n",
    )
    assert result.stdout == "QUIET WORDS\n"
    assert "to-stderr" in result.stderr


def test_run_missing_command_exits_127(podman: Any) -> None:
    """podman turns the runtime's error text into 127 (not found) or 126 (cannot be run), as with runc."""
    result = podman.run("run", "--rm", *UNCONFINED, podman.image, "/no/such/program", check=False)
    assert result.returncode == 127, result.stderr
    assert "/no/such/program" in result.stderr
    assert podman.runtime_ids() == []


def test_run_not_executable_exits_126(podman: Any) -> None:
    result = podman.run("run", "--rm", *UNCONFINED, podman.image, "/etc/passwd", check=False)
    assert result.returncode == 126, result.stderr
    assert podman.runtime_ids() == []


def test_run_user_workdir_env_hostname(podman: Any) -> None:
    result = podman.run(
        "run",
        "--rm",
        *UNCONFINED,
        "--user",
        "1000:1000",
        "--workdir",
        "/tmp",
        "--env",
        "GREETING=hi there",
        "--hostname",
        "hutchbox",
        podman.image,
        "sh",
        "-c",
        'echo "$(id -u):$(id -g) $(pwd) $GREETING $(hostname)"',
    )
    assert result.stdout == "1000:1000 /tmp hi there hutchbox\n"


def test_run_namespaces_and_limits(podman: Any) -> None:
    """PID 1 is the command, the network namespace is empty (netns none), podman's ulimits apply."""
    result = podman.run(
        "run",
        "--rm",
        *UNCONFINED,
        "--ulimit",
        "nofile=1234:1234",
        podman.image,
        "sh",
        "-c",
        "echo $$; ls /sys/class/net; ulimit -n",
    )
    assert result.stdout.split() == ["1", "lo", "1234"]


def test_run_with_podman_default_seccomp_profile(podman: Any) -> None:
    """No --security-opt: podman sends its default seccomp profile, which hutch-runtime loads."""
    result = podman.run(
        "run",
        "--rm",
        podman.image,
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; unshare -U true",
        check=False,
    )
    assert result.returncode != 0, "unshare(CLONE_NEWUSER) must be denied by podman's default profile"
    assert "Seccomp:\t2" in result.stdout, result.stderr


def test_run_tty(podman: Any) -> None:
    """`podman run -t`: conmon passes --console-socket and gets the pty master; the container has a tty."""
    result = podman.run(
        "run", "--rm", "--tty", *UNCONFINED, podman.image, "sh", "-c", "tty; exit 3", check=False
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.replace("\r\n", "\n") == "/dev/pts/0\n"


# --- podman run -d, exec, stop, kill, ps, inspect, rm ---


def test_detached_container_ps_inspect_rm(podman: Any) -> None:
    podman.run("run", "--detach", "--name", "sleeper", *UNCONFINED, podman.image, "sleep", "1000")
    state = _inspect(podman, "sleeper")["State"]
    assert state["Status"] == "running"
    assert state["Running"] is True
    assert state["Pid"] > 0
    with open(f"/proc/{state['Pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"

    ps = podman.run("ps", "--format", "{{.Names}} {{.Status}}").stdout
    assert ps.startswith("sleeper Up"), ps
    assert podman.runtime_ids() == [_inspect(podman, "sleeper")["Id"]]

    podman.run("rm", "--force", "--time", "0", "sleeper")
    assert podman.run("ps", "--all", "--quiet").stdout == ""
    assert podman.runtime_ids() == []
    time.sleep(0.1)
    with pytest.raises(FileNotFoundError):
        open(f"/proc/{state['Pid']}/cmdline").close()


def test_exec_output_and_exit_code(podman: Any) -> None:
    podman.run("run", "--detach", "--name", "box", *UNCONFINED, podman.image, "sleep", "1000")
    result = podman.run("exec", "box", "sh", "-c", "echo in-exec; echo err >&2; exit 5", check=False)
    assert result.returncode == 5, result.stderr
    assert result.stdout == "in-exec\n"
    assert "err" in result.stderr


def test_exec_joins_the_container(podman: Any) -> None:
    """The exec'd process sees the container's PID 1, hostname and environment, with the exec's extras."""
    podman.run(
        "run",
        "--detach",
        "--name",
        "box",
        "--hostname",
        "boxhost",
        *UNCONFINED,
        podman.image,
        "sleep",
        "1000",
    )
    result = podman.run(
        "exec",
        "--env",
        "EXTRA=1",
        "--workdir",
        "/tmp",
        "--user",
        "1000",
        "box",
        "sh",
        "-c",
        'cat /proc/1/cmdline | tr "\\0" " "; echo; hostname; echo $EXTRA $(pwd) $(id -u)',
    )
    assert result.stdout == "sleep 1000 \nboxhost\n1 /tmp 1000\n"


def test_exec_stdin(podman: Any) -> None:
    podman.run("run", "--detach", "--name", "box", *UNCONFINED, podman.image, "sleep", "1000")
    result = podman.run("exec", "--interactive", "box", "tr", "a-z", "A-Z", input="shout\n")
    assert result.stdout == "SHOUT\n"


def test_exec_tty(podman: Any) -> None:
    podman.run("run", "--detach", "--name", "box", *UNCONFINED, podman.image, "sleep", "1000")
    result = podman.run("exec", "--tty", "box", "tty")
    assert result.stdout.replace("\r\n", "\n") == "/dev/pts/0\n"


def test_exec_detached(podman: Any) -> None:
    podman.run("run", "--detach", "--name", "box", *UNCONFINED, podman.image, "sleep", "1000")
    podman.run("exec", "--detach", "box", "sh", "-c", "echo written > /tmp/mark; sleep 1000")
    deadline = time.monotonic() + 10
    while podman.run("exec", "box", "cat", "/tmp/mark", check=False).stdout != "written\n":
        assert time.monotonic() < deadline, "the detached exec never ran"
        time.sleep(0.1)
    ps = podman.run("exec", "box", "ps", "-o", "args").stdout
    assert "sleep 1000" in ps


def test_exec_missing_command_exits_127(podman: Any) -> None:
    podman.run("run", "--detach", "--name", "box", *UNCONFINED, podman.image, "sleep", "1000")
    result = podman.run("exec", "box", "/no/such/program", check=False)
    assert result.returncode == 127, result.stderr


def test_stop_sends_sigterm_to_a_trapping_process(podman: Any) -> None:
    script = 'trap "echo got-term; exit 3" TERM; echo ready; while true; do sleep 0.1; done'
    podman.run("run", "--detach", "--name", "trapper", *UNCONFINED, podman.image, "sh", "-c", script)
    deadline = time.monotonic() + 10
    while "ready" not in podman.run("logs", "trapper").stdout:
        assert time.monotonic() < deadline, "the container never started its trap"
        time.sleep(0.1)
    started = time.monotonic()
    podman.run("stop", "--time", "30", "trapper")
    assert time.monotonic() - started < 15, "SIGTERM was not handled: podman waited for its timeout"
    state = _wait_for_status(podman, "trapper", "exited")
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 3
    assert "got-term" in podman.run("logs", "trapper").stdout
    assert podman.runtime_ids() == []  # podman deletes the stopped container from the runtime


def test_stop_kills_a_process_that_ignores_sigterm(podman: Any) -> None:
    """PID 1 without a handler ignores SIGTERM: podman stop falls back to SIGKILL (kill ID 9)."""
    podman.run("run", "--detach", "--name", "stubborn", *UNCONFINED, podman.image, "sleep", "1000")
    podman.run("stop", "--time", "1", "stubborn")
    state = _wait_for_status(podman, "stubborn", "exited")
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 137


def test_kill_with_a_signal(podman: Any) -> None:
    script = 'trap "echo got-usr1; exit 9" USR1; echo ready; while true; do sleep 0.1; done'
    podman.run("run", "--detach", "--name", "box", *UNCONFINED, podman.image, "sh", "-c", script)
    deadline = time.monotonic() + 10
    while "ready" not in podman.run("logs", "box").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    podman.run("kill", "--signal", "USR1", "box")
    state = _wait_for_status(podman, "box", "exited")
    assert state["ExitCode"] == 9
    assert "got-usr1" in podman.run("logs", "box").stdout


def test_create_then_start_attached(podman: Any) -> None:
    podman.run("create", "--name", "later", *UNCONFINED, podman.image, "sh", "-c", "echo started; exit 4")
    assert _inspect(podman, "later")["State"]["Status"] == "created"
    result = podman.run("start", "--attach", "later", check=False)
    assert result.returncode == 4, result.stderr
    assert result.stdout == "started\n"
    assert _wait_for_status(podman, "later", "exited")["ExitCode"] == 4
    podman.run("rm", "later")
    assert podman.runtime_ids() == []


def test_restart(podman: Any) -> None:
    podman.run("run", "--detach", "--name", "box", *UNCONFINED, podman.image, "sleep", "1000")
    first = _inspect(podman, "box")["State"]["Pid"]
    podman.run("restart", "--time", "0", "box")
    state = _inspect(podman, "box")["State"]
    assert state["Status"] == "running"
    assert state["Pid"] not in (0, first)
    assert podman.run("exec", "box", "echo", "again").stdout == "again\n"
