"""The engine's spec generation: entrypoint and cmd, env, users from the rootfs, podman's defaults, seccomp."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from hutch.engine import seccomp_profile
from hutch.engine.spec import (
    DEFAULT_CAPS,
    MASKED_PATHS,
    Options,
    generate,
    merge_env,
    process_args,
    resolve_user,
)
from hutch.errors import ConfigError, NotFoundError
from hutch.oci.config import parse
from hutch.oci.image import ContainerConfig


def test_entrypoint_and_cmd_as_podman_resolves_them() -> None:
    image = ContainerConfig(entrypoint=["/entry"], cmd=["default"])
    assert process_args(image, Options()) == ["/entry", "default"]
    assert process_args(image, Options(command=["x", "y"])) == ["/entry", "x", "y"]
    # --entrypoint drops the image's CMD.
    assert process_args(image, Options(entrypoint="/other")) == ["/other"]
    assert process_args(image, Options(entrypoint='["/a", "-b"]', command=["c"])) == ["/a", "-b", "c"]
    assert process_args(image, Options(entrypoint="", command=["sh"])) == ["sh"]
    with pytest.raises(ConfigError, match="no command or entrypoint"):
        process_args(ContainerConfig(), Options())


def test_env_merges_later_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "h")
    monkeypatch.delenv("NOT_SET", raising=False)
    got = merge_env(["PATH=/a", "A=1"], ["A=2", "B=x=y"], ["FROM_HOST", "NOT_SET"])
    assert got == ["PATH=/a", "A=2", "B=x=y", "FROM_HOST=h"]


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\napp:x:1001:\nwheel:x:10:app,other\n")
    return tmp_path


def test_users_from_the_rootfs(rootfs: Path) -> None:
    assert resolve_user(str(rootfs), "") == resolve_user(str(rootfs), "0")
    root = resolve_user(str(rootfs), "root")
    assert (root.uid, root.gid, root.home) == (0, 0, "/root")
    app = resolve_user(str(rootfs), "app")
    assert (app.uid, app.gid, app.additional_gids, app.home) == (1000, 1001, [10], "/home/app")
    assert (
        resolve_user(str(rootfs), "app:wheel").gid,
        resolve_user(str(rootfs), "app:wheel").additional_gids,
    ) == (
        10,
        [],
    )
    other = resolve_user(str(rootfs), "4000:5000")
    assert (other.uid, other.gid) == (4000, 5000)
    with pytest.raises(NotFoundError, match="unable to find user nobody"):
        resolve_user(str(rootfs), "nobody")


def test_passwd_symlink_cannot_leave_the_rootfs(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").symlink_to("/etc/passwd")  # the rootfs's own /etc/passwd: itself
    with pytest.raises(NotFoundError):
        resolve_user(str(tmp_path), "root")


def test_generated_spec_has_podmans_defaults(rootfs: Path, tmp_path: Path) -> None:
    image = ContainerConfig(env=["PATH=/bin", "X=1"], cmd=["sh"], working_dir="/srv")
    doc = generate(
        image,
        Options(env=["Y=2"], hostname="box", seccomp="unconfined"),
        rootfs=str(rootfs),
        userdata="/ud",
        container_id="a" * 64,
    )
    spec = parse(doc)  # the runtime's own parser accepts it
    proc = doc["process"]
    assert proc["args"] == ["sh"] and proc["cwd"] == "/srv"
    assert proc["env"] == ["PATH=/bin", "container=hutch", "X=1", "HOSTNAME=box", "Y=2", "HOME=/root"]
    assert proc["capabilities"]["effective"] == list(DEFAULT_CAPS)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert proc["rlimits"][0]["hard"] == min(hard, 1048576)
    assert doc["hostname"] == "box"
    assert {ns["type"] for ns in doc["linux"]["namespaces"]} == {
        "pid",
        "mount",
        "ipc",
        "uts",
        "cgroup",
        "network",
    }
    assert doc["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert "seccomp" not in doc["linux"]
    destinations = [m["destination"] for m in doc["mounts"]]
    for d in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/etc/hosts"):
        assert d in destinations
    assert spec.root is not None and spec.root.path == str(rootfs)
    # podman's pids limit is the engine's default, for a library caller as for the CLI
    assert doc["linux"]["resources"]["pids"] == {"limit": 2048}
    host = generate(image, Options(network="host"), rootfs=str(rootfs), userdata="/ud", container_id="b" * 64)
    assert "network" not in {ns["type"] for ns in host["linux"]["namespaces"]}
    assert host["hostname"] == "b" * 12
    unlimited = generate(
        image, Options(resources={}), rootfs=str(rootfs), userdata="/ud", container_id="c" * 64
    )
    assert "pids" not in unlimited["linux"]["resources"]


PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
    "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
        {"names": ["s390_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}},
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
            "args": [1],
        },
    ],
}


def test_seccomp_profile_conversion() -> None:
    out = seccomp_profile.convert(PROFILE, set(DEFAULT_CAPS), "x86_64")
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert out["defaultErrnoRet"] == 38
    assert [r["names"][0] for r in out["syscalls"]] == ["read", "arch_prctl", "chroot", "clone"]
    assert out["syscalls"][3]["args"] == [1]


def test_podmans_profile_when_installed() -> None:
    if seccomp_profile.load() is None:
        pytest.skip(f"{seccomp_profile.PODMAN_PROFILE} is not installed (containers-common)")
    out = seccomp_profile.default(set(DEFAULT_CAPS))
    assert out is not None and out["syscalls"]
    names = {n for r in out["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
    assert "read" in names and "bpf" not in names  # bpf needs CAP_SYS_ADMIN, which podman does not give
