"""Escapes that OCI runtimes have suffered, tried against hutch-runtime: each must fail.

Each test replays a published advisory of runc, crun, youki (or a peer) and is named for it:
test_cve_YYYY_NNNNN_<what>. Where hutch defends an advisory by the same code as another one, the test of
that other advisory stands for both:

- CVE-2022-27650 (crun), CVE-2022-24769 (moby): inheritable capabilities on `run`: test_cve_2022_29162_*.
- CVE-2023-27561, CVE-2023-28642 (runc): a symlinked /proc: test_cve_2019_16884_* and
  test_cve_2019_19921_proc_symlink_into_a_raced_volume_is_refused (refused outright, and race-free).

Advisories that do not apply:

- CVE-2021-43784 (runc): an overflow in the length of a netlink bytemsg carrying the config to runc's C init.
  hutch's stages share the parsed config by fork() and talk over pipes in a line protocol; no length field.
- CVE-2025-24965 (crun): the krun handler wrote .krun_config.json through a symlink in the image. hutch has
  no krun/libkrun handler, and creates files in a rootfs only through inroot.py (see CVE-2019-18837 below).
- CVE-2022-23648 (containerd): the CRI plugin copied up an image's VOLUME paths with `..` from the host.
  Image volumes are an engine feature; the runtime only mounts what config.json lists, at destinations that
  openat2(RESOLVE_IN_ROOT) keeps inside the rootfs (test_cve_2021_30465_*, relative links).
- CVE-2025-52881 (runc), the LSM half: runc's writes of AppArmor/SELinux labels to /proc/self/attr could be
  redirected. hutch writes no LSM label (`features` reports AppArmor and SELinux disabled); its other
  writes to /proc are tested below.
- CVE-2025-52565 (runc), the /dev/console half: runc bind-mounted /dev/pts/$n onto /dev/console before
  applying maskedPaths. hutch mounts nothing for the console; its other half (the slave opened by path) is
  tested below.

A process that can rename entries of the rootfs's own top directory while `create` runs (runc documents the
limit: a "/" shared with another container) can move the container's /proc after it is mounted and leave a
decoy in its place: test_cve_2019_19921_proc_renamed_after_it_is_mounted_*. Init keeps the fd of the proc
(and sysfs) mount it made and reaches them through it, never by path after pivot_root.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.helpers import RW_ROOT, ConsoleSocket, read_until, run_ok

from hutch.linux import mount as m

REPO = Path(__file__).resolve().parents[2]
PY_LIB = Path(sys.base_prefix) / "lib"  # the interpreter's stdlib and libpython, bound into the container

# Run by the runtime's own interpreter inside the container (it is exec'd as `/proc/self/exe -S /evil`):
# keep a handle on the interpreter file, let the runtime's process end, then try to write through it.
# The handle goes to a shell (nothing may still execute the file when it writes, or it gets ETXTBSY).
EVIL = """#!/proc/self/exe -S
import os
fd = os.open("/proc/self/exe", os.O_RDONLY)
os.set_inheritable(fd, True)
if os.fork() == 0:
    script = "sleep 1; (echo pwned >> /proc/self/fd/%d) 2>/tmp/result && echo WROTE >/tmp/result" % fd
    os.execv("/bin/sh", ["sh", "-c", script])
os._exit(0)
"""


def _launcher_dir(tmp_path: Path) -> Path:
    """A bin dir whose `python` is the venv's, for write-launcher to copy beside it as hutch-python."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(os.path.realpath(REPO / ".venv" / "bin" / "python"))
    return bindir


def _write_launcher(bindir: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            REPO / "scripts" / "write-launcher",
            bindir / "python",
            bindir / "hutch-runtime",
            "hutch.runtime.cli",
        ],
        check=True,
    )


def _unseal(copy: Path) -> None:
    while str(copy) in Path("/proc/self/mountinfo").read_text():
        m.umount2(str(copy), m.MNT_DETACH)


