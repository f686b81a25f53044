"""hooks: all six kinds, their order, the state on stdin, their namespaces, env, args, timeout, failures.

Each hook is /bin/sh (on the host, and in the busybox rootfs for the hooks that run after pivot_root) writing
what it sees into a log directory that the host and the container share through a bind mount.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import wait_for

HOST_KINDS = ("prestart", "createRuntime", "poststart", "poststop")  # run by the runtime, on the host


def _hook(log: str, name: str, extra: str = "", **fields: Any) -> dict[str, Any]:
    """A hook that appends `name` to log/order, saves its stdin to log/state-<name>.json and its view of
    the world (namespaces, env, cwd, args) to log/env-<name>."""
    script = (
        f"cat > {log}/state-{name}.json; echo {name} >> {log}/order;"
        f' {{ echo "net $(readlink /proc/self/ns/net)"; echo "mnt $(readlink /proc/self/ns/mnt)";'
        f' echo "args $0 $*"; env; }} > {log}/env-{name}; {extra}'
    )
    hook: dict[str, Any] = {"path": "/bin/sh", "args": ["sh", "-c", script, "arg0", "one", "two"]}
    hook.update(fields)
    return hook


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    d = tmp_path / "hooklog"
    d.mkdir()
    d.chmod(0o777)
    return d


def _bundle(
    bundle: Any,
    logdir: Path,
    hooks: dict[str, list[dict[str, Any]]],
    args: list[str] | None = None,
    **fields: Any,
) -> Path:
    def edit(spec: dict[str, Any]) -> None:
        spec["mounts"].append(
            {"destination": "/hooklog", "type": "bind", "source": str(logdir), "options": ["rbind"]}
        )
        spec["hooks"] = hooks
        spec["annotations"] = {"org.example.key": "value"}

    path: Path = bundle(args or ["sh", "-c", "echo process >> /hooklog/order; sleep 30"], edit=edit, **fields)
    return path


def _all_hooks(logdir: Path) -> dict[str, list[dict[str, Any]]]:
    host = str(logdir)
    return {
        "prestart": [_hook(host, "prestart")],
        "createRuntime": [_hook(host, "createRuntime")],
        # createContainer runs in the container's namespaces before pivot_root: the host's paths still resolve
        "createContainer": [_hook(host, "createContainer")],
        # startContainer runs after pivot_root: its path and files are the container's
        "startContainer": [_hook("/hooklog", "startContainer")],
        "poststart": [_hook(host, "poststart")],
        "poststop": [_hook(host, "poststop")],
    }


def _order(logdir: Path) -> list[str]:
    path = logdir / "order"
    return path.read_text().split() if path.exists() else []


def test_all_hooks_run_in_order(bundle: Any, runtime: Any, logdir: Path) -> None:
    b = _bundle(bundle, logdir, _all_hooks(logdir))
    runtime.run("create", "--bundle", b, "c1")
    assert _order(logdir) == ["prestart", "createRuntime", "createContainer"]
    runtime.run("start", "c1")
    wait_for(lambda: len(_order(logdir)) >= 5, what="startContainer, the process and poststart")
    order = _order(logdir)
    assert order[:4] == ["prestart", "createRuntime", "createContainer", "startContainer"]
    assert sorted(order[4:]) == ["poststart", "process"]
    runtime.run("kill", "c1", "KILL")
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="the container to stop")
    assert "poststop" not in _order(logdir)
    runtime.run("delete", "c1")
    assert _order(logdir)[-1] == "poststop"
    assert len(_order(logdir)) == 7


def test_hooks_init_runs_get_no_ignored_or_blocked_signal(bundle: Any, runtime: Any, logdir: Path) -> None:
    # Init runs createContainer and startContainer; started ahead, it ignored SIGINT while it waited. (grep is
    # not the script's last command: busybox's sh, which ignores SIGQUIT, would exec it with that ignored.)
    def signals_of(log: str, name: str) -> dict[str, Any]:
        return _hook(log, name, extra=f"grep -E '^Sig(Blk|Ign)' /proc/self/status > {log}/sig-{name}; true")

    hooks = {
        "createContainer": [signals_of(str(logdir), "createContainer")],
        "startContainer": [signals_of("/hooklog", "startContainer")],
    }
    runtime.run("run", "--bundle", _bundle(bundle, logdir, hooks, args=["true"]), "c1")
    for name in ("createContainer", "startContainer"):
        assert (logdir / f"sig-{name}").read_text().split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16]


def test_hook_state_on_stdin(bundle: Any, runtime: Any, logdir: Path) -> None:
    b = _bundle(bundle, logdir, _all_hooks(logdir))
    runtime.run("create", "--bundle", b, "c1")
    pid = runtime.state("c1")["pid"]
    runtime.run("start", "c1")
    wait_for(lambda: (logdir / "state-poststart.json").exists(), what="poststart")
    runtime.run("delete", "--force", "c1")
    expected_status = {
        "prestart": "creating",
        "createRuntime": "creating",
        "createContainer": "creating",
        "startContainer": "created",
        "poststart": "running",
        "poststop": "stopped",
    }
    for kind in expected_status:
        state = json.loads((logdir / f"state-{kind}.json").read_text())
        assert state["id"] == "c1", kind
        assert state["bundle"] == str(b), kind
        assert state["annotations"] == {"org.example.key": "value"}, kind
        assert state["ociVersion"].startswith("1."), kind
        if kind != "poststop":
            assert state["pid"] == pid, kind  # the init's pid as the host sees it
        assert state["status"] == expected_status[kind], kind


def test_hook_namespaces(bundle: Any, runtime: Any, logdir: Path) -> None:
    b = _bundle(bundle, logdir, _all_hooks(logdir))
    runtime.run("create", "--bundle", b, "c1")
    pid = runtime.state("c1")["pid"]
    runtime.run("start", "c1")
    wait_for(lambda: (logdir / "env-poststart").exists(), what="poststart")

    def seen(kind: str) -> dict[str, str]:
        lines = (logdir / f"env-{kind}").read_text().splitlines()
        return dict(line.split(" ", 1) for line in lines if line.startswith(("net ", "mnt ")))

    host = {"net": os.readlink("/proc/self/ns/net"), "mnt": os.readlink("/proc/self/ns/mnt")}
    container = {"net": os.readlink(f"/proc/{pid}/ns/net"), "mnt": os.readlink(f"/proc/{pid}/ns/mnt")}
    for kind in ("prestart", "createRuntime", "poststart"):
        assert seen(kind) == host, kind
    for kind in ("createContainer", "startContainer"):
        assert seen(kind) == container, kind


def test_hook_env_and_args(bundle: Any, runtime: Any, logdir: Path) -> None:
    hooks = {"createRuntime": [_hook(str(logdir), "createRuntime", env=["FOO=bar", "PATH=/usr/bin:/bin"])]}
    runtime.run("create", "--bundle", _bundle(bundle, logdir, hooks), "c1")
    lines = (logdir / "env-createRuntime").read_text().splitlines()
    assert "args arg0 one two" in lines
    env = {
        line.split("=", 1)[0]
        for line in lines
        if "=" in line and not line.startswith(("net ", "mnt ", "args "))
    }
    assert "FOO=bar" in lines
    # only the hook's env (and what sh itself adds): nothing of the runtime's environment
    assert env <= {"FOO", "PATH", "PWD", "SHLVL", "_", "OLDPWD"}, env


def test_hook_without_args_gets_its_path_as_argv0(
    bundle: Any, runtime: Any, logdir: Path, tmp_path: Path
) -> None:
    script = tmp_path / "hook.sh"
    script.write_text(f'#!/bin/sh\necho "$0 $#" > {logdir}/argv\n')
    script.chmod(0o755)
    hooks = {"createRuntime": [{"path": str(script)}]}
    runtime.run("create", "--bundle", _bundle(bundle, logdir, hooks), "c1")
    assert (logdir / "argv").read_text() == f"{script} 0\n"


def test_several_hooks_of_a_kind_run_in_order(bundle: Any, runtime: Any, logdir: Path) -> None:
    hooks = {"prestart": [_hook(str(logdir), name) for name in ("first", "second", "third")]}
    runtime.run("create", "--bundle", _bundle(bundle, logdir, hooks), "c1")
    assert _order(logdir) == ["first", "second", "third"]


# --- failures ---


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(
    bundle: Any, runtime: Any, logdir: Path, kind: str
) -> None:
    hooks = {
        kind: [_hook(str(logdir), kind, extra="echo hook-says-no >&2; exit 3")],
        "poststop": [_hook(str(logdir), "poststop")],
    }
    result = runtime.run("create", "--bundle", _bundle(bundle, logdir, hooks), "c1", check=False)
    assert result.returncode != 0
    assert kind in result.stderr
    assert "hook-says-no" in result.stderr or "3" in result.stderr
    assert not (runtime.root / "c1").exists()
    assert runtime.run("list", "-q").stdout.split() == []
    assert "process" not in _order(logdir)


def test_failing_hook_stops_later_hooks_of_its_kind(bundle: Any, runtime: Any, logdir: Path) -> None:
    hooks = {
        "createRuntime": [_hook(str(logdir), "a", extra="exit 1"), _hook(str(logdir), "b")],
        "createContainer": [_hook(str(logdir), "c")],
    }
    result = runtime.run("create", "--bundle", _bundle(bundle, logdir, hooks), "c1", check=False)
    assert result.returncode != 0
    assert _order(logdir) == ["a"]


def test_failing_start_container_hook_stops_the_container(bundle: Any, runtime: Any, logdir: Path) -> None:
    hooks = {"startContainer": [_hook("/hooklog", "startContainer", extra="exit 1")]}
    b = _bundle(bundle, logdir, hooks)
    runtime.run("create", "--bundle", b, "c1")
    runtime.run("start", "c1", check=False)
    # the user process never runs, and the container is stopped
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="the container to stop")
    assert _order(logdir) == ["startContainer"]


def test_failing_start_container_hook_fails_run(bundle: Any, runtime: Any, logdir: Path) -> None:
    hooks = {"startContainer": [_hook("/hooklog", "startContainer", extra="exit 1")]}
    result = runtime.run("run", "--bundle", _bundle(bundle, logdir, hooks), "c1", check=False)
    assert result.returncode != 0
    assert "process" not in _order(logdir)


def test_failing_poststart_hook_only_warns(bundle: Any, runtime: Any, logdir: Path, tmp_path: Path) -> None:
    hooks = {
        "poststart": [_hook(str(logdir), "p1", extra="exit 1"), _hook(str(logdir), "p2")],
    }
    runtime.run("create", "--bundle", _bundle(bundle, logdir, hooks), "c1")
    log = tmp_path / "runtime.log"
    result = runtime.run("--log", log, "--log-format", "json", "start", "c1", check=False)
    assert result.returncode == 0
    wait_for(lambda: "p2" in _order(logdir), what="the second poststart hook")
    assert runtime.state("c1")["status"] == "running"
    levels = [json.loads(line)["level"] for line in log.read_text().splitlines()]
    assert "warning" in levels


def test_failing_poststop_hook_only_warns(bundle: Any, runtime: Any, logdir: Path, tmp_path: Path) -> None:
    hooks = {"poststop": [_hook(str(logdir), "s1", extra="exit 1"), _hook(str(logdir), "s2")]}
    runtime.run("create", "--bundle", _bundle(bundle, logdir, hooks), "c1")
    log = tmp_path / "runtime.log"
    result = runtime.run("--log", log, "--log-format", "json", "delete", "--force", "c1", check=False)
    assert result.returncode == 0
    assert _order(logdir) == ["s1", "s2"]
    assert not (runtime.root / "c1").exists()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(line["level"] == "warning" and "poststop" in line["msg"] for line in lines), lines


def test_hook_timeout(bundle: Any, runtime: Any, logdir: Path) -> None:
    hooks = {"createRuntime": [_hook(str(logdir), "slow", extra="sleep 20", timeout=1)]}
    started = time.monotonic()
    result = runtime.run("create", "--bundle", _bundle(bundle, logdir, hooks), "c1", check=False)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "timed out" in result.stderr or "timeout" in result.stderr
    assert elapsed < 10
    assert not (runtime.root / "c1").exists()


def test_hook_that_does_not_exist(bundle: Any, runtime: Any, logdir: Path) -> None:
    hooks = {"createRuntime": [{"path": "/no/such/hook"}]}
    result = runtime.run("create", "--bundle", _bundle(bundle, logdir, hooks), "c1", check=False)
    assert result.returncode != 0
    assert "/no/such/hook" in result.stderr
    assert not (runtime.root / "c1").exists()
