"""mounts[]: bind and rbind, propagation, per-mount flags and recursive attributes, tmpfs, the pseudo
filesystems, idmapped mounts, and destinations that are symlinks out of the rootfs.

Effects are read from the container's /proc/self/mountinfo and by using the mounts (writing, executing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import RW_ROOT, mountinfo_lines, run_ok, sh, traversable, userns

ALL_CAPS_SYS_ADMIN = {k: ["CAP_SYS_ADMIN"] for k in ("bounding", "effective", "permitted")}


def _mountinfo(out: str, target: str) -> tuple[set[str], str, set[str]]:
    """(per-mount options, fs type, super options) of the last mount on `target` in a mountinfo text."""
    found = None
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[4] == target:
            found = fields
    assert found is not None, f"{target} is not a mount point in:\n{out}"
    sep = found.index("-")
    return set(found[5].split(",")), found[sep + 1], set(found[sep + 3].split(","))


def _with_mounts(*mounts: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def edit(spec: dict[str, Any]) -> None:
        spec["mounts"].extend(mounts)

    return edit


@pytest.fixture
def host_mount(runtime: Any) -> Iterator[Callable[..., None]]:
    """mount(*args): `mount *args` on the host; everything is unmounted after the test (before the runtime
    fixture checks that nothing is left)."""
    made: list[str] = []

    def mount(*args: str) -> None:
        subprocess.run(["mount", *args], check=True)
        made.append(args[-1])

    yield mount
    for target in reversed(made):
        subprocess.run(["umount", "--lazy", target], check=False)


@pytest.fixture
def reachable(tmp_path: Path) -> Iterator[None]:
    """The bundles of this test can be reached by a user namespace's root."""
    with traversable(tmp_path):
        yield


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A host directory with a file, to bind into containers."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello").write_text("from the host\n")
    (src / "sub").mkdir()
    return src


@pytest.fixture
def source_with_submount(source: Path, host_mount: Callable[..., None]) -> Path:
    """`source`, with a tmpfs mounted on source/sub holding a file."""
    host_mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(source / "sub"))
    (source / "sub" / "inner").write_text("in the submount\n")
    return source


# --- bind and rbind ---


def test_bind_mount_a_directory(bundle: Any, runtime: Any, source: Path) -> None:
    b = sh(
        bundle,
        "cat /mnt/src/hello; cat /proc/self/mountinfo",
        edit=_with_mounts(
            {"destination": "/mnt/src", "type": "bind", "source": str(source), "options": ["bind"]}
        ),
    )
    out = run_ok(runtime, b)
    assert out.startswith("from the host\n")
    opts, _, _ = _mountinfo(out, "/mnt/src")
    assert "rw" in opts


def test_bind_mount_a_file_creates_the_destination(bundle: Any, runtime: Any, source: Path) -> None:
    b = sh(
        bundle,
        "cat /etc/new/hello.txt",
        edit=_with_mounts(
            {"destination": "/etc/new/hello.txt", "source": str(source / "hello"), "options": ["bind"]}
        ),
    )
    assert run_ok(runtime, b) == "from the host\n"
    assert not (b / "rootfs" / "etc" / "new" / "hello.txt").read_text()  # the mount point: an empty file


def test_bind_source_relative_to_the_bundle(bundle: Any, runtime: Any) -> None:
    b = sh(
        bundle,
        "cat /mnt/data/f",
        edit=_with_mounts(
            {"destination": "/mnt/data", "type": "bind", "source": "data", "options": ["rbind"]}
        ),
    )
    (b / "data").mkdir()
    (b / "data" / "f").write_text("bundle data\n")
    assert run_ok(runtime, b) == "bundle data\n"


def test_bind_is_not_recursive_but_rbind_is(bundle: Any, runtime: Any, source_with_submount: Path) -> None:
    b = sh(
        bundle,
        "ls /mnt/bind/sub; echo --; ls /mnt/rbind/sub",
        edit=_with_mounts(
            {
                "destination": "/mnt/bind",
                "type": "bind",
                "source": str(source_with_submount),
                "options": ["bind"],
            },
            {
                "destination": "/mnt/rbind",
                "type": "bind",
                "source": str(source_with_submount),
                "options": ["rbind"],
            },
        ),
    )
    bind, rbind = run_ok(runtime, b).split("--")
    assert bind.split() == []
    assert rbind.split() == ["inner"]