@pytest.fixture
def private_runtime(tmp_path: Path) -> Iterator[Path]:
    """hutch-runtime on a private copy of the interpreter, so a failing test cannot damage the venv's."""
    bindir = _launcher_dir(tmp_path)
    _write_launcher(bindir)
    yield bindir / "hutch-runtime"
    _unseal(bindir / "hutch-python")


def _give_interpreter_its_libraries(spec: dict, rootfs: Path) -> None:
    """Read-only binds (and the host's /lib symlinks) so the interpreter can start in a busybox rootfs."""
    for d in [PY_LIB, Path("/lib"), Path("/lib64"), Path("/usr/lib"), Path("/usr/lib64")]:
        if d.is_symlink():
            (rootfs / d.relative_to("/")).symlink_to(os.readlink(d))
        elif d.exists():
            spec["mounts"].append(
                {"destination": str(d), "type": "bind", "source": str(d), "options": ["rbind", "ro"]}
            )


def test_cve_2019_5736_exec_cannot_overwrite_runtime_interpreter(
    bundle, private_runtime: Path, tmp_path: Path
) -> None:
    spec_edits: list[dict] = []
    b = bundle(["sleep", "30"], edit=spec_edits.append, root={"path": "rootfs", "readonly": False})
    spec = spec_edits[0]
    _give_interpreter_its_libraries(spec, b / "rootfs")
    (b / "config.json").write_text(json.dumps(spec))
    evil = b / "rootfs" / "evil"
    evil.write_text(EVIL)
    evil.chmod(0o755)
    interpreter = private_runtime.parent / "hutch-python"
    before = hashlib.sha256(interpreter.read_bytes()).hexdigest()
    root = tmp_path / "state"
    rt = [str(private_runtime), "--root", str(root)]
    subprocess.run([*rt, "run", "-d", "-b", str(b), "victim"], check=True, timeout=30)
    try:
        subprocess.run([*rt, "exec", "victim", "/evil"], timeout=30)
        result = b / "rootfs" / "tmp" / "result"
        deadline = time.monotonic() + 10
        while not result.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)  # the shell writes its error after creating the file
        assert "Read-only file system" in result.read_text(), "the container could write to the interpreter"
        assert hashlib.sha256(interpreter.read_bytes()).hexdigest() == before
    finally:
        subprocess.run([*rt, "delete", "--force", "victim"], timeout=30)
    assert not json.loads(
        subprocess.run([*rt, "list", "--format", "json"], capture_output=True).stdout or "[]"
    )


def test_cve_2019_5736_seal_does_not_block_a_new_interpreter_copy(tmp_path: Path) -> None:
    """The seal (a read-only bind mount of hutch-python onto itself) makes a rename over the file fail with
    EBUSY; write-launcher, run again after the system's Python changed, must still put the new copy in."""
    bindir = _launcher_dir(tmp_path)
    copy = bindir / "hutch-python"
    shutil.copy2("/bin/true", copy)  # a stale copy: not the interpreter
    m.mount(str(copy), str(copy), None, m.MS_BIND)
    try:
        m.mount(None, str(copy), None, m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY)
        other = tmp_path / "other"
        other.write_text("")
        with pytest.raises(OSError) as raised:
            os.replace(other, copy)
        assert raised.value.errno == errno.EBUSY  # what write-launcher meets
        _write_launcher(bindir)
        assert str(copy) not in Path("/proc/self/mountinfo").read_text()
        assert copy.read_bytes() == (bindir / "python").read_bytes()
        assert (bindir / "hutch-runtime").read_text().startswith(f"#!{copy} -IS\n")
    finally:
        _unseal(copy)


def test_a_failed_interpreter_copy_leaves_no_temporary_file(tmp_path: Path) -> None:
    """write-launcher copies the interpreter to hutch-python.tmp and renames it over hutch-python: when that
    fails (here hutch-python is a non-empty directory), it removes the temporary copy."""
    bindir = _launcher_dir(tmp_path)
    (bindir / "hutch-python").mkdir()
    (bindir / "hutch-python" / "in-the-way").write_text("")
    argv = [
        sys.executable,
        REPO / "scripts" / "write-launcher",
        bindir / "python",
        bindir / "x",
        "hutch.runtime.cli",
    ]
    failed = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert failed.returncode != 0 and "hutch-python" in failed.stderr
    assert sorted(p.name for p in bindir.iterdir()) == ["hutch-python", "python"]


