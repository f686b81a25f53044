"""podman (through conmon) drives hutch-runtime: `podman --runtime <hutch-runtime>` runs the busybox image.

What podman and conmon send, seen by logging hutch-runtime's argv:

    create --bundle B --pid-file P ID           conmon; stdio are pipes conmon reads (or --console-socket S
                                                with -t); the pid file must exist when create exits
    start ID                                    podman
    exec --pid-file P --process F --detach ID   conmon, for `podman exec` (plus --tty --console-socket S)
    kill ID 15, kill ID 9                       podman stop (signal numbers), podman kill
    delete --force ID                           podman rm, and `podman container cleanup` after the exit
    kill --all ID 15                            podman stop of a container without its own PID namespace
    pause ID, resume ID, update --resources F   podman pause, unpause, update

Every test checks what the container printed or what podman reports from hutch-runtime's answers.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import tempfile
import time
from pathlib import Path
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


def _runtime_forgets(podman: Any, container_id: str, timeout: float = 10) -> bool:
    """hutch-runtime no longer holds the container: podman deleted it (after an exit, conmon's exit command,
    `podman container cleanup`, does that, concurrently with the podman command that waited)."""
    deadline = time.monotonic() + timeout
    while container_id in podman.runtime_ids():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --- podman run --rm ---


def test_run_rm_prints_and_leaves_nothing(podman: Any, tmp_path: Path) -> None:
    cidfile = tmp_path / "cid"
    result = podman.run(
        "run", "--rm", "--cidfile", cidfile, *UNCONFINED, podman.image, "echo", "hello from hutch"
    )
    assert result.stdout == "hello from hutch\n"
    assert podman.run("ps", "--all", "--quiet").stdout == ""
    assert _runtime_forgets(podman, cidfile.read_text())


@pytest.mark.parametrize("code", [0, 1, 7, 42, 255])
def test_run_exit_code_propagates(podman: Any, code: int) -> None:
    result = podman.run("run", "--rm", *UNCONFINED, podman.image, "sh", "-c", f"exit {code}", check=False)
    assert result.returncode == code, result.stderr


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


def test_run_missing_command_exits_127(podman: Any, tmp_path: Path) -> None:
    """podman turns the runtime's error text into 127 (not found) or 126 (cannot be run), as with runc."""
    cidfile = tmp_path / "cid"
    result = podman.run(
        "run", "--rm", "--cidfile", cidfile, *UNCONFINED, podman.image, "/no/such/program", check=False
    )
    assert result.returncode == 127, result.stderr
    assert "/no/such/program" in result.stderr
    assert _runtime_forgets(podman, cidfile.read_text())


def test_run_not_executable_exits_126(podman: Any, tmp_path: Path) -> None:
    cidfile = tmp_path / "cid"
    result = podman.run(
        "run", "--rm", "--cidfile", cidfile, *UNCONFINED, podman.image, "/etc/passwd", check=False
    )
    assert result.returncode == 126, result.stderr
    assert _runtime_forgets(podman, cidfile.read_text())


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
    """PID 1 is the command, the network namespace is empty (netns none), podman's ulimits apply
    (the fixture's containers.conf sets nofile to the host's hard limit)."""
    result = podman.run(
        "run", "--rm", *UNCONFINED, podman.image, "sh", "-c", "echo $$; ls /sys/class/net; ulimit -n"
    )
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert result.stdout.split() == ["1", "lo", str(nofile)]


def test_run_read_only_with_tmpfs_and_volume(podman: Any, tmp_path: Path) -> None:
    """--read-only: root.readonly, and podman's tmpfs on /tmp, /run, /var/tmp; --tmpfs and the read-only
    tmpfs mounts carry runc's `tmpcopyup` option: the tmpfs starts with what the image had there."""
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "from-host").write_text("host file\n")
    script = (
        "touch /new 2>&1 | grep -o 'Read-only file system'; "
        "touch /tmp/ok /etc/ok && echo writable; "
        "grep -c ^user: /etc/passwd; stat -c %a /etc; "
        "cat /data/from-host; touch /data/x 2>&1 | grep -o 'Read-only file system'; "
        "grep -E ' /(etc|tmp) ' /proc/mounts | cut -d' ' -f1-3"
    )
    result = podman.run(
        "run",
        "--rm",
        *UNCONFINED,
        "--read-only",
        "--tmpfs",
        "/etc",
        "--volume",
        f"{tmp_path / 'vol'}:/data:ro",
        podman.image,
        "sh",
        "-c",
        script,
    )
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        "Read-only file system",
        "writable",
        "1",
        "755",
        "host file",
        "Read-only file system",
    ]
    assert sorted(lines[6:]) == ["tmpfs /etc tmpfs", "tmpfs /tmp tmpfs"]  # podman's mount order varies