def test_bind_changes_are_seen_by_the_host(bundle: Any, runtime: Any, source: Path) -> None:
    b = sh(
        bundle,
        "echo written inside > /mnt/src/new",
        edit=_with_mounts(
            {"destination": "/mnt/src", "type": "bind", "source": str(source), "options": ["rbind"]}
        ),
    )
    run_ok(runtime, b)
    assert (source / "new").read_text() == "written inside\n"


# --- per-mount flags ---


def test_bind_read_only(bundle: Any, runtime: Any, source: Path) -> None:
    b = sh(
        bundle,
        "touch /mnt/src/x 2>&1; echo rc=$?; grep ' /mnt/src ' /proc/self/mountinfo",
        edit=_with_mounts(
            {"destination": "/mnt/src", "type": "bind", "source": str(source), "options": ["rbind", "ro"]}
        ),
    )
    out = run_ok(runtime, b)
    assert "Read-only file system" in out
    assert "rc=1" in out
    opts, _, _ = _mountinfo(out, "/mnt/src")
    assert "ro" in opts
    assert not (source / "x").exists()


@pytest.mark.parametrize("fstype", ["bind", "tmpfs"])
def test_nosuid_nodev_noexec(bundle: Any, runtime: Any, source: Path, fstype: str) -> None:
    mount: dict[str, Any] = {"destination": "/mnt/x", "options": ["nosuid", "nodev", "noexec"]}
    if fstype == "bind":
        mount.update(type="bind", source=str(source), options=["rbind", *mount["options"]])
    else:
        mount.update(type="tmpfs", source="tmpfs")
    b = sh(
        bundle,
        "cp /bin/busybox /mnt/x/true 2>/dev/null; /mnt/x/true; echo rc=$?; cat /proc/self/mountinfo",
        edit=_with_mounts(mount),
    )
    if fstype == "bind":
        shutil.copy2("/bin/busybox", source / "true")
    out = run_ok(runtime, b)
    assert "rc=126" in out  # sh: Permission denied
    opts, _, _ = _mountinfo(out, "/mnt/x")
    assert {"nosuid", "nodev", "noexec"} <= opts


