"""The root filesystem and what is set up in it: maskedPaths, readonlyPaths, linux.sysctl, hostname and
domainname, root.readonly, linux.rootfsPropagation, --no-pivot and --no-new-keyring."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import RW_ROOT, remove_namespace, run_ok, sh

SYS_ADMIN = {k: ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"] for k in ("bounding", "effective", "permitted")}


def _root_mountinfo(out: str) -> list[str]:
    """The optional fields (shared:N, master:N, ...) of the `/` line of a mountinfo text."""
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[4] == "/":
            return fields[6 : fields.index("-")]
    raise AssertionError(f"no / in\n{out}")


# --- maskedPaths ---


def test_default_masked_paths(bundle: Any, runtime: Any) -> None:
    # the masked files the host has (which depends on its kernel) read empty; masked directories are empty
    files = [
        p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug") if os.path.exists(p)
    ]
    dirs = [p for p in ("/proc/acpi", "/proc/scsi", "/sys/firmware") if os.path.isdir(p)]
    assert files and dirs
    script = "; ".join([*(f"wc -c < {p}" for p in files), *(f"ls -A {p} | wc -l" for p in dirs)])
    assert run_ok(runtime, sh(bundle, script)).split() == ["0"] * (len(files) + len(dirs))
    # the host's have content, so the container saw a mask, not the real files
    assert Path("/proc/timer_list").read_bytes()
    assert any(Path("/sys/firmware").iterdir())


def test_masked_file_and_directory(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["maskedPaths"] = ["/etc/secret", "/secrets", "/does/not/exist"]

    script = (
        "wc -c < /etc/secret; ls -A /secrets | wc -l;"
        " touch /secrets/new 2>&1 | grep -c 'Read-only';"
        " grep -E ' /(etc/secret|secrets) ' /proc/self/mountinfo"
    )
    b = sh(bundle, script, edit=edit)
    (b / "rootfs" / "etc" / "secret").write_text("password\n")
    (b / "rootfs" / "secrets").mkdir()
    (b / "rootfs" / "secrets" / "key").write_text("key\n")
    out = run_ok(runtime, b)
    lines = out.splitlines()
    assert lines[:3] == ["0", "0", "1"]
    assert len(lines) == 5  # both paths are mount points
    assert "tmpfs" in next(line for line in lines[3:] if " /secrets " in line)


def test_masked_paths_cannot_be_unmasked_without_sys_admin(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "umount /proc/timer_list 2>&1; wc -c < /proc/timer_list"))
    assert out.split()[-1] == "0"


# --- readonlyPaths ---


def test_default_readonly_paths(bundle: Any, runtime: Any) -> None:
    # even root with CAP_SYS_ADMIN cannot write through a read-only mount
    expected = {
        p
        for p in ("/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq")
        if os.path.exists(p)
    }
    script = (
        "{ echo 1 > /proc/sys/kernel/ns_last_pid; } 2>&1 | grep -c 'Read-only';"
        " { echo 1 > /proc/sys/net/ipv4/ip_forward; } 2>&1 | grep -c 'Read-only';"
        " grep -E ' /proc/(sys|sysrq-trigger|bus|fs|irq) ' /proc/self/mountinfo | awk '{print $5, $6}'"
    )
    out = run_ok(runtime, sh(bundle, script, capabilities=SYS_ADMIN))
    lines = out.splitlines()
    assert lines[:2] == ["1", "1"]
    opts = dict(line.split() for line in lines[2:])
    assert set(opts) == expected
    assert all("ro" in v.split(",") for v in opts.values()), opts


def test_readonly_path_in_a_writable_root(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["readonlyPaths"] = ["/data", "/etc/conf", "/nope"]

    script = (
        "touch /data/x 2>&1 | grep -c 'Read-only'; { echo y >> /etc/conf; } 2>&1 | grep -c 'Read-only';"
        " touch /elsewhere && echo writable; cat /data/f"
    )
    b = sh(bundle, script, root=RW_ROOT, edit=edit)
    (b / "rootfs" / "data").mkdir()
    (b / "rootfs" / "data" / "f").write_text("kept\n")
    (b / "rootfs" / "etc" / "conf").write_text("conf\n")
    assert run_ok(runtime, b).split() == ["1", "1", "writable", "kept"]
    assert (b / "rootfs" / "etc" / "conf").read_text() == "conf\n"


def test_readonly_path_is_recursive(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["mounts"].append({"destination": "/data/sub", "type": "tmpfs", "source": "tmpfs"})
        spec["linux"]["readonlyPaths"] = ["/data"]

    out = run_ok(runtime, sh(bundle, "touch /data/sub/x 2>&1 | grep -c 'Read-only'", root=RW_ROOT, edit=edit))
    assert out.split() == ["1"]


# --- linux.sysctl ---


def test_sysctl_in_the_network_namespace(bundle: Any, runtime: Any) -> None:
    host = Path("/proc/sys/net/ipv4/ip_forward").read_text()

    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "net.ipv4.ip_default_ttl": "42"}

    out = run_ok(
        runtime, sh(bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ip_default_ttl", edit=edit)
    )
    assert out.split() == ["1", "42"]
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host


def test_sysctl_in_the_ipc_namespace(bundle: Any, runtime: Any) -> None:
    host = Path("/proc/sys/kernel/msgmax").read_text()
    wanted = "4321" if host.strip() != "4321" else "4322"

    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["sysctl"] = {"kernel.msgmax": wanted, "fs.mqueue.msg_max": "17"}

    out = run_ok(runtime, sh(bundle, "cat /proc/sys/kernel/msgmax /proc/sys/fs/mqueue/msg_max", edit=edit))
    assert out.split() == [wanted, "17"]
    assert Path("/proc/sys/kernel/msgmax").read_text() == host


def test_sysctl_with_a_slash_separator(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["sysctl"] = {"net/ipv4/ip_default_ttl": "33"}

    out = run_ok(runtime, sh(bundle, "cat /proc/sys/net/ipv4/ip_default_ttl", edit=edit))
    assert out.split() == ["33"]


@pytest.mark.parametrize(
    ("key", "drop_namespace"),
    [
        ("kernel.pid_max", None),  # not namespaced at all
        ("vm.swappiness", None),
        ("net.ipv4.ip_default_ttl", "network"),  # namespaced, but the container shares the host's
        ("kernel.msgmax", "ipc"),
    ],
)
def test_sysctl_that_would_change_the_host_is_refused(
    bundle: Any, runtime: Any, key: str, drop_namespace: str | None
) -> None:
    path = Path("/proc/sys", *key.split("."))
    host = path.read_text()
    value = str(int(host.split()[0]) - 1)

    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["sysctl"] = {key: value}
        if drop_namespace:
            remove_namespace(spec, drop_namespace)
            if drop_namespace == "network":
                for mnt in spec["mounts"]:
                    if mnt["destination"] == "/sys":
                        mnt.update(type="bind", source="/sys", options=["rbind", "ro"])

    try:
        result = runtime.run("run", "--bundle", bundle(["true"], edit=edit), "c1", check=False)
        assert result.returncode != 0
        assert key in result.stderr
    finally:
        now = path.read_text()
        if now != host:
            path.write_text(host)
    assert now == host, f"the host's {key} was changed"


def test_sysctl_unknown_key_fails(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["sysctl"] = {"net.ipv4.no_such_knob": "1"}

    result = runtime.run("run", "--bundle", bundle(["true"], edit=edit), "c1", check=False)
    assert result.returncode != 0
    assert "net.ipv4.no_such_knob" in result.stderr


def test_sysctl_path_escape_is_refused(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["sysctl"] = {"net.ipv4.../../../../tmp/x": "1"}

    result = runtime.run("run", "--bundle", bundle(["true"], edit=edit), "c1", check=False)
    assert result.returncode != 0


# --- hostname and domainname ---


def test_hostname_and_domainname(bundle: Any, runtime: Any) -> None:
    host_domain = Path("/proc/sys/kernel/domainname").read_text()
    b = sh(
        bundle,
        "hostname; uname -n; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname",
        hostname="box.example",
        domainname="corp.example",
    )
    assert run_ok(runtime, b).split() == ["box.example"] * 3 + ["corp.example"]
    assert Path("/proc/sys/kernel/domainname").read_text() == host_domain


def test_hostname_needs_a_uts_namespace(bundle: Any, runtime: Any) -> None:
    host = os.uname().nodename

    def edit(spec: dict[str, Any]) -> None:
        remove_namespace(spec, "uts")

    result = runtime.run("run", "--bundle", bundle(["true"], hostname="evil", edit=edit), "c1", check=False)
    assert result.returncode != 0
    assert "hostname" in result.stderr
    assert os.uname().nodename == host


def test_no_hostname_keeps_the_new_namespace_copy(bundle: Any, runtime: Any) -> None:
    b = sh(bundle, "hostname", hostname="")
    assert run_ok(runtime, b).strip() == os.uname().nodename


# --- root.readonly ---


def test_readonly_root(bundle: Any, runtime: Any) -> None:
    script = (
        "touch /newfile 2>&1 | grep -c 'Read-only'; awk '$5 == \"/\" {print $6}' /proc/self/mountinfo;"
        " echo ok > /dev/shm/f && cat /dev/shm/f"
    )
    b = sh(bundle, script, root={"path": "rootfs", "readonly": True})
    out = run_ok(runtime, b).split()
    assert out[0] == "1"
    assert "ro" in out[1].split(",")
    assert out[2] == "ok"  # the mounts on top stay writable
    assert not (b / "rootfs" / "newfile").exists()


def test_readonly_root_even_for_sys_admin(bundle: Any, runtime: Any) -> None:
    b = sh(bundle, "touch /newfile 2>&1 | grep -c 'Read-only'", capabilities=SYS_ADMIN)
    assert run_ok(runtime, b).split() == ["1"]


def test_writable_root(bundle: Any, runtime: Any) -> None:
    b = sh(bundle, "echo hi > /newfile && awk '$5 == \"/\" {print $6}' /proc/self/mountinfo", root=RW_ROOT)
    assert "rw" in run_ok(runtime, b).strip().split(",")
    assert (b / "rootfs" / "newfile").read_text() == "hi\n"


def test_absolute_root_path(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    b = bundle(["cat", "/marker"])
    elsewhere = tmp_path / "elsewhere-rootfs"
    (b / "rootfs").rename(elsewhere)
    (elsewhere / "marker").write_text("absolute\n")
    config = json.loads((b / "config.json").read_text())
    config["root"]["path"] = str(elsewhere)
    (b / "config.json").write_text(json.dumps(config))
    assert run_ok(runtime, b) == "absolute\n"


# --- linux.rootfsPropagation ---


@pytest.mark.parametrize(
    ("propagation", "expected"),
    [("shared", "shared:"), ("rshared", "shared:"), ("private", None), ("rprivate", None), ("slave", None)],
)
def test_rootfs_propagation(bundle: Any, runtime: Any, propagation: str, expected: str | None) -> None:
    # The rootfs is a fresh bind in the container's namespace with no master (its parent mount is made
    # private for pivot_root), so a slave root is in effect private; a shared one gets a peer group.
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["rootfsPropagation"] = propagation

    fields = _root_mountinfo(run_ok(runtime, sh(bundle, "cat /proc/self/mountinfo", edit=edit)))
    if expected is None:
        assert fields == [], fields
    else:
        assert any(f.startswith(expected) for f in fields), fields


@pytest.mark.parametrize("propagation", [None, "rprivate", "private", "slave"])
def test_a_rootfs_on_a_shared_mount(bundle: Any, runtime: Any, propagation: str | None) -> None:
    # pivot_root refuses a new root whose parent mount is shared: with a recursive slave or private root no
    # mount is shared any more, else that parent is made private first.
    def edit(spec: dict[str, Any]) -> None:
        if propagation:
            spec["linux"]["rootfsPropagation"] = propagation

    b = sh(bundle, "echo pivoted", edit=edit)
    subprocess.run(["mount", "--bind", str(b), str(b)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(b)], check=True)
        assert run_ok(runtime, b) == "pivoted\n"
    finally:
        subprocess.run(["umount", str(b)], check=True)


def test_rootfs_propagation_shared_reaches_mounts_made_later(bundle: Any, runtime: Any) -> None:
    # with a shared root, a mount made inside (by exec) shows in the peer group: the container's init sees it
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["rootfsPropagation"] = "rshared"

    b = bundle(["sleep", "30"], edit=edit, capabilities=SYS_ADMIN, root=RW_ROOT)
    runtime.run("run", "--detach", "--bundle", b, "c1")
    runtime.run("exec", "c1", "sh", "-c", "mkdir -p /mnt/late && mount -t tmpfs late /mnt/late")
    out = runtime.run("exec", "c1", "sh", "-c", "grep -c ' /mnt/late ' /proc/1/mountinfo").stdout
    assert out.split() == ["1"]


def test_rootfs_propagation_unbindable(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["rootfsPropagation"] = "unbindable"

    assert "unbindable" in _root_mountinfo(run_ok(runtime, sh(bundle, "cat /proc/self/mountinfo", edit=edit)))


# --- --no-pivot ---


def test_no_pivot_runs_the_container_in_its_rootfs(bundle: Any, runtime: Any) -> None:
    b = sh(bundle, "cat /marker; ls /; awk '$5 == \"/\" {print $4}' /proc/self/mountinfo")
    (b / "rootfs" / "marker").write_text("in the rootfs\n")
    lines = runtime.run("run", "--no-pivot", "--bundle", b, "c1").stdout.splitlines()
    assert lines[0] == "in the rootfs"
    assert "marker" in lines[1:-1]
    assert lines[-1] == str(b / "rootfs")  # `/` is the bind of the rootfs, moved over the old root


def test_no_pivot_container_sees_its_own_mounts_only(bundle: Any, runtime: Any) -> None:
    out = runtime.run("run", "--no-pivot", "--bundle", sh(bundle, "cat /proc/self/mountinfo"), "c1").stdout
    assert " - devtmpfs " not in out  # the host's /dev is not reachable
    assert " /proc " in out


# --- --no-new-keyring ---


def _keyring_bundle(bundle: Any) -> Path:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["maskedPaths"].remove("/proc/keys")

    b: Path = sh(bundle, "cat /proc/keys", edit=edit)
    return b


def test_new_session_keyring_named_after_the_container(bundle: Any, runtime: Any) -> None:
    out = runtime.run("run", "--bundle", _keyring_bundle(bundle), "keyring-box").stdout
    keyrings = [line for line in out.splitlines() if " keyring " in line]
    assert any(line.endswith("keyring-box: empty") for line in keyrings), out


def test_no_new_keyring_keeps_the_callers(bundle: Any, runtime: Any) -> None:
    # An id of its own: the keyring of the test above lingers in /proc/keys until the kernel's key GC runs.
    out = runtime.run("run", "--no-new-keyring", "--bundle", _keyring_bundle(bundle), "keyring-kept").stdout
    assert " keyring " in out and "keyring-kept" not in out
