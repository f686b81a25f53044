"""The command line's lifecycle: create, start, state, kill, delete, run, list, exec (every flag), features,
spec. Effects are checked on the processes themselves (/proc/PID) and in what the container prints."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import (
    RW_ROOT,
    alive,
    fifo_path,
    pids_with_token,
    run_ok,
    sh,
    status_field,
    wait_for,
)

SLEEP = ["sleep", "60"]


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


# --- create, start, state ---


def test_create_then_start(bundle: Any, runtime: Any) -> None:
    b = bundle(SLEEP, annotations={"org.example/a": "1", "b": "two"})
    runtime.run("create", "--bundle", b, "c1")
    state = runtime.state("c1")
    pid = state["pid"]
    assert state["status"] == "created"
    assert state["id"] == "c1"
    assert state["bundle"] == str(b)
    assert state["annotations"] == {"org.example/a": "1", "b": "two"}
    assert state["ociVersion"].startswith("1.")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", state["created"]), state["created"]
    assert alive(pid)
    assert _cmdline(pid) != SLEEP  # init waits on the exec fifo: the user process has not started
    assert fifo_path(runtime, "c1").exists()

    runtime.run("start", "c1")
    wait_for(lambda: _cmdline(pid) == SLEEP, what="init to exec the process")
    state = runtime.state("c1")
    assert state["status"] == "running"
    assert state["pid"] == pid
    assert not fifo_path(runtime, "c1").exists()


def test_created_container_runs_nothing_of_the_users(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    b = sh(bundle, "echo ran > /out/ran", edit=_out_mount(tmp_path))
    runtime.run("create", "--bundle", b, "c1")
    time.sleep(0.2)
    assert not (tmp_path / "out" / "ran").exists()
    runtime.run("start", "c1")
    wait_for(lambda: (tmp_path / "out" / "ran").exists(), what="the process to run")


def _out_mount(tmp_path: Path) -> Any:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)

    def edit(spec: dict[str, Any]) -> None:
        spec["mounts"].append(
            {"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]}
        )

    return edit


def test_state_of_a_stopped_container(bundle: Any, runtime: Any) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(["true"]), "c1")
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="the container to exit")
    assert runtime.state("c1")["pid"] == 0


def test_start_twice_fails(bundle: Any, runtime: Any) -> None:
    runtime.run("create", "--bundle", bundle(SLEEP), "c1")
    runtime.run("start", "c1")
    result = runtime.run("start", "c1", check=False)
    assert result.returncode != 0
    assert "c1" in result.stderr
    assert runtime.state("c1")["status"] == "running"


def test_pid_file(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "init.pid"
    runtime.run("create", "--pid-file", pid_file, "--bundle", bundle(SLEEP), "c1")
    assert int(pid_file.read_text()) == runtime.state("c1")["pid"]


def test_relative_bundle_and_pid_file(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    b = bundle(SLEEP)
    # not pipes: the container's init keeps the runtime's stdout and stderr
    with open(tmp_path / "err", "w+") as err:
        completed = subprocess.run(
            runtime.command("create", "--bundle", b.name, "--pid-file", "rel.pid", "c1"),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            timeout=30,
        )
        err.seek(0)
        assert completed.returncode == 0, err.read()
    assert runtime.state("c1")["bundle"] == str(b)
    assert int((tmp_path / "rel.pid").read_text()) == runtime.state("c1")["pid"]


# --- kill ---


TRAPPER = (
    "trap 'echo USR1 >> /out/signals' USR1; trap 'echo HUP >> /out/signals' HUP;"
    " trap 'echo TERM >> /out/signals; exit 0' TERM; echo ready > /out/ready;"
    " while true; do sleep 0.05; done"
)


@pytest.mark.parametrize(
    ("signal", "expected"),
    [("USR1", "USR1"), ("SIGUSR1", "USR1"), ("10", "USR1"), ("hup", "HUP"), ("SIGHUP", "HUP"), ("1", "HUP")],
)
def test_kill_by_name_and_number(
    bundle: Any, runtime: Any, tmp_path: Path, signal: str, expected: str
) -> None:
    runtime.run("run", "--detach", "--bundle", sh(bundle, TRAPPER, edit=_out_mount(tmp_path)), "c1")
    wait_for(lambda: (tmp_path / "out" / "ready").exists(), what="the traps")
    runtime.run("kill", "c1", signal)
    signals = tmp_path / "out" / "signals"
    # `>>` creates the file before echo writes to it: wait for the line
    wait_for(lambda: signals.exists() and signals.read_text().endswith("\n"), what="the signal")
    assert signals.read_text().split() == [expected]
    assert runtime.state("c1")["status"] == "running"


def test_kill_default_is_sigterm(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    runtime.run("run", "--detach", "--bundle", sh(bundle, TRAPPER, edit=_out_mount(tmp_path)), "c1")
    wait_for(lambda: (tmp_path / "out" / "ready").exists(), what="the traps")
    runtime.run("kill", "c1")
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="the container to stop")
    assert (tmp_path / "out" / "signals").read_text().split() == ["TERM"]


def test_kill_sigkill_stops(bundle: Any, runtime: Any) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(SLEEP), "c1")
    pid = runtime.state("c1")["pid"]
    runtime.run("kill", "c1", "KILL")
    wait_for(lambda: not alive(pid), what="init to die")
    assert runtime.state("c1")["status"] == "stopped"


def test_kill_a_created_container(bundle: Any, runtime: Any) -> None:
    runtime.run("create", "--bundle", bundle(SLEEP), "c1")
    pid = runtime.state("c1")["pid"]
    runtime.run("kill", "c1", "9")
    wait_for(lambda: not alive(pid), what="init to die")
    assert runtime.state("c1")["status"] == "stopped"


def test_kill_all(bundle: Any, runtime: Any, test_token: str) -> None:
    script = "sleep 100 & sleep 100 & sleep 100 & wait"
    runtime.run("run", "--detach", "--bundle", sh(bundle, script), "c1")
    wait_for(lambda: len(pids_with_token(test_token)) >= 4, what="the children")
    runtime.run("kill", "--all", "c1", "KILL")
    wait_for(lambda: not pids_with_token(test_token), what="every process of the container to die")


def test_kill_signal_zero_only_checks(bundle: Any, runtime: Any) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(SLEEP), "c1")
    runtime.run("kill", "c1", "0")
    assert runtime.state("c1")["status"] == "running"


@pytest.mark.parametrize("signal", ["SIGNOPE", "99", "-1", "1.5"])
def test_kill_unknown_signal(bundle: Any, runtime: Any, signal: str) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(SLEEP), "c1")
    result = runtime.run("kill", "c1", signal, check=False)
    assert result.returncode != 0
    assert runtime.state("c1")["status"] == "running"


def test_kill_a_stopped_container_fails(bundle: Any, runtime: Any) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(["true"]), "c1")
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="the container to exit")
    result = runtime.run("kill", "c1", "KILL", check=False)
    assert result.returncode != 0


# --- delete ---


def test_delete_a_stopped_container(bundle: Any, runtime: Any) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(["true"]), "c1")
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="the container to exit")
    runtime.run("delete", "c1")
    assert not (runtime.root / "c1").exists()
    assert runtime.run("state", "c1", check=False).returncode != 0


def test_delete_a_created_container(bundle: Any, runtime: Any) -> None:
    runtime.run("create", "--bundle", bundle(SLEEP), "c1")
    pid = runtime.state("c1")["pid"]
    runtime.run("delete", "c1")
    assert not alive(pid)
    assert not (runtime.root / "c1").exists()


def test_delete_a_running_container_needs_force(bundle: Any, runtime: Any) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(SLEEP), "c1")
    pid = runtime.state("c1")["pid"]
    result = runtime.run("delete", "c1", check=False)
    assert result.returncode != 0
    assert alive(pid)
    assert runtime.state("c1")["status"] == "running"
    runtime.run("delete", "--force", "c1")
    assert not alive(pid)
    assert not (runtime.root / "c1").exists()


def test_delete_force_kills_every_process(bundle: Any, runtime: Any, test_token: str) -> None:
    runtime.run("run", "--detach", "--bundle", sh(bundle, "sleep 100 & sleep 100 & wait"), "c1")
    wait_for(lambda: len(pids_with_token(test_token)) >= 3, what="the children")
    runtime.run("delete", "--force", "c1")
    assert not pids_with_token(test_token)


def test_delete_missing_container(runtime: Any) -> None:
    assert runtime.run("delete", "nosuch", check=False).returncode != 0
    assert runtime.run("delete", "--force", "nosuch").returncode == 0


def test_delete_leaves_no_mounts(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    b = bundle(SLEEP)
    runtime.run("run", "--detach", "--bundle", b, "c1")
    runtime.run("delete", "--force", "c1")
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()


# --- run ---


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_run_exit_code(bundle: Any, runtime: Any, code: int) -> None:
    result = runtime.run("run", "--bundle", sh(bundle, f"exit {code}"), "c1", check=False)
    assert result.returncode == code
    assert not (runtime.root / "c1").exists()  # run deletes the container when it ends


@pytest.mark.parametrize(("signal", "code"), [("KILL", 137), ("TERM", 143), ("SEGV", 139)])
def test_run_exit_code_of_a_signal(bundle: Any, runtime: Any, signal: str, code: int) -> None:
    # pid 1 ignores signals it has no handler for, even fatal ones: a child of the shell gets it
    result = runtime.run(
        "run", "--bundle", sh(bundle, f"sh -c 'kill -{signal} $$'; exit $?"), "c1", check=False
    )
    assert result.returncode == code


def test_run_output(bundle: Any, runtime: Any) -> None:
    result = runtime.run("run", "--bundle", sh(bundle, "echo out; echo err >&2"), "c1")
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_run_stdin(bundle: Any, runtime: Any) -> None:
    result = runtime.run("run", "--bundle", sh(bundle, "tr a-z A-Z"), "c1", input="shout\n")
    assert result.stdout == "SHOUT\n"


def test_run_detach(bundle: Any, runtime: Any) -> None:
    started = time.monotonic()
    runtime.run("run", "--detach", "--bundle", bundle(SLEEP), "c1")
    assert time.monotonic() - started < 10
    state = runtime.state("c1")
    assert state["status"] == "running"
    assert _cmdline(state["pid"]) == SLEEP


def test_run_forwards_signals(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    proc = runtime.popen("run", "--bundle", sh(bundle, TRAPPER, edit=_out_mount(tmp_path)), "c1")
    try:
        wait_for(lambda: (tmp_path / "out" / "ready").exists(), what="the traps")
        proc.send_signal(15)
        assert proc.wait(timeout=10) == 0
        assert (tmp_path / "out" / "signals").read_text().split() == ["TERM"]
    finally:
        proc.kill()
        proc.wait()


def test_run_with_an_existing_id_fails(bundle: Any, runtime: Any) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(SLEEP), "c1")
    result = runtime.run("run", "--bundle", bundle(["true"]), "c1", check=False)
    assert result.returncode != 0
    assert runtime.state("c1")["status"] == "running"


def test_run_missing_executable(bundle: Any, runtime: Any) -> None:
    result = runtime.run("run", "--bundle", bundle(["no-such-program"]), "c1", check=False)
    assert result.returncode != 0
    assert "no-such-program" in result.stderr
    assert not (runtime.root / "c1").exists()


# --- list ---


def test_list(bundle: Any, runtime: Any) -> None:
    assert runtime.run("list", "-q").stdout.split() == []
    b1, b2 = bundle(SLEEP), bundle(SLEEP)
    runtime.run("run", "--detach", "--bundle", b1, "alpha")
    runtime.run("create", "--bundle", b2, "beta")

    assert sorted(runtime.run("list", "-q").stdout.split()) == ["alpha", "beta"]

    table = runtime.run("list").stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["alpha"][1] == str(runtime.state("alpha")["pid"])
    assert rows["alpha"][2] == "running"
    assert rows["beta"][2] == "created"
    assert rows["alpha"][3] == str(b1)
    assert rows["alpha"][5] == "root"

    listed = {item["id"]: item for item in json.loads(runtime.run("list", "--format", "json").stdout)}
    assert set(listed) == {"alpha", "beta"}
    assert listed["alpha"]["status"] == "running"
    assert listed["beta"]["status"] == "created"
    assert listed["alpha"]["pid"] == runtime.state("alpha")["pid"]
    assert listed["alpha"]["bundle"] == str(b1)


# --- exec ---


@pytest.fixture
def running(bundle: Any, runtime: Any) -> str:
    runtime.run("run", "--detach", "--bundle", bundle(SLEEP, noNewPrivileges=False), "c1")
    return "c1"


def test_exec_args_and_exit_code(runtime: Any, running: str) -> None:
    assert runtime.run("exec", running, "echo", "hello", "world").stdout == "hello world\n"
    assert runtime.run("exec", running, "sh", "-c", "exit 3", check=False).returncode == 3


def test_exec_joins_the_container(runtime: Any, running: str) -> None:
    pid = runtime.state(running)["pid"]
    out = runtime.run("exec", running, "sh", "-c", "ps -o pid,args; hostname").stdout
    assert "sleep 60" in out
    assert out.splitlines()[-1] == "hutch"
    assert any(line.split()[0] == "1" and "sleep" in line for line in out.splitlines()[1:-1])
    assert pid != 1


def test_exec_process_file(runtime: Any, running: str, tmp_path: Path) -> None:
    process = {
        "user": {"uid": 1000, "gid": 1000},
        "args": ["sh", "-c", "id -u; pwd; echo $FROM_FILE"],
        "env": ["PATH=/bin", "FROM_FILE=yes"],
        "cwd": "/tmp",
    }
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    assert runtime.run("exec", "--process", path, running).stdout.split() == ["1000", "/tmp", "yes"]


def test_exec_detach(runtime: Any, running: str, tmp_path: Path) -> None:
    started = time.monotonic()
    runtime.run("exec", "--detach", running, "sh", "-c", "sleep 0.3; echo done > /dev/shm/detached")
    assert time.monotonic() - started < 5
    wait_for(
        lambda: runtime.run("exec", running, "cat", "/dev/shm/detached", check=False).stdout == "done\n",
        what="the detached process",
    )


def test_exec_pid_file(runtime: Any, running: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "exec.pid"
    runtime.run("exec", "--detach", "--pid-file", pid_file, running, "sleep", "30")
    pid = int(pid_file.read_text())
    assert _cmdline(pid) == ["sleep", "30"]
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{runtime.state(running)['pid']}/ns/pid")


def test_exec_cwd(runtime: Any, running: str) -> None:
    assert runtime.run("exec", "--cwd", "/etc", running, "pwd").stdout == "/etc\n"


def test_exec_env(runtime: Any, running: str, test_token: str) -> None:
    out = runtime.run("exec", "--env", "FOO=bar", "-e", "BAZ=q u x", running, "env").stdout.splitlines()
    assert "FOO=bar" in out
    assert "BAZ=q u x" in out
    assert f"HUTCH_TEST_TOKEN={test_token}" in out  # the container's own env comes along


def test_exec_user(runtime: Any, running: str) -> None:
    assert runtime.run("exec", "--user", "1000:1001", running, "id", "-u").stdout == "1000\n"
    assert runtime.run("exec", "--user", "1000:1001", running, "id", "-g").stdout == "1001\n"
    assert runtime.run("exec", "-u", "65534", running, "id", "-u").stdout == "65534\n"


def test_exec_additional_gids(runtime: Any, running: str) -> None:
    out = runtime.run(
        "exec", "-u", "1000:1000", "-g", "5", "-g", "44", running, "cat", "/proc/self/status"
    ).stdout
    assert sorted(status_field(out, "Groups").split()) == ["44", "5"]


def test_exec_cap(runtime: Any, running: str) -> None:
    out = runtime.run("exec", "--cap", "CAP_SYS_ADMIN", running, "cat", "/proc/self/status").stdout
    assert int(status_field(out, "CapBnd"), 16) & (1 << 21)
    assert int(status_field(out, "CapEff"), 16) & (1 << 21)
    plain = runtime.run("exec", running, "cat", "/proc/self/status").stdout
    assert not int(status_field(plain, "CapBnd"), 16) & (1 << 21)


def test_exec_no_new_privs(runtime: Any, running: str) -> None:
    plain = runtime.run("exec", running, "cat", "/proc/self/status").stdout
    assert status_field(plain, "NoNewPrivs") == "0"
    out = runtime.run("exec", "--no-new-privs", running, "cat", "/proc/self/status").stdout
    assert status_field(out, "NoNewPrivs") == "1"


def test_exec_preserve_fds(runtime: Any, running: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("through fd 3\n")
    with open(data) as f:
        os.dup2(f.fileno(), 100)
        try:
            proc = runtime.popen(
                "exec", "--preserve-fds", "1", running, "sh", "-c", "cat <&3; ls /proc/self/fd",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                pass_fds=(3,), preexec_fn=lambda: os.dup2(100, 3),
            )  # fmt: skip
            out, err = proc.communicate(timeout=30)
        finally:
            os.close(100)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "through fd 3"
    assert "3" in lines[1:]


def test_exec_in_a_stopped_container_fails(bundle: Any, runtime: Any) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(["true"]), "c1")
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="the container to exit")
    result = runtime.run("exec", "c1", "true", check=False)
    assert result.returncode != 0


def test_exec_missing_executable(runtime: Any, running: str) -> None:
    result = runtime.run("exec", running, "no-such-program", check=False)
    assert result.returncode != 0
    assert "no-such-program" in result.stderr


def test_exec_in_a_missing_container_fails(runtime: Any) -> None:
    result = runtime.run("exec", "nosuch", "true", check=False)
    assert result.returncode != 0
    assert "nosuch" in result.stderr


# --- features and spec ---


def test_features(runtime: Any) -> None:
    features = json.loads(runtime.run("features").stdout)
    assert features["ociVersionMin"].startswith("1.0")
    assert features["ociVersionMax"].startswith("1.")
    assert set(features["hooks"]) == {
        "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
    }  # fmt: skip
    assert {"rbind", "ro", "rro", "nosuid", "rnosuid", "private", "rslave", "idmap"} <= set(
        features["mountOptions"]
    )
    linux = features["linux"]
    assert set(linux["namespaces"]) == {"cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"}
    assert {"CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_KILL"} <= set(linux["capabilities"])
    assert linux["mountExtensions"]["idmap"]["enabled"] is True


def test_features_has_runcs_keys(runtime: Any, runc: Any) -> None:
    ours = json.loads(runtime.run("features").stdout)
    theirs = json.loads(runc.run("features").stdout)
    assert set(theirs) <= set(ours)
    assert set(theirs["linux"]) - {"apparmor", "selinux"} <= set(ours["linux"])


def test_spec_writes_a_config_that_runs(runtime: Any, tmp_path: Path, busybox_rootfs: Path) -> None:
    b = tmp_path / "specbundle"
    b.mkdir()
    runtime.run("spec", "--bundle", b)
    config = json.loads((b / "config.json").read_text())
    assert config["ociVersion"].startswith("1.")
    assert config["process"]["terminal"] is True
    assert config["root"] == {"path": "rootfs", "readonly": True}
    assert {n["type"] for n in config["linux"]["namespaces"]} >= {"pid", "network", "ipc", "uts", "mount"}
    # it runs as it is, apart from the terminal and the command
    subprocess.run(["cp", "-a", str(busybox_rootfs), str(b / "rootfs")], check=True)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["echo", "default spec"]
    (b / "config.json").write_text(json.dumps(config))
    assert run_ok(runtime, b) == "default spec\n"


def test_spec_refuses_to_overwrite(runtime: Any, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    result = runtime.run("spec", "--bundle", tmp_path, check=False)
    assert result.returncode != 0
    assert (tmp_path / "config.json").read_text() == "{}"


def test_spec_rootless(runtime: Any, tmp_path: Path) -> None:
    runtime.run("spec", "--rootless", "--bundle", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    kinds = {n["type"] for n in config["linux"]["namespaces"]}
    assert "user" in kinds and "network" not in kinds
    assert config["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert config["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert "resources" not in config["linux"] or "devices" not in config["linux"]["resources"]
    sys_mount = next(m for m in config["mounts"] if m["destination"] == "/sys")
    assert "rbind" in sys_mount["options"]


def test_spec_rootless_matches_runcs_shape(runtime: Any, runc: Any, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    runtime.run("spec", "--rootless", "--bundle", ours)
    runc.run("spec", "--rootless", "--bundle", theirs)
    a = json.loads((ours / "config.json").read_text())
    b = json.loads((theirs / "config.json").read_text())
    assert {n["type"] for n in a["linux"]["namespaces"]} == {n["type"] for n in b["linux"]["namespaces"]}
    assert a["linux"]["uidMappings"] == b["linux"]["uidMappings"]
    assert sorted(m["destination"] for m in a["mounts"]) == sorted(m["destination"] for m in b["mounts"])


def test_annotations_in_state_and_list(bundle: Any, runtime: Any) -> None:
    annotations = {"io.kubernetes.pod": "web", "empty": "", "unicode": "h\u00e9"}
    runtime.run("create", "--bundle", bundle(SLEEP, annotations=annotations), "c1")
    assert runtime.state("c1")["annotations"] == annotations
    listed = json.loads(runtime.run("list", "--format", "json").stdout)
    assert listed[0]["annotations"] == annotations


def test_two_containers_from_one_bundle(bundle: Any, runtime: Any) -> None:
    b = bundle(SLEEP)
    runtime.run("run", "--detach", "--bundle", b, "one")
    runtime.run("run", "--detach", "--bundle", b, "two")
    assert runtime.state("one")["pid"] != runtime.state("two")["pid"]
    runtime.run("delete", "--force", "one")
    assert runtime.state("two")["status"] == "running"


def test_writable_root_changes_persist_in_the_bundle(bundle: Any, runtime: Any) -> None:
    b = sh(bundle, "echo persisted > /root/file", root=RW_ROOT)
    run_ok(runtime, b)
    assert (b / "rootfs" / "root" / "file").read_text() == "persisted\n"