def test_exec_allowed_without_noexec(bundle: Any, runtime: Any) -> None:
    mount = {"destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
    out = run_ok(
        runtime, sh(bundle, "cp /bin/busybox /mnt/x/echo && /mnt/x/echo ran", edit=_with_mounts(mount))
    )
    assert out == "ran\n"


@pytest.mark.parametrize(
    ("option", "expected"),
    [("noatime", "noatime"), ("strictatime", None), ("relatime", "relatime"), ("nodiratime", "nodiratime")],
)
def test_atime_options(bundle: Any, runtime: Any, option: str, expected: str | None) -> None:
    mount = {"destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs", "options": [option]}
    out = run_ok(runtime, sh(bundle, "cat /proc/self/mountinfo", edit=_with_mounts(mount)))
    opts, _, _ = _mountinfo(out, "/mnt/x")
    if expected:
        assert expected in opts
    else:  # strictatime: neither relatime nor noatime
        assert not opts & {"relatime", "noatime"}


def test_ro_bind_keeps_submounts_writable_rro_does_not(
    bundle: Any, runtime: Any, source_with_submount: Path
) -> None:
    src = str(source_with_submount)
    b = sh(
        bundle,
        "touch /mnt/ro/sub/a && echo ro-sub-writable; touch /mnt/rro/sub/b || echo rro-sub-readonly;"
        " touch /mnt/rro/c || echo rro-top-readonly; cat /proc/self/mountinfo",
        edit=_with_mounts(
            {"destination": "/mnt/ro", "type": "bind", "source": src, "options": ["rbind", "ro"]},
            {"destination": "/mnt/rro", "type": "bind", "source": src, "options": ["rbind", "rro"]},
        ),
    )
    out = run_ok(runtime, b)
    assert "ro-sub-writable" in out
    assert "rro-sub-readonly" in out
    assert "rro-top-readonly" in out
    assert "ro" in _mountinfo(out, "/mnt/ro")[0]
    assert "rw" in _mountinfo(out, "/mnt/ro/sub")[0]
    assert "ro" in _mountinfo(out, "/mnt/rro/sub")[0]
    assert (source_with_submount / "sub" / "a").exists()
    assert not (source_with_submount / "sub" / "b").exists()


def test_recursive_nosuid_nodev_noexec(bundle: Any, runtime: Any, source_with_submount: Path) -> None:
    b = sh(
        bundle,
        "cat /proc/self/mountinfo",
        edit=_with_mounts(
            {
                "destination": "/mnt/r",
                "type": "bind",
                "source": str(source_with_submount),
                "options": ["rbind", "rnosuid", "rnodev", "rnoexec"],
            },
            {
                "destination": "/mnt/plain",
                "type": "bind",
                "source": str(source_with_submount),
                "options": ["rbind", "nosuid"],
            },
        ),
    )
    out = run_ok(runtime, b)
    assert {"nosuid", "nodev", "noexec"} <= _mountinfo(out, "/mnt/r")[0]
    assert {"nosuid", "nodev", "noexec"} <= _mountinfo(out, "/mnt/r/sub")[0]
    assert "nosuid" in _mountinfo(out, "/mnt/plain")[0]
    assert "nosuid" not in _mountinfo(out, "/mnt/plain/sub")[0]


def test_rrw_undoes_a_read_only_submount(bundle: Any, runtime: Any, source: Path, host_mount: Any) -> None:
    host_mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(source / "sub"))
    subprocess.run(["mount", "-o", "remount,bind,ro", str(source / "sub")], check=True)
    b = sh(
        bundle,
        "touch /mnt/r/sub/x && echo writable",
        edit=_with_mounts(
            {"destination": "/mnt/r", "type": "bind", "source": str(source), "options": ["rbind", "rrw"]}
        ),
    )
    # the host's mount stays read-only: only the container's copy is rw
    assert run_ok(runtime, b) == "writable\n"
    assert "ro" in mountinfo_lines(str(source / "sub"))[-1].split()[5].split(",")


# --- tmpfs and the pseudo filesystems ---


def test_tmpfs_size_and_mode(bundle: Any, runtime: Any) -> None:
    mount = {
        "destination": "/scratch",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["size=2m", "mode=1730"],
    }
    out = run_ok(
        runtime, sh(bundle, "stat -c %a /scratch; cat /proc/self/mountinfo", edit=_with_mounts(mount))
    )
    assert out.splitlines()[0] == "1730"
    _, fstype, super_opts = _mountinfo(out, "/scratch")
    assert fstype == "tmpfs"
    assert "size=2048k" in super_opts


def test_tmpfs_size_is_enforced(bundle: Any, runtime: Any) -> None:
    mount = {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}
    b = sh(
        bundle, "dd if=/dev/zero of=/scratch/big bs=1k count=256 2>&1; echo rc=$?", edit=_with_mounts(mount)
    )
    out = run_ok(runtime, b)
    assert "No space left on device" in out


def test_default_pseudo_filesystems(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "cat /proc/self/mountinfo"))
    assert _mountinfo(out, "/proc")[1] == "proc"
    dev_opts, dev_type, dev_super = _mountinfo(out, "/dev")
    assert dev_type == "tmpfs" and "nosuid" in dev_opts and "mode=755" in dev_super
    pts_opts, pts_type, pts_super = _mountinfo(out, "/dev/pts")
    assert pts_type == "devpts"
    assert {"nosuid", "noexec"} <= pts_opts
    assert {"gid=5", "mode=620", "ptmxmode=666"} <= pts_super
    shm_opts, shm_type, _ = _mountinfo(out, "/dev/shm")
    assert shm_type == "tmpfs" and {"nosuid", "nodev", "noexec"} <= shm_opts
    assert _mountinfo(out, "/dev/mqueue")[1] == "mqueue"
    sys_opts, sys_type, _ = _mountinfo(out, "/sys")
    assert sys_type == "sysfs" and "ro" in sys_opts


def test_devpts_is_a_new_instance(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "ls /dev/pts"))
    # the host has ptys open (at least this test's terminal, often); the container's instance has none
    assert out.split() == ["ptmx"]