def test_run_with_podman_default_seccomp_profile(podman: Any) -> None:
    """No --security-opt: podman sends its default seccomp profile, which hutch-runtime loads."""
    result = podman.run("run", "--rm", podman.image, "grep", "Seccomp:", "/proc/self/status")
    assert result.stdout == "Seccomp:\t2\n"  # SECCOMP_MODE_FILTER


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
    container_id = _inspect(podman, "sleeper")["Id"]
    assert container_id in podman.runtime_ids()

    podman.run("rm", "--force", "--time", "0", "sleeper")
    assert podman.run("ps", "--all", "--quiet").stdout == ""
    assert _runtime_forgets(podman, container_id)
    time.sleep(0.1)
    with pytest.raises(FileNotFoundError):
        open(f"/proc/{state['Pid']}/cmdline").close()


@pytest.mark.parametrize("security", [UNCONFINED, ()], ids=["unconfined", "default-seccomp"])
def test_exec_output_and_exit_code(podman: Any, security: tuple[str, ...]) -> None:
    podman.run("run", "--detach", "--name", "box", *security, podman.image, "sleep", "1000")
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
    container_id = podman.run(
        "run", "--detach", "--name", "trapper", *UNCONFINED, podman.image, "sh", "-c", script
    ).stdout.strip()
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
    assert _runtime_forgets(podman, container_id)  # podman deletes the exited container from the runtime


def test_stop_kills_a_process_that_ignores_sigterm(podman: Any) -> None:
    """PID 1 without a handler ignores SIGTERM: podman stop falls back to SIGKILL (kill ID 9)."""
    podman.run("run", "--detach", "--name", "stubborn", *UNCONFINED, podman.image, "sleep", "1000")
    podman.run("stop", "--time", "1", "stubborn")
    state = _wait_for_status(podman, "stubborn", "exited")
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 137


def test_stop_without_a_pid_namespace_signals_every_process(podman: Any) -> None:
    """--pid host: no PID 1 of its own to signal, so podman stops it with `kill --all` (the cgroup's pids)."""
    podman.run(
        "run", "--detach", "--name", "hostpid", "--pid", "host", *UNCONFINED, podman.image, "sleep", "1000"
    )
    pid = _inspect(podman, "hostpid")["State"]["Pid"]
    podman.run("stop", "--time", "10", "hostpid")
    state = _wait_for_status(podman, "hostpid", "exited")
    assert state["ExitCode"] == 128 + signal.SIGTERM  # sleep is not a PID 1 here: SIGTERM kills it
    assert not Path(f"/proc/{pid}").exists()


def test_exec_preserve_fds(podman: Any, tmp_path: Path) -> None:
    """`podman exec --preserve-fds 1`: podman's fd 3 reaches the process as its fd 3, and nothing more."""
    podman.run("run", "--detach", "--name", "box", *UNCONFINED, podman.image, "sleep", "1000")
    (tmp_path / "passed").write_text("through fd 3\n")
    command = [*podman.base, "exec", "--preserve-fds", "1", "box", "sh", "-c", "cat <&3; ls /proc/self/fd"]
    with tempfile.TemporaryFile() as out:
        subprocess.run(
            ["sh", "-c", 'exec "$@" 3<"$PASSED"', "sh", *command],  # a shell opens fd 3 for podman
            stdin=subprocess.DEVNULL,
            stdout=out,
            env={**podman.env, "PASSED": str(tmp_path / "passed")},
            timeout=60,
            check=True,
        )
        out.seek(0)
        lines = out.read().decode().split()
    assert lines[:3] == ["through", "fd", "3"]
    assert lines[3:] == ["0", "1", "2", "3", "4"]  # 4: the directory ls reads; nothing else came in


