"""Errors: one clear message naming what was wrong, a non-zero exit, and nothing left behind (no process,
mount, state dir or fifo); with `--log FILE --log-format json`, a runc-style JSON line at level error."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import mountinfo_lines, pids_with_token, wait_for

Edit = Callable[[dict[str, Any]], None]


def _processes_of(bundle: Path) -> list[int]:
    """Processes whose root is the bundle's rootfs, or that run the runtime on it (a leftover init)."""
    found = []
    rootfs = str(bundle / "rootfs")
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
                if stat[stat.rindex(")") + 2] == "Z":
                    continue
                root = os.readlink(f"{entry.path}/root")
                if root.startswith(rootfs) or str(bundle) in Path(entry.path, "cmdline").read_text():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def assert_nothing_left(runtime: Any, bundle: Path, container_id: str, token: str | None = None) -> None:
    assert not (runtime.root / container_id).exists(), "state dir left"
    assert not list(runtime.root.glob(f"{container_id}*")), "state files left"
    assert not list(runtime.root.rglob("exec.fifo")), "fifo left"
    assert runtime.run("list", "-q").stdout.split() == [], "container still listed"
    assert not mountinfo_lines(str(bundle)), "mounts left"
    wait_for(lambda: not _processes_of(bundle), timeout=5, what=f"no process of {bundle}")
    if token is not None:
        wait_for(lambda: not pids_with_token(token), timeout=5, what="no process of the container")


def _fail(runtime: Any, bundle: Path, container_id: str = "c1", command: str = "run") -> str:
    result = runtime.run(command, "--bundle", bundle, container_id, check=False)
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "no error message"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


def _write_config(bundle: Path, edit: Edit) -> None:
    config = json.loads((bundle / "config.json").read_text())
    edit(config)
    (bundle / "config.json").write_text(json.dumps(config))


# --- config.json ---


def test_missing_config(bundle: Any, runtime: Any) -> None:
    b = bundle(["true"])
    (b / "config.json").unlink()
    err = _fail(runtime, b)
    assert "config.json" in err
    assert_nothing_left(runtime, b, "c1")