def test_mqueue_belongs_to_the_containers_ipc_namespace(bundle: Any, runtime: Any) -> None:
    script = "grep ' /dev/mqueue ' /proc/self/mountinfo"
    runtime.run("run", "--detach", "--bundle", bundle(["sleep", "60"]), "first")
    first = runtime.run("exec", "first", "sh", "-c", script).stdout
    second = run_ok(runtime, sh(bundle, script), "second")
    # each ipc namespace has its own mqueue filesystem: another device number
    assert first.split()[2] != second.split()[2], (first, second)


def test_cgroup_mount(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "cat /proc/self/mountinfo; echo; ls /sys/fs/cgroup"))
    listed = out.rsplit("\n\n", 1)[1].split()
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        opts, fstype, _ = _mountinfo(out, "/sys/fs/cgroup")
        assert fstype == "cgroup2" and "ro" in opts
        return
    # hybrid or v1 host: one read-only hierarchy per host hierarchy, under a tmpfs
    host = sorted(p.name for p in Path("/sys/fs/cgroup").iterdir() if p.is_dir() and os.path.ismount(p))
    assert host
    for name in host:
        assert name in listed
        opts, fstype, _ = _mountinfo(out, f"/sys/fs/cgroup/{name}")
        assert fstype in ("cgroup", "cgroup2")
        assert {"ro", "nosuid", "nodev", "noexec"} <= opts, name
    opts, fstype, _ = _mountinfo(out, "/sys/fs/cgroup")
    assert fstype == "tmpfs" and {"ro", "nosuid", "nodev", "noexec"} <= opts


def test_proc_and_sysfs_mounted_where_asked(bundle: Any, runtime: Any) -> None:
    b = sh(
        bundle,
        "cat /proc/self/mountinfo",
        edit=_with_mounts(
            {"destination": "/mnt/proc2", "type": "proc", "source": "proc"},
            {"destination": "/mnt/sys2", "type": "sysfs", "source": "sysfs", "options": ["ro", "nosuid"]},
        ),
    )
    out = run_ok(runtime, b)
    assert _mountinfo(out, "/mnt/proc2")[1] == "proc"
    opts, fstype, _ = _mountinfo(out, "/mnt/sys2")
    assert fstype == "sysfs" and {"ro", "nosuid"} <= opts


def test_proc_on_a_file_is_refused(bundle: Any, runtime: Any) -> None:
    b = bundle(["true"], edit=_with_mounts({"destination": "/etc/passwd", "type": "proc", "source": "proc"}))
    result = runtime.run("run", "--bundle", b, "c1", check=False)
    assert result.returncode != 0
    assert "/etc/passwd" in result.stderr


# --- propagation ---


@pytest.fixture
def shared_source(source: Path, host_mount: Callable[..., None]) -> Path:
    """`source` as a shared mount point of its own, so that mounts under it propagate."""
    host_mount("--bind", str(source), str(source))
    subprocess.run(["mount", "--make-shared", str(source)], check=True)
    (source / "late").mkdir()
    return source


def _start_sleeper(
    bundle: Any,
    runtime: Any,
    mount_options: list[str],
    src: Path,
    edit: Callable[[dict[str, Any]], None] | None = None,
    **fields: Any,
) -> None:
    add_mount = _with_mounts(
        {"destination": "/mnt/src", "type": "bind", "source": str(src), "options": mount_options}
    )

    def edits(spec: dict[str, Any]) -> None:
        add_mount(spec)
        if edit is not None:
            edit(spec)

    b = bundle(["sleep", "60"], edit=edits, **fields)
    runtime.run("run", "--detach", "--bundle", b, "c1")


@pytest.mark.parametrize(("propagation", "seen"), [("rslave", True), ("rshared", True), ("rprivate", False)])
def test_host_mount_after_start_propagates_into_slave_or_shared_bind(
    bundle: Any,
    runtime: Any,
    shared_source: Path,
    host_mount: Callable[..., None],
    propagation: str,
    seen: bool,
) -> None:
    _start_sleeper(bundle, runtime, ["rbind", propagation], shared_source)
    host_mount("-t", "tmpfs", "tmpfs", str(shared_source / "late"))
    (shared_source / "late" / "file").write_text("late mount\n")
    out = runtime.run(
        "exec",
        "c1",
        "sh",
        "-c",
        "cat /mnt/src/late/file 2>&1; grep -c ' /mnt/src/late ' /proc/self/mountinfo; true",
    )
    if seen:
        assert out.stdout.splitlines() == ["late mount", "1"]
    else:
        assert out.stdout.splitlines()[-1] == "0"
        assert "late mount" not in out.stdout