def test_run_init(podman: Any) -> None:
    """--init: podman bind-mounts catatonit as /run/podman-init and makes it PID 1."""
    result = podman.run("run", "--rm", "--init", *UNCONFINED, podman.image, "sh", "-c", "cat /proc/1/cmdline")
    assert result.stdout.split("\0")[:2] == ["/run/podman-init", "--"]


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
    container_id = podman.run(
        "create", "--name", "later", *UNCONFINED, podman.image, "sh", "-c", "echo started; exit 4"
    ).stdout.strip()
    assert _inspect(podman, "later")["State"]["Status"] == "created"
    result = podman.run("start", "--attach", "later", check=False)
    assert result.returncode == 4, result.stderr
    assert result.stdout == "started\n"
    assert _wait_for_status(podman, "later", "exited")["ExitCode"] == 4
    podman.run("rm", "later")
    assert _runtime_forgets(podman, container_id)


def test_restart(podman: Any) -> None:
    podman.run("run", "--detach", "--name", "box", *UNCONFINED, podman.image, "sleep", "1000")
    first = _inspect(podman, "box")["State"]["Pid"]
    podman.run("restart", "--time", "0", "box")
    state = _inspect(podman, "box")["State"]
    assert state["Status"] == "running"
    assert state["Pid"] not in (0, first)
    assert podman.run("exec", "box", "echo", "again").stdout == "again\n"


def test_run_interactive_tty(podman: Any) -> None:
    """`podman run -it` in a terminal: what is typed reaches the shell through the container's pty."""
    code, output = podman.run_tty(
        "run", "--rm", "-it", *UNCONFINED, podman.image, "sh", input="tty; echo typed-$((6 * 7)); exit 6\n"
    )
    assert code == 6, output
    assert "/dev/pts/0" in output
    assert "typed-42" in output


# --- pause and unpause (hutch-runtime pause/resume; limits and update: test_cgroups_compat.py) ---


def test_pause_and_unpause(podman: Any) -> None:
    podman.run(
        "run",
        "--detach",
        "--name",
        "counter",
        *UNCONFINED,
        podman.image,
        "sh",
        "-c",
        "while true; do echo x >> /tmp/count; sleep 0.02; done",
    )
    pid = _inspect(podman, "counter")["State"]["Pid"]
    count = Path(f"/proc/{pid}/root/tmp/count")

    def grows() -> bool:
        before = count.stat().st_size if count.exists() else 0
        time.sleep(0.5)
        return count.exists() and count.stat().st_size > before

    assert grows()
    podman.run("pause", "counter")
    assert _inspect(podman, "counter")["State"]["Status"] == "paused"
    time.sleep(0.1)
    assert not grows()
    podman.run("unpause", "counter")
    assert _inspect(podman, "counter")["State"]["Status"] == "running"
    assert grows()


# --- namespaces shared between containers (joined by path) ---


def test_share_namespaces_with_another_container(podman: Any) -> None:
    podman.run(
        "run",
        "--detach",
        "--name",
        "host",
        "--hostname",
        "sharedname",
        *UNCONFINED,
        podman.image,
        "sleep",
        "1000",
    )
    result = podman.run(
        "run",
        "--rm",
        *UNCONFINED,
        "--network",
        "container:host",
        "--pid",
        "container:host",
        "--ipc",
        "container:host",
        "--uts",
        "container:host",
        podman.image,
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname",
    )
    assert result.stdout == "sleep 1000 \nsharedname\n"


def test_pod(podman: Any) -> None:
    """A pod: an infra container (podman's own pause image, built locally) whose namespaces others join."""
    namespaces = "readlink /proc/self/ns/net; readlink /proc/self/ns/uts"
    podman.run("pod", "create", "--name", "pod1", "--hostname", "podhost")
    try:
        podman.run(
            "run", "--detach", "--pod", "pod1", "--name", "first", *UNCONFINED, podman.image, "sleep", "1000"
        )
        first = podman.run("exec", "first", "sh", "-c", namespaces).stdout
        second = podman.run(
            "run", "--rm", "--pod", "pod1", *UNCONFINED, podman.image, "sh", "-c", f"hostname; {namespaces}"
        ).stdout
        assert second == "podhost\n" + first
        assert first.split()[0] != os.readlink("/proc/self/ns/net")
    finally:
        podman.run("pod", "rm", "--force", "--time", "0", "pod1", check=False)
