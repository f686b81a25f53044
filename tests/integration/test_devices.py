"""/dev: the default devices, linux.devices, /dev/ptmx, the /dev/fd and std* links, /dev/shm."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import run_ok, sh, traversable, userns

# `stat` format: name, type, major:minor (hex), mode (octal), owner
STAT = "stat -c '%n|%F|%t:%T|%a|%u:%g'"

DEFAULT_DEVICES = {
    "/dev/null": (1, 3),
    "/dev/zero": (1, 5),
    "/dev/full": (1, 7),
    "/dev/random": (1, 8),
    "/dev/urandom": (1, 9),
    "/dev/tty": (5, 0),
}


def _stats(out: str) -> dict[str, tuple[str, tuple[int, int], str, str]]:
    result = {}
    for line in out.splitlines():
        if line.count("|") != 4:
            continue
        name, kind, numbers, mode, owner = line.split("|")
        major, minor = (int(v, 16) for v in numbers.split(":"))
        result[name] = (kind, (major, minor), mode, owner)
    return result


@pytest.fixture
def reachable(tmp_path: Path) -> Iterator[None]:
    with traversable(tmp_path):
        yield


def test_default_devices(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, f"{STAT} {' '.join(DEFAULT_DEVICES)}"))
    stats = _stats(out)
    for path, numbers in DEFAULT_DEVICES.items():
        assert stats[path] == ("character special file", numbers, "666", "0:0"), path


def test_default_devices_work(bundle: Any, runtime: Any) -> None:
    script = (
        "echo gone > /dev/null && echo null-ok;"
        " head -c 5 /dev/zero | od -An -tx1 | tr -d ' ';"
        " head -c 16 /dev/urandom | wc -c;"
        " echo x 2>&1 > /dev/full | grep -c 'No space left'"
    )
    assert run_ok(runtime, sh(bundle, script)).split() == ["null-ok", "0000000000", "16", "1"]


def test_only_the_expected_nodes_in_dev(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "ls /dev"))
    names = set(out.split())
    expected = {
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue",
        "fd", "stdin", "stdout", "stderr",
    }  # fmt: skip
    assert expected <= names
    # no host device (disks, the console, kmsg, mem) leaks into a fresh /dev
    assert not names & {"vda", "sda", "console", "kmsg", "mem", "kvm"}, names
    assert names - expected <= {"core"}, names


def test_linux_devices(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["devices"] = [
            {
                "type": "c",
                "path": "/dev/mynull",
                "major": 1,
                "minor": 3,
                "fileMode": 0o640,
                "uid": 1000,
                "gid": 5,
            },
            {
                "type": "b",
                "path": "/dev/myloop",
                "major": 7,
                "minor": 0,
                "fileMode": 0o600,
                "uid": 0,
                "gid": 0,
            },
            {"type": "c", "path": "/dev/deep/er/tty9", "major": 4, "minor": 9},
            {"type": "p", "path": "/dev/myfifo", "fileMode": 0o620},
        ]

    script = f"{STAT} /dev/mynull /dev/myloop /dev/deep/er/tty9 /dev/myfifo"
    out = run_ok(runtime, sh(bundle, script, edit=edit))
    stats = _stats(out)
    assert stats["/dev/mynull"] == ("character special file", (1, 3), "640", "1000:5")
    assert stats["/dev/myloop"] == ("block special file", (7, 0), "600", "0:0")
    kind, numbers, _, owner = stats["/dev/deep/er/tty9"]
    assert (kind, numbers, owner) == ("character special file", (4, 9), "0:0")
    assert stats["/dev/myfifo"][0] == "fifo"
    assert stats["/dev/myfifo"][2] == "620"


def test_linux_devices_mode_is_exact_despite_umask(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["devices"] = [
            {"type": "c", "path": "/dev/open", "major": 1, "minor": 5, "fileMode": 0o777}
        ]

    out = run_ok(runtime, sh(bundle, f"{STAT} /dev/open", edit=edit))
    assert _stats(out)["/dev/open"][2] == "777"


def _null_in(runtime: Any, bundle: Any, host_dir: Path, mode: int) -> tuple[str, tuple[int, int], str, str]:
    """The stat of a null device made, as root:root with `mode`, in `host_dir` bound at /dev/host."""

    def edit(spec: dict[str, Any]) -> None:
        spec["mounts"].append(
            {"destination": "/dev/host", "type": "bind", "source": str(host_dir), "options": ["rbind"]}
        )
        spec["linux"]["devices"] = [
            {"type": "c", "path": "/dev/host/null", "major": 1, "minor": 3, "fileMode": mode}
        ]

    return _stats(run_ok(runtime, sh(bundle, f"{STAT} /dev/host/null", edit=edit)))["/dev/host/null"]


@pytest.mark.usefixtures("reachable")
def test_linux_devices_mode_is_exact_under_a_default_acl(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    # In a directory with a default ACL the ACL, not the umask, filters a new node's mode: here to 0644.
    shared = tmp_path / "acl"
    shared.mkdir()
    undefined = 0xFFFFFFFF
    entries = [(0x01, 6), (0x04, 4), (0x20, 4)]  # user::rw- group::r-- other::r--
    acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, undefined) for tag, perm in entries)
    os.setxattr(shared, "system.posix_acl_default", acl)
    assert _null_in(runtime, bundle, shared, 0o666) == ("character special file", (1, 3), "666", "0:0")


@pytest.mark.usefixtures("reachable")
def test_linux_devices_owner_is_exact_in_a_set_group_id_directory(
    bundle: Any, runtime: Any, tmp_path: Path
) -> None:
    # A new node takes the group of a set-group-id directory: the one asked for (here root's) is set after.
    shared = tmp_path / "sgid"
    shared.mkdir()
    os.chown(shared, 0, 5)
    shared.chmod(0o2775)
    assert _null_in(runtime, bundle, shared, 0o660) == ("character special file", (1, 3), "660", "0:0")


def test_linux_devices_can_replace_a_default(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["devices"] = [
            {"type": "c", "path": "/dev/null", "major": 1, "minor": 3, "fileMode": 0o600}
        ]

    out = run_ok(runtime, sh(bundle, f"{STAT} /dev/null", edit=edit))
    assert _stats(out)["/dev/null"] == ("character special file", (1, 3), "600", "0:0")


@pytest.mark.usefixtures("reachable")
def test_devices_in_a_user_namespace_are_the_hosts(bundle: Any, runtime: Any) -> None:
    # mknod is not allowed in a user namespace: the host's nodes are bound instead, and work
    out = run_ok(
        runtime, sh(bundle, f"{STAT} /dev/null /dev/zero; echo x > /dev/null && echo ok", edit=userns)
    )
    stats = _stats(out)
    assert stats["/dev/null"][:2] == ("character special file", (1, 3))
    assert stats["/dev/zero"][:2] == ("character special file", (1, 5))
    assert out.splitlines()[-1] == "ok"


def test_ptmx_is_the_containers_devpts(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "readlink /dev/ptmx; stat -c '%t:%T' /dev/pts/ptmx"))
    link, numbers = out.split()
    assert link == "pts/ptmx"
    assert numbers == "5:2"


def test_a_pty_can_be_opened(bundle: Any, runtime: Any) -> None:
    # `script` is not in busybox; opening ptmx through the shell shows a new pty in the container's devpts
    out = run_ok(runtime, sh(bundle, "exec 3<>/dev/ptmx; ls /dev/pts"))
    assert out.split() == ["0", "ptmx"]


def test_fd_and_std_links(bundle: Any, runtime: Any) -> None:
    script = "for l in fd stdin stdout stderr; do echo $l $(readlink /dev/$l); done; echo via-stdout >> /dev/stdout"
    out = run_ok(runtime, sh(bundle, script))
    assert out.splitlines() == [
        "fd /proc/self/fd",
        "stdin /proc/self/fd/0",
        "stdout /proc/self/fd/1",
        "stderr /proc/self/fd/2",
        "via-stdout",
    ]


def test_dev_shm(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "stat -c %a /dev/shm; echo data > /dev/shm/f && cat /dev/shm/f"))
    assert out.split() == ["1777", "data"]


def test_host_dev_bound_in_is_left_alone(bundle: Any, runtime: Any) -> None:
    # /dev bound from the host (as a privileged container has it): nothing is created in it, or replaced
    def edit(spec: dict[str, Any]) -> None:
        spec["mounts"] = [m for m in spec["mounts"] if not m["destination"].startswith("/dev")]
        spec["mounts"].append({"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]})

    ptmx_before = Path("/dev/ptmx").lstat()
    out = run_ok(runtime, sh(bundle, "stat -c %F /dev/ptmx; test -e /dev/tty9 && echo host-dev", edit=edit))
    assert out.splitlines() == ["character special file", "host-dev"]
    after = Path("/dev/ptmx").lstat()
    assert (after.st_ino, after.st_mode) == (ptmx_before.st_ino, ptmx_before.st_mode)