def test_mount_inside_a_shared_bind_reaches_the_host(
    bundle: Any, runtime: Any, shared_source: Path, host_mount: Callable[..., None]
) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["rootfsPropagation"] = "rshared"

    _start_sleeper(
        bundle, runtime, ["rbind", "rshared"], shared_source, edit=edit, capabilities=ALL_CAPS_SYS_ADMIN
    )
    target = shared_source / "late"
    try:
        runtime.run("exec", "c1", "mount", "-t", "tmpfs", "-o", "size=1m", "inside", "/mnt/src/late")
        lines = mountinfo_lines(f" {target} ")
        assert lines and " inside " in lines[-1], lines
    finally:
        while mountinfo_lines(f" {target} "):
            subprocess.run(["umount", "--lazy", str(target)], check=False)


def test_mount_inside_a_slave_bind_stays_inside(bundle: Any, runtime: Any, shared_source: Path) -> None:
    _start_sleeper(bundle, runtime, ["rbind", "rslave"], shared_source, capabilities=ALL_CAPS_SYS_ADMIN)
    target = shared_source / "late"
    try:
        inside = runtime.run(
            "exec",
            "c1",
            "sh",
            "-c",
            "mount -t tmpfs inside /mnt/src/late && grep -c ' /mnt/src/late ' /proc/self/mountinfo",
        )
        assert inside.stdout.strip() == "1"
        assert not mountinfo_lines(f" {target} ")
    finally:
        while mountinfo_lines(f" {target} "):
            subprocess.run(["umount", "--lazy", str(target)], check=False)