def _no_state_left(runtime) -> None:
    assert not runtime.root.exists() or not any(runtime.root.iterdir())


@pytest.mark.parametrize("link", ["/evil", "../evil"])
def test_cve_2019_16884_proc_on_a_symlink_is_refused(bundle, runtime, link: str) -> None:
    b = bundle(["true"])
    proc = b / "rootfs" / "proc"
    proc.rmdir()
    (b / "rootfs" / "evil").mkdir()
    proc.symlink_to(link)
    result = runtime.run("run", "-b", b, "c1", check=False)
    assert result.returncode != 0
    assert "proc cannot be mounted on /proc: it is a symlink" in result.stderr
    assert not any((b / "rootfs" / "evil").iterdir())
    _no_state_left(runtime)


@pytest.mark.parametrize("kind", ["tmpfs", "bind"])
@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_cve_2021_30465_mount_destination_symlink_stays_in_rootfs(
    bundle, runtime, tmp_path: Path, kind: str, how: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    source = tmp_path / "source"
    source.mkdir()
    (source / "from-source").write_text("x")
    mount = {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
    if kind == "bind":
        mount = {"destination": "/data", "type": "bind", "source": str(source), "options": ["rbind"]}
    b = bundle(
        ["sh", "-c", "touch /data/written-inside && ls /data && cat /proc/self/mountinfo"],
        root={"path": "rootfs", "readonly": False},
        edit=lambda spec: spec["mounts"].append(mount),
    )
    target = str(outside) if how == "absolute" else "../" * 12 + str(outside).lstrip("/")
    (b / "rootfs" / "data").symlink_to(target)
    result = runtime.run("run", "-b", b, "c1")
    assert "written-inside" in result.stdout
    assert list(outside.iterdir()) == [], "the mount or the write reached outside the rootfs"
    # The link was followed inside the rootfs: the mount is at <rootfs>/<outside path>, seen from inside.
    assert f" {outside} " in result.stdout
    assert not (source / "written-inside").exists() or kind == "bind"


@pytest.mark.parametrize("fd", range(3, 10))
def test_cve_2024_21626_cwd_cannot_be_a_leaked_host_fd(bundle, runtime, fd: int) -> None:
    b = bundle(["sh", "-c", "cd ../../../../../../..; ls"], cwd=f"/proc/self/fd/{fd}")
    result = runtime.run("run", "-b", b, "c1", check=False)
    # Either refused, or the process is somewhere inside the container: never above it, on the host.
    if result.returncode == 0:
        assert sorted(result.stdout.split()) == sorted(os.listdir(b / "rootfs"))
    else:
        assert "process.cwd" in result.stderr


def test_cve_2024_21626_no_host_fd_reaches_run_or_exec(bundle, runtime, tmp_path: Path) -> None:
    host_dir = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)  # inheritable only if we say so
    os.set_inheritable(host_dir, True)
    try:
        b = bundle(["sh", "-c", "ls /proc/self/fd; sleep 30"])
        proc = runtime.popen("run", "-b", b, "c1", stdout=subprocess.PIPE, pass_fds=(host_dir,), text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        # ls lists fds 0, 1, 2 and its own directory fd 3; the host dir fd must not be there.
        fds = {first, *(proc.stdout.readline().strip() for _ in range(3))}
        assert fds == {"0", "1", "2", "3"}
        out = subprocess.run(
            runtime.command("exec", "c1", "ls", "/proc/self/fd"),
            capture_output=True,
            text=True,
            pass_fds=(host_dir,),
        )
        assert sorted(out.stdout.split()) == ["0", "1", "2", "3"]
        runtime.run("kill", "c1", "KILL")
        proc.wait(timeout=10)
    finally:
        os.close(host_dir)


def test_cve_2022_29162_no_inheritable_or_ambient_capabilities(bundle, runtime) -> None:
    b = bundle(["sh", "-c", "grep -E '^Cap(Inh|Amb|Bnd)' /proc/self/status"])
    out = runtime.run("run", "-b", b, "c1").stdout
    caps = dict(line.split(":\t") for line in out.splitlines())
    assert caps["CapInh"] == "0000000000000000"
    assert caps["CapAmb"] == "0000000000000000"
    # CAP_AUDIT_WRITE(29), CAP_KILL(5), CAP_NET_BIND_SERVICE(10): the default spec's set, nothing more.
    assert int(caps["CapBnd"], 16) == (1 << 29) | (1 << 5) | (1 << 10)


# --- racing another container: a process that keeps swapping two names, as one sharing a volume would ---

SWAPPER = """
import ctypes, os, sys
renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
a, b = map(os.fsencode, sys.argv[1:3])
print("ready", flush=True)
while True:
    renameat2(-100, a, -100, b, 2)  # RENAME_EXCHANGE
"""


@contextlib.contextmanager
def _swapping(a: Path, b: Path) -> Iterator[None]:
    """Keep exchanging `a` and `b` (renameat2 RENAME_EXCHANGE) until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", SWAPPER, a, b], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        yield
    finally:
        proc.kill()
        proc.wait()


def test_cve_2019_19921_proc_symlink_into_a_raced_volume_is_refused(bundle, runtime, tmp_path: Path) -> None:
    # The advisory's exploit: the image's /proc is a symlink into a volume, in which another container keeps
    # swapping two directories, so that proc is mounted in one and /proc/sys made read-only in the other.
    volume = tmp_path / "volume"
    for level1 in ("level1", "level1~"):
        (volume / level1 / "level2").mkdir(parents=True)
    volume_mount = {"destination": "/evil", "type": "bind", "source": str(volume), "options": ["rbind"]}
    b = bundle(["true"], edit=lambda spec: spec["mounts"].insert(0, volume_mount))
    proc = b / "rootfs" / "proc"
    proc.rmdir()
    proc.symlink_to("/evil/level1/level2")
    with _swapping(volume / "level1", volume / "level1~"):
        for i in range(5):
            result = runtime.run("run", "-b", b, f"c{i}", check=False)
            assert result.returncode != 0
            assert "proc cannot be mounted on /proc: it is a symlink" in result.stderr
    assert sorted(p.name for p in volume.rglob("*")) == ["level1", "level1~", "level2", "level2"]


def test_cve_2019_19921_proc_renamed_after_it_is_mounted_stays_protected(
    bundle, runtime, tmp_path: Path
) -> None:
    # The same race without a symlink, by a racer that can rename entries of the rootfs's own top directory.
    # A createRuntime hook (host side, after the mounts, before pivot_root) stands in for it, deterministically:
    # the real proc mount moves to /proc-real, and /proc becomes a decoy for finish() to protect. The decoy's
    # cap_last_cap, setgroups and self/fd are forged: init must read none of them.
    hook = tmp_path / "rename-proc"

    def edit(spec: dict) -> None:
        spec["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", str(hook)]}]}
        spec["linux"]["sysctl"] = {"net.ipv4.ip_default_ttl": "42"}
        spec["linux"]["maskedPaths"] = ["/proc/timer_list", "/proc/scsi"]
        spec["process"]["user"] = {"uid": 0, "gid": 0, "additionalGids": [5]}

    b = bundle(
        ["sh", "-c", "grep -E '^(Groups|CapBnd)' /proc-real/self/status > /out"], edit=edit, root=RW_ROOT
    )
    hook.write_text(
        f"set -e; cd {b / 'rootfs'}; mv proc proc-real; mkdir -p proc/sys/kernel proc/self/fd\n"
        "echo 10 > proc/sys/kernel/cap_last_cap; echo deny > proc/self/setgroups\n"
        "mkfifo proc/decoy-fifo; for i in $(seq 0 64); do ln -s /proc/decoy-fifo proc/self/fd/$i; done\n"
    )
    runtime.run("create", "-b", b, "c1")
    init = runtime.state("c1")["pid"]
    points = {line.split()[4]: line for line in Path(f"/proc/{init}/mountinfo").read_text().splitlines()}
    assert " ro," in points.get("/proc-real/sys", ""), "the container's real /proc/sys is writable"
    assert "/proc-real/timer_list" in points, "the masked file was not masked in the real /proc"
    assert "/proc/timer_list" not in points and "/proc/sys" not in points, "the decoy was protected instead"
    ttl = subprocess.run(
        ["nsenter", "-t", str(init), "-n", "cat", "/proc/sys/net/ipv4/ip_default_ttl"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert ttl.stdout == "42\n", "the sysctl was not written to the real /proc/sys"
    runtime.run("start", "c1")  # through the decoy's self/fd, init would open its fifo, and never start
    deadline = time.monotonic() + 10
    while runtime.state("c1")["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    # The forged "deny" would have kept the runtime's supplementary groups, the forged cap_last_cap every
    # capability above 10 in the bounding set (CAP_SYS_ADMIN is 21).
    status = dict(line.split(":\t") for line in (b / "rootfs" / "out").read_text().splitlines())
    assert status == {"Groups": "5 ", "CapBnd": f"{(1 << 29) | (1 << 5) | (1 << 10):016x}"}


# --- CVE-2025-31133: maskedPaths bind whatever the container's /dev/null is ---


def _dev_from_the_image(spec: dict) -> None:
    """No /dev mounts: /dev is the image's, so /dev/null is whatever the image put there."""
    spec["mounts"] = [mnt for mnt in spec["mounts"] if not (mnt["destination"] + "/").startswith("/dev/")]
    spec["linux"]["maskedPaths"] = ["/proc/version"]  # a file every kernel has


@pytest.mark.parametrize("kind", ["symlink", "procfs-symlink", "file", "directory", "missing"])
def test_cve_2025_31133_masked_paths_refuse_a_fake_dev_null(bundle, runtime, kind: str) -> None:
    # runc bound the container's /dev/null over each masked file, following symlinks: an image whose
    # /dev/null led to /proc/sys/kernel/core_pattern got that file, writable, in place of /proc/kcore.
    # Here the target is harmless (a file of the image, or the container's own domainname).
    b = bundle(["cat", "/proc/version"], edit=_dev_from_the_image, root=RW_ROOT)
    rootfs = b / "rootfs"
    (rootfs / "canary").write_text("not the null device\n")
    null = rootfs / "dev" / "null"
    if kind == "symlink":
        null.symlink_to("/canary")
    elif kind == "procfs-symlink":
        null.symlink_to("/proc/sys/kernel/domainname")
    elif kind == "file":
        shutil.copy(rootfs / "canary", null)
    elif kind == "directory":
        null.mkdir()
    result = runtime.run("run", "-b", b, "c1", check=False)
    assert result.stdout == "", "a masked path showed something other than the null device"
    assert result.returncode != 0
    assert "/dev/null" in result.stderr
    assert (rootfs / "canary").read_text() == "not the null device\n"


def test_cve_2025_31133_masked_paths_use_the_real_null_device(bundle, runtime) -> None:
    b = bundle(["sh", "-c", "stat -c '%F %t:%T' /proc/version; cat /proc/version"], edit=_dev_from_the_image)
    os.mknod(b / "rootfs" / "dev" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert run_ok(runtime, b) == "character special file 1:3\n"


# --- CVE-2025-52881: writes to /proc redirected by what is mounted there ---


@pytest.mark.parametrize("how", ["image-symlink", "mounted-there"])
def test_cve_2025_52881_sysctl_write_cannot_be_redirected(bundle, runtime, tmp_path: Path, how: str) -> None:
    # A volume (filled by another container) ends up over /proc/sys/net: through an image's symlink at the
    # volume's destination, or mounted there. Its ipv4/ip_forward leads, through `..` out of the volume, to
    # another sysctl: the runtime, still root on the host, must not write the value there. An attacker would
    # pick kernel/core_pattern, which is not namespaced; the test picks the container's own domainname.
    volume = tmp_path / "volume"
    (volume / "ipv4").mkdir(parents=True)
    (volume / "ipv4" / "ip_forward").symlink_to("../../kernel/domainname")
    destination = "/data" if how == "image-symlink" else "/proc/sys/net"

    def edit(spec: dict) -> None:
        spec["mounts"].append(
            {"destination": destination, "type": "bind", "source": str(volume), "options": ["rbind"]}
        )
        spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "redirected"}

    b = bundle(["cat", "/proc/sys/kernel/domainname"], edit=edit)
    if how == "image-symlink":
        (b / "rootfs" / "data").symlink_to("/proc/sys/net")
    result = runtime.run("run", "-b", b, "c1", check=False)
    assert "redirected" not in result.stdout, "the sysctl was written to another file"
    assert result.returncode != 0
    if how == "image-symlink":  # refused as a mount, before any sysctl
        assert "(bind on /data)" in result.stderr and "into /proc or /sys" in result.stderr
    else:
        assert "linux.sysctl: cannot set net.ipv4.ip_forward=redirected" in result.stderr


@pytest.mark.parametrize("link", ["/proc/1", "/proc/sys/kernel", "/proc/self", "/sys/kernel"])
def test_cve_2025_52881_mount_cannot_be_led_into_proc_or_sys(
    bundle, runtime, tmp_path: Path, link: str
) -> None:
    # The primitive behind the redirected writes: an image's symlink at a mount's destination, leading into
    # the proc (or sysfs) mounted before it. Over /proc/1 (init itself) the volume would decide where init's
    # own /proc/self/... opens go; over /proc/sys/kernel it would forge cap_last_cap, and with it how much of
    # the bounding set init drops.
    volume = tmp_path / "volume"
    volume.mkdir()
    mount = {"destination": "/data", "type": "bind", "source": str(volume), "options": ["rbind"]}
    b = bundle(["true"], edit=lambda spec: spec["mounts"].append(mount))
    (b / "rootfs" / "data").symlink_to(link)
    result = runtime.run("run", "-b", b, "c1", check=False)
    assert result.returncode != 0
    assert "(bind on /data)" in result.stderr and "into /proc or /sys" in result.stderr


# --- CVE-2025-52565: the pty slave, opened by path ---


def test_cve_2025_52565_pty_slave_is_not_opened_by_path(bundle, runtime, tmp_path: Path) -> None:
    # runc bound /dev/pts/$n, found by path, onto /dev/console; hutch mounts nothing for the console, but it
    # opened the slave by its path, as root, before dropping privileges. Here the image's /dev/pts/0 is a
    # symlink to one of its files: the process must get the real slave, and the file must not be touched.
    devpts = {
        "destination": "/devpts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
    }

    def edit(spec: dict) -> None:
        spec["process"]["terminal"] = True
        spec["mounts"] = [mnt for mnt in spec["mounts"] if mnt["destination"] not in ("/dev", "/dev/pts")]
        spec["mounts"].insert(1, devpts)

    b = bundle(["sh", "-c", "readlink /proc/self/fd/0; echo END; sleep 10"], edit=edit, root=RW_ROOT)
    rootfs = b / "rootfs"
    os.mknod(rootfs / "dev" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (rootfs / "devpts").mkdir()
    (rootfs / "dev" / "ptmx").symlink_to("/devpts/ptmx")
    (rootfs / "dev" / "pts").mkdir()
    (rootfs / "dev" / "pts" / "0").symlink_to("/canary")
    (rootfs / "canary").write_text("canary\n")
    with ConsoleSocket(tmp_path) as console:
        runtime.run("run", "--detach", "--console-socket", console.path, "--bundle", b, "c1")
        out = read_until(console.master(), b"END").decode().replace("\r\n", "\n")
    assert out.splitlines()[0] == "/devpts/0"
    assert (rootfs / "canary").read_text() == "canary\n"


# --- CVE-2023-25809: a rootless container's /sys/fs/cgroup ---


def test_cve_2023_25809_rootless_cgroup_mount_is_read_only(bundle, runtime) -> None:
    # runc, rootless and without a cgroup namespace, bound the cgroup hierarchy without its `ro`, and the
    # container could write its user's cgroups. The rootless spec has no cgroup namespace either; the
    # container's root is host root here, so only `ro` stands between it and its cgroup directories.
    # Each directory under /sys/fs/cgroup (and itself) that is a cgroup (v1 0x27e0eb, v2 0x63677270) is tried.
    script = (
        "for d in /sys/fs/cgroup/ /sys/fs/cgroup/*/; do case $(stat -f -c %t $d) in 27e0eb|63677270)"
        " mkdir $d/escape 2>&1 && echo made $d;; esac; done; true"
    )
    lines = run_ok(runtime, bundle(["sh", "-c", script], rootless=True)).splitlines()
    assert lines, "no cgroup directory to try"
    assert not [line for line in lines if line.startswith("made ")], "the container wrote to its cgroups"
    assert all(line.endswith("Read-only file system") for line in lines), lines


# --- CVE-2016-9962: the runtime's fds, reachable from inside while `exec` joins ---


def _inside_before_execve(runtime, container_id: str, pid_ns: str) -> Iterator[tuple[int, str]]:
    """Run `exec <id> true` with its execve held back by strace; yield (host pid, pid in the container) of
    each process of the runtime that is in the container's pid namespace meanwhile."""
    strace = subprocess.Popen(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=execve", "-e", "inject=execve:delay_enter=1500000",
         *runtime.command("exec", container_id, "true")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while strace.poll() is None and time.monotonic() < deadline:
            for entry in os.scandir("/proc"):
                try:
                    if not entry.name.isdigit() or os.readlink(f"{entry.path}/ns/pid") != pid_ns:
                        continue
                    if Path(runtime.binary).name not in Path(f"{entry.path}/cmdline").read_text():
                        continue
                    status = Path(f"{entry.path}/status").read_text()
                    yield int(entry.name), status.split("NSpid:")[1].split("\n")[0].split()[-1]
                    return
                except (OSError, IndexError):
                    continue
            time.sleep(0.01)
    finally:
        strace.kill()
        strace.wait()


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to hold exec before its execve")
def test_cve_2016_9962_exec_runtime_fds_are_out_of_reach_from_inside(bundle, runtime) -> None:
    # runc's exec joined the container as a dumpable process holding host fds: the container's root could
    # open them through /proc/PID/fd (or ptrace it) and reach the host before runc exec'd. hutch's exec
    # child is non-dumpable from before it joins (test_safety.py checks /proc/PID/environ; this is the fd
    # table, /proc/PID/root and /proc/PID/cwd, which the advisory used).
    runtime.run("run", "--detach", "--bundle", bundle(["sleep", "60"]), "c1")
    pid_ns = os.readlink(f"/proc/{runtime.state('c1')['pid']}/ns/pid")
    # (Listing /proc/PID/fd needs only the uid; opening an entry, or entering root or cwd, needs more.)
    probe = "cat /proc/{0}/fd/0 && cd /proc/{0}/root && cd /proc/{0}/cwd && echo reached"
    control = runtime.run("exec", "c1", "sh", "-c", probe.format(1))  # init (sleep): dumpable, reachable
    assert control.stdout == "reached\n"
    seen = []
    for host_pid, pid in _inside_before_execve(runtime, "c1", pid_ns):
        seen.append(host_pid)
        tried = runtime.run("exec", "c1", "sh", "-c", probe.format(pid), check=False)
        assert "reached" not in tried.stdout, "the runtime's fds, root and cwd were reachable from inside"
        assert tried.returncode != 0
        assert f"can't open '/proc/{pid}/fd/0': Permission denied" in tried.stderr
    assert seen, "never saw the runtime inside the container"


# --- CVE-2016-3697: a numeric user is a uid, never a name ---


def test_cve_2016_3697_numeric_user_is_a_uid_not_a_name(bundle, runtime) -> None:
    # runc looked a numeric --user up as a name first: an image with a user *named* 1000 whose uid is 0 got
    # root. hutch-runtime takes ids only, and never reads the container's passwd; should a name lookup ever
    # be added (for `exec --user NAME`), a lookup that tried names first would print 0 here.
    b = bundle(["sleep", "30"], user={"uid": 1000, "gid": 1000}, root=RW_ROOT)
    with open(b / "rootfs" / "etc" / "passwd", "a") as f:
        f.write("1000:x:0:0:a name that looks like a uid:/root:/bin/sh\n")
    runtime.run("run", "--detach", "-b", b, "c1")
    assert runtime.run("exec", "c1", "id", "-u").stdout == "1000\n"
    assert runtime.run("exec", "--user", "1000", "c1", "id", "-u").stdout == "1000\n"
    groups = runtime.run("exec", "--user", "1000:1000", "c1", "id", "-G").stdout.split()
    assert groups == ["1000"]


# --- CVE-2025-27612 (youki): capabilities added to an exec'd process ---


def test_cve_2025_27612_exec_with_added_caps_gets_no_inheritable_or_ambient(bundle, runtime) -> None:
    # youki's tenant builder (its exec) put the capabilities it added into the inheritable set too, as runc's
    # `exec --cap` did (CVE-2022-29162): a program with inheritable file capabilities then gained them.
    runtime.run("run", "--detach", "-b", bundle(["sleep", "30"]), "c1")
    out = runtime.run("exec", "--cap", "CAP_NET_RAW", "c1", "grep", "^Cap", "/proc/self/status").stdout
    caps = {key: int(value, 16) for key, value in (line.split(":\t") for line in out.splitlines())}
    assert caps["CapInh"] == 0
    assert caps["CapAmb"] == 0
    default = (1 << 29) | (1 << 5) | (1 << 10)  # CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE
    assert caps["CapPrm"] == caps["CapBnd"] == default | (1 << 13)  # and CAP_NET_RAW, added


# --- CVE-2019-18837 (crun), CVE-2024-45310 (runc): mount points created on the host ---


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_cve_2019_18837_mount_point_is_created_inside_the_rootfs(
    bundle, runtime, tmp_path: Path, kind: str
) -> None:
    # crun created a missing mount point by following the image's (dangling) symlink on the host: an empty
    # file or directory wherever the image liked. The mount point must be made inside the rootfs.
    host = tmp_path / "host"
    host.mkdir()
    source = tmp_path / "source"
    if kind == "file":
        source.write_text("bound\n")
    else:
        source.mkdir()
    mount = {"destination": "/etc/resolv.conf", "type": "bind", "source": str(source), "options": ["bind"]}
    b = bundle(["true"], edit=lambda spec: spec["mounts"].append(mount), root=RW_ROOT)
    (b / "rootfs" / "etc" / "resolv.conf").symlink_to(f"{host}/made/here")
    run_ok(runtime, b)
    assert list(host.iterdir()) == [], "the mount point was created on the host"
    inside = b / "rootfs" / str(host).lstrip("/") / "made" / "here"
    assert inside.is_file() if kind == "file" else inside.is_dir()


def test_cve_2024_45310_raced_mount_point_is_created_inside_the_rootfs(
    bundle, runtime, tmp_path: Path
) -> None:
    # runc made missing mount points with a check-then-create walk: a container sharing the volume swapped a
    # directory on the way for a symlink, and runc created empty directories on the host. Here the racer
    # swaps /a between a directory and a symlink to a host path while hutch creates /a/b/c.
    host = tmp_path / "host"
    host.mkdir()
    mount = {"destination": "/a/b/c", "type": "tmpfs", "source": "tmpfs"}
    for i in range(8):
        b = bundle(["true"], edit=lambda spec: spec["mounts"].append(mount), root=RW_ROOT)
        (b / "rootfs" / "a").mkdir()
        (b / "rootfs" / "a-link").symlink_to(host)
        with _swapping(b / "rootfs" / "a", b / "rootfs" / "a-link"):
            runtime.run("run", "-b", b, f"c{i}", check=False)
    assert list(host.iterdir()) == [], "a mount point was created on the host"