def test_invalid_json(bundle: Any, runtime: Any) -> None:
    b = bundle(["true"])
    (b / "config.json").write_text('{"ociVersion": "1.2.0", "process": {')
    err = _fail(runtime, b)
    assert "config.json" in err and "JSON" in err
    assert_nothing_left(runtime, b, "c1")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda c: c["process"].update(args="sh"), "process.args"),
        (lambda c: c["process"].update(args=[]), "process.args"),
        (lambda c: c["process"]["user"].update(uid="root"), "process.user.uid"),
        (lambda c: c["process"].update(cwd="relative/dir"), "process.cwd"),
        (
            lambda c: c["process"]["capabilities"]["bounding"].append("CAP_NOPE"),
            "process.capabilities.bounding[3]",
        ),
        (
            lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}),
            "process.rlimits[1].type",
        ),
        (
            lambda c: c["process"]["rlimits"].__setitem__(0, {"type": "RLIMIT_NOFILE", "soft": 9, "hard": 8}),
            "process.rlimits[0].soft",
        ),
        (lambda c: c["mounts"].append({"destination": "relative", "type": "tmpfs"}), "mounts[7].destination"),
        (lambda c: c["mounts"].__setitem__(0, "proc"), "mounts[0]"),
        (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "linux.namespaces[5].type"),
        (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "linux.namespaces[5].type"),
        (lambda c: c["linux"].update(maskedPaths=["proc/kcore"]), "linux.maskedPaths[0]"),
        (lambda c: c["linux"].update(devices=[{"type": "x", "path": "/dev/x"}]), "linux.devices[0].type"),
        (
            lambda c: c["hooks"] if False else c.update(hooks={"prestart": [{"path": "rel"}]}),
            "hooks.prestart[0].path",
        ),
        (lambda c: c.update(annotations={"a": 1}), "annotations"),
        (lambda c: c.pop("process"), "process"),
        (lambda c: c.pop("root"), "root"),
        (lambda c: c.update(hostname=7), "hostname"),
        (lambda c: c["process"].update(oomScoreAdj=5000), "process.oomScoreAdj"),
        (lambda c: c["linux"].update(rootfsPropagation="sideways"), "linux.rootfsPropagation"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_invalid_field_is_named(bundle: Any, runtime: Any, edit: Edit, field: str) -> None:
    b = bundle(["true"])
    _write_config(b, edit)
    err = _fail(runtime, b)
    assert field in err, err
    assert "config.json" in err
    assert_nothing_left(runtime, b, "c1")


@pytest.mark.parametrize("version", ["2.0.0", "0.9.0", "banana", ""])
def test_oci_version_with_another_major(bundle: Any, runtime: Any, version: str) -> None:
    b = bundle(["true"])
    _write_config(b, lambda c: c.update(ociVersion=version))
    err = _fail(runtime, b)
    assert "ociVersion" in err
    assert_nothing_left(runtime, b, "c1")


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1"])
def test_oci_version_1_x_is_accepted(bundle: Any, runtime: Any, version: str) -> None:
    b = bundle(["true"])
    _write_config(b, lambda c: c.update(ociVersion=version))
    assert runtime.run("run", "--bundle", b, "c1").returncode == 0


def test_missing_rootfs(bundle: Any, runtime: Any) -> None:
    b = bundle(["true"])
    _write_config(b, lambda c: c["root"].update(path="no-such-rootfs"))
    err = _fail(runtime, b)
    assert "root.path" in err and "no-such-rootfs" in err
    assert_nothing_left(runtime, b, "c1")


def test_rootfs_that_is_a_file(bundle: Any, runtime: Any) -> None:
    b = bundle(["true"])
    (b / "afile").write_text("")
    _write_config(b, lambda c: c["root"].update(path="afile"))
    assert "root.path" in _fail(runtime, b)
    assert_nothing_left(runtime, b, "c1")


def test_missing_bundle(runtime: Any, tmp_path: Path) -> None:
    result = runtime.run("run", "--bundle", tmp_path / "nope", "c1", check=False)
    assert result.returncode != 0
    assert "nope" in result.stderr
    assert not (runtime.root / "c1").exists()


# --- ids ---


def test_existing_id(bundle: Any, runtime: Any, test_token: str) -> None:
    first = bundle(["sleep", "60"])
    runtime.run("create", "--bundle", first, "c1")
    pid = runtime.state("c1")["pid"]
    second = bundle(["true"])
    err = _fail(runtime, second, "c1", "create")
    assert "c1" in err and "exist" in err
    # the first container is untouched, the second left nothing
    state = runtime.state("c1")
    assert state["pid"] == pid and state["status"] == "created" and state["bundle"] == str(first)
    assert not mountinfo_lines(str(second))
    assert not _processes_of(second)


@pytest.mark.parametrize("bad_id", ["a/b", "../escape", "..", ".", "", "a b", "x\ny", "/abs"])
def test_invalid_id(bundle: Any, runtime: Any, bad_id: str, tmp_path: Path) -> None:
    b = bundle(["true"])
    result = runtime.run("run", "--bundle", b, bad_id, check=False)
    assert result.returncode != 0
    assert result.stderr.strip()
    assert "Traceback" not in result.stderr
    # nothing made anywhere: not under the root, not beside it
    assert not runtime.root.exists() or list(runtime.root.iterdir()) == []
    assert not (tmp_path / "escape").exists()
    assert not mountinfo_lines(str(b))


# --- operations in the wrong state ---


def test_start_a_running_container(bundle: Any, runtime: Any) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(["sleep", "60"]), "c1")
    result = runtime.run("start", "c1", check=False)
    assert result.returncode != 0
    assert "running" in result.stderr
    assert runtime.state("c1")["status"] == "running"


def test_start_a_stopped_container(bundle: Any, runtime: Any) -> None:
    runtime.run("create", "--bundle", bundle(["true"]), "c1")
    runtime.run("kill", "c1", "KILL")
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="the container to stop")
    result = runtime.run("start", "c1", check=False)
    assert result.returncode != 0
    assert "stopped" in result.stderr


def test_operations_on_a_missing_container(runtime: Any) -> None:
    for args in (
        ["start", "ghost"],
        ["state", "ghost"],
        ["kill", "ghost"],
        ["delete", "ghost"],
        ["exec", "ghost", "true"],
    ):
        result = runtime.run(*args, check=False)
        assert result.returncode != 0, args
        assert "ghost" in result.stderr, args


# --- limits the host forbids ---


def test_nofile_above_the_hosts_hard_limit(bundle: Any, runtime: Any, test_token: str) -> None:
    import resource

    _, host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    b = bundle(["true"], rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}])
    err = _fail(runtime, b)
    assert "RLIMIT_NOFILE" in err
    assert "process.rlimits[0]" in err
    assert str(host_hard) in err
    assert_nothing_left(runtime, b, "c1", test_token)


def test_capability_the_runtime_lacks(bundle: Any, runtime: Any, test_token: str) -> None:
    own = int(Path("/proc/self/status").read_text().split("CapBnd:")[1].split()[0], 16)
    caps = {k: ["CAP_SYS_RESOURCE"] for k in ("bounding", "effective", "permitted")}
    b = bundle(["grep", "CapBnd", "/proc/self/status"], capabilities=caps)
    if own & (1 << 24):  # a host whose runtime has it: the container gets it
        assert runtime.run("run", "--bundle", b, "c1").stdout.split() == ["CapBnd:", f"{1 << 24:016x}"]
        return
    err = _fail(runtime, b)
    assert "CAP_SYS_RESOURCE" in err
    assert_nothing_left(runtime, b, "c1", test_token)