def test_container_mounts_never_reach_the_host_by_default(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    b = bundle(
        ["sleep", "60"], edit=_with_mounts({"destination": "/mnt/t", "type": "tmpfs", "source": "marker-fs"})
    )
    runtime.run("run", "--detach", "--bundle", b, "c1")
    assert "marker-fs" in runtime.run("exec", "c1", "cat", "/proc/self/mountinfo").stdout
    # not one of the container's mounts (the rootfs, /proc, the tmpfs...) shows in the host's namespace
    assert not mountinfo_lines(str(tmp_path))
    assert not mountinfo_lines(" marker-fs ")


# --- idmapped mounts ---


def _idmapped(source: Path, uid: tuple[int, int, int], gid: tuple[int, int, int]) -> dict[str, Any]:
    """A bind of `source` on /mnt/id; each map is (containerID, hostID, size), as runc reads them: a file owned
    by containerID on disk shows as hostID through the mount (runc's tests/integration/idmap.bats)."""
    return {
        "destination": "/mnt/id",
        "type": "bind",
        "source": str(source),
        "options": ["rbind"],
        "uidMappings": [{"containerID": uid[0], "hostID": uid[1], "size": uid[2]}],
        "gidMappings": [{"containerID": gid[0], "hostID": gid[1], "size": gid[2]}],
    }


def test_idmapped_mount_shows_a_host_uid_as_root(bundle: Any, runtime: Any, source: Path) -> None:
    owned = source / "owned"
    owned.write_text("x")
    os.chown(owned, 1000, 1001)
    os.chown(source, 1000, 1001)  # root inside owns the directory, so it may create files in it
    b = sh(
        bundle,
        "stat -c %u:%g /mnt/id/owned /mnt/id/hello; touch /mnt/id/made && stat -c %u:%g /mnt/id/made",
        edit=_with_mounts(_idmapped(source, (1000, 0, 1), (1001, 0, 1))),
    )
    out = run_ok(runtime, b)
    # owned by 1000:1001 on disk, root inside; root-owned on disk is unmapped (the overflow id)
    assert out.split() == ["0:0", "65534:65534", "0:0"]
    made = (source / "made").stat()
    assert (made.st_uid, made.st_gid) == (1000, 1001)  # root inside writes as 1000:1001 on the disk
    assert owned.stat().st_uid == 1000  # nothing was chowned


def test_idmapped_mount_range(bundle: Any, runtime: Any, source: Path) -> None:
    os.chown(source / "hello", 5, 6)
    b = sh(
        bundle,
        "stat -c %u:%g /mnt/id/hello",
        edit=_with_mounts(_idmapped(source, (0, 100000, 65536), (0, 200000, 65536))),
    )
    assert run_ok(runtime, b).split() == ["100005:200006"]


@pytest.mark.usefixtures("reachable")
def test_idmapped_mount_in_a_user_namespace(bundle: Any, runtime: Any, source: Path) -> None:
    os.chown(source / "hello", 1000, 1000)

    def edit(spec: dict[str, Any]) -> None:
        userns(spec)
        spec["mounts"].append(_idmapped(source, (1000, 100000, 1), (1000, 100000, 1)))
        spec["mounts"].append(
            {"destination": "/mnt/plain", "type": "bind", "source": str(source), "options": ["rbind"]}
        )

    b = sh(bundle, "stat -c %u:%g /mnt/id/hello /mnt/plain/hello", edit=edit)
    # the rootfs belongs to the host's root, whom the container cannot act for: make the mount points now
    (b / "rootfs" / "mnt" / "id").mkdir(parents=True)
    (b / "rootfs" / "mnt" / "plain").mkdir()
    out = run_ok(runtime, b)
    # container root is host 100000: through the idmapped mount the file is root's; through a plain bind, no one's
    assert out.split() == ["0:0", "65534:65534"]


def test_idmapped_mount_shows_in_mountinfo(bundle: Any, runtime: Any, source: Path) -> None:
    mount = {
        "destination": "/mnt/id",
        "type": "bind",
        "source": str(source),
        "options": ["rbind"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
    }
    out = run_ok(runtime, sh(bundle, "cat /proc/self/mountinfo", edit=_with_mounts(mount)))
    assert "idmapped" in _mountinfo(out, "/mnt/id")[0]


# --- destinations that are symlinks ---


@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_symlink_destination_is_resolved_inside_the_rootfs(
    bundle: Any, runtime: Any, tmp_path: Path, style: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("host file\n")
    b = sh(
        bundle,
        "cat /proc/self/mountinfo",
        root=RW_ROOT,
        edit=_with_mounts(
            {"destination": "/evil/mnt", "type": "tmpfs", "source": "tmpfs"},
            {
                "destination": "/evilfile",
                "type": "bind",
                "source": str(tmp_path / "outside" / "keep"),
                "options": ["bind"],
            },
        ),
    )
    rootfs = b / "rootfs"
    depth = len(rootfs.resolve().parts)
    if style == "absolute":
        (rootfs / "evil").symlink_to(outside)
        (rootfs / "evilfile").symlink_to(outside / "target-file")
    else:
        (rootfs / "evil").symlink_to("../" * (depth + 2) + str(outside).lstrip("/"))
        (rootfs / "evilfile").symlink_to("../" * (depth + 2) + str(outside / "target-file").lstrip("/"))
    out = run_ok(runtime, b)

    # the mounts landed at the link targets as seen from inside the rootfs ...
    assert _mountinfo(out, f"{outside}/mnt")[1] == "tmpfs"
    assert f"{outside}/target-file" in out
    assert (rootfs / str(outside).lstrip("/") / "mnt").is_dir()
    # ... and nothing changed on the host
    assert sorted(p.name for p in outside.iterdir()) == ["keep"]
    assert not mountinfo_lines(str(outside))


def test_symlink_loop_destination_fails_cleanly(bundle: Any, runtime: Any) -> None:
    b = bundle(
        ["true"],
        root=RW_ROOT,
        edit=_with_mounts({"destination": "/loop/x", "type": "tmpfs", "source": "tmpfs"}),
    )
    (b / "rootfs" / "loop").symlink_to("loop")
    result = runtime.run("run", "--bundle", b, "c1", check=False)
    assert result.returncode != 0
    assert "/loop/x" in result.stderr
    assert not (runtime.root / "c1").exists()


def test_a_container_without_a_mount_namespace_is_refused(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "mount"]

    result = runtime.run("run", "--bundle", bundle(["true"], edit=edit), "c1", check=False)
    assert result.returncode != 0
    assert "mount" in result.stderr