# --- failures inside the container's setup leave nothing behind ---


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (
            lambda c: c["mounts"].append(
                {"destination": "/mnt", "type": "bind", "source": "/no/such/source", "options": ["bind"]}
            ),
            "/mnt",
        ),
        (lambda c: c["mounts"].append({"destination": "/mnt", "type": "nosuchfs", "source": "x"}), "/mnt"),
        (lambda c: c["process"].update(args=["/no/such/binary"]), "/no/such/binary"),
        (lambda c: c["process"].update(cwd="/etc/passwd"), "process.cwd"),
        (lambda c: c["linux"].update(sysctl={"net.ipv4.no_such": "1"}), "net.ipv4.no_such"),
        (
            lambda c: c["process"].update(user={"uid": 0, "gid": 0, "additionalGids": [1] * 70000}),
            "process.user",
        ),
    ],
    ids=["bind-source", "fstype", "executable", "cwd-file", "sysctl", "groups"],
)
def test_failure_during_setup_leaves_nothing(
    bundle: Any, runtime: Any, test_token: str, edit: Edit, needle: str
) -> None:
    b = bundle(["true"])
    _write_config(b, edit)
    err = _fail(runtime, b, command="create")
    assert needle in err, err
    assert_nothing_left(runtime, b, "c1", test_token)


def test_failing_run_leaves_nothing(bundle: Any, runtime: Any, test_token: str) -> None:
    b = bundle(["/no/such/binary"])
    _fail(runtime, b, command="run")
    assert_nothing_left(runtime, b, "c1", test_token)


# --- --log FILE --log-format json ---


def _log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("scenario", ["bad-config", "missing-container", "setup-failure", "nofile"])
def test_json_log_has_the_error(bundle: Any, runtime: Any, tmp_path: Path, scenario: str) -> None:
    log = tmp_path / "runtime.log"
    b = bundle(["true"])
    if scenario == "bad-config":
        _write_config(b, lambda c: c.update(ociVersion="2.0.0"))
        args = ["run", "--bundle", b, "c1"]
    elif scenario == "missing-container":
        args = ["start", "ghost"]
    elif scenario == "setup-failure":
        _write_config(b, lambda c: c["process"].update(args=["/no/such/binary"]))
        args = ["create", "--bundle", b, "c1"]
    else:
        _write_config(
            b,
            lambda c: c["process"].update(
                rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]
            ),
        )
        args = ["run", "--bundle", b, "c1"]
    result = runtime.run("--log", log, "--log-format", "json", *args, check=False)
    assert result.returncode != 0
    lines = _log_lines(log)
    errors = [line for line in lines if line["level"] == "error"]
    assert errors, lines
    last = errors[-1]
    assert set(last) >= {"level", "msg", "time"}
    assert last["msg"].strip()
    assert "Traceback" not in last["msg"]
    # runc's time format: RFC 3339 in UTC
    assert last["time"].endswith("Z") and "T" in last["time"]


def test_text_log_format(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    log = tmp_path / "runtime.log"
    result = runtime.run("--log", log, "--log-format", "text", "start", "ghost", check=False)
    assert result.returncode != 0
    text = log.read_text()
    assert "level=error" in text and "ghost" in text


def test_error_goes_to_stderr_as_one_line(runtime: Any) -> None:
    result = runtime.run("state", "ghost", check=False)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("field", "module"),
    [("apparmorProfile", "AppArmor is not enabled"), ("selinuxLabel", "SELinux is disabled")],
)
def test_a_label_the_host_cannot_apply(bundle: Any, runtime: Any, field: str, module: str) -> None:
    # This host runs neither module: a container must not silently run unconfined when its spec asks for a
    # label, so create refuses (as runc does), for the container and for an exec into one.
    if (field == "apparmorProfile" and os.path.exists("/sys/kernel/security/apparmor")) or (
        field == "selinuxLabel" and os.path.exists("/sys/fs/selinux/enforce")
    ):
        pytest.fail(f"this test expects a host without the module behind process.{field}")
    b = bundle(["true"], **{field: "container_t" if field == "selinuxLabel" else "hutch-test"})
    assert f"process.{field}" in _fail(runtime, b) and module in _fail(runtime, b)
    assert_nothing_left(runtime, b, "c1")
    runtime.run("run", "--detach", "--bundle", bundle(["sleep", "30"]), "c2")
    process = {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, field: "x"}
    path = b / "process.json"
    path.write_text(json.dumps(process))
    proc = runtime.run("exec", "--process", path, "c2", check=False)
    assert proc.returncode != 0 and module in proc.stderr
