"""`hutch run`, `ps`, `stop`, `rm`, `logs`: containers from a pulled busybox image, seen from inside.

The image (busybox-static with its applets, an /etc/passwd and /etc/group) is built as an OCI layout, copied
into Debian's docker-registry by skopeo and pulled by `hutch pull` into a --root shared by the module; every
test checks that what it ran left no mount, cgroup or runtime state behind.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.registry_fixtures import (
    BUSYBOX,
    OCI_MANIFEST,
    RegistryServer,
    image_config,
    image_manifest,
    sha256,
    skopeo,
    start_registry,
)

REPO = Path(__file__).resolve().parent.parent.parent
HUTCH = [str(REPO / ".venv" / "bin" / "python"), "-m", "hutch.cli.main"]
IMAGE = "busybox-run:1"

PODMAN_CAPS = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_SYS_CHROOT": 18,
    "CAP_SETFCAP": 31,
}


def _tar_layer() -> bytes:
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        "etc/group": "root:x:0:\napp:x:1000:\nextra:x:2000:app\n",
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home", "home/app", "srv"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755, 0
            if d == "home/app":
                info.uid = info.gid = 1000
            tar.addfile(info)
        data = BUSYBOX.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        tar.addfile(info, io.BytesIO(data))
        for applet in sorted(set(applets) - {"busybox"}):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mode, link.mtime = tarfile.SYMTYPE, "busybox", 0o777, 0
            tar.addfile(link)
        for name, text in files.items():
            body = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(body), 0o644, 0
            tar.addfile(info, io.BytesIO(body))
    return raw.getvalue()


def build_layout(directory: Path) -> None:
    tar_bytes = _tar_layer()
    layer = gzip.compress(tar_bytes, mtime=0)
    config = image_config(
        [sha256(tar_bytes)], Env=["PATH=/bin", "FROM_IMAGE=yes", "OVERRIDE=image"], StopSignal="SIGUSR1"
    )
    manifest = image_manifest(config, [layer])
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for blob in (layer, config, manifest):
        (blobs / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    desc = {
        "mediaType": OCI_MANIFEST,
        "digest": sha256(manifest),
        "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "1"},
    }
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))


def hutch(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HUTCH, "--root", str(root), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def ok(root: Path, *args: str) -> str:
    proc = hutch(root, *args)
    assert proc.returncode == 0, f"hutch {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}"
    return proc.stdout


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The image's reference in a docker-registry that runs for the module."""
    registry: RegistryServer = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        layout = tmp_path_factory.mktemp("layout")
        build_layout(layout)
        ref = f"{registry.host}/{IMAGE}"
        skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{ref}")
        yield ref
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def root(remote: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    storage = tmp_path_factory.mktemp("storage")
    ok(storage, "pull", "-q", "--tls-verify=false", remote)
    ok(storage, "tag", remote, IMAGE)
    yield storage
    subprocess.run([*HUTCH, "--root", str(storage), "rm", "-af"], capture_output=True, check=False)


# The mounts and cgroups there were when the running test began (conftest.py): leftovers() reports only
# what came during the test, so that one test's leak fails that test and not every later one.
BASELINE: set[str] = set()


def host_state() -> set[str]:
    """Every mount, and every container cgroup under the hutch/ parents leftovers() looks at."""
    found = set(Path("/proc/self/mountinfo").read_text().splitlines())
    for base in _CGROUP_BASES:
        if os.path.isdir(base):
            found.update(f"cgroup {base}/{d}" for d in os.listdir(base) if len(d) == 64 and d.isalnum())
    return found


def leftovers(root: Path) -> list[str]:
    """Mounts under the root, runtime state dirs, container dirs and cgroups that hutch left."""
    found = [
        line
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if str(root) in line and line not in BASELINE
    ]
    runtime = root / "runtime"
    if runtime.exists():
        found += [f"runtime state {p}" for p in os.listdir(runtime)]
    containers = root / "containers"
    if containers.exists():
        found += [f"container dir {p}" for p in os.listdir(containers) if not p.endswith(".db")]
    for base in _CGROUP_BASES:
        if os.path.isdir(base):
            # Engine containers' cgroups are named by their 64-hex ids (other suites leave their own).
            found += [
                f"cgroup {base}/{d}"
                for d in os.listdir(base)
                if len(d) == 64
                and d.isalnum()
                and f"cgroup {base}/{d}" not in BASELINE
                and _ours(os.path.join(base, d), root)
            ]
    return found


_CGROUP_BASES = (
    "/sys/fs/cgroup/hutch",
    "/sys/fs/cgroup/unified/hutch",
    "/sys/fs/cgroup/memory/hutch",
    "/sys/fs/cgroup/cpu/hutch",
)


def _ours(cgroup: str, root: Path) -> bool:
    """A cgroup left by a container of `root`: an empty one, or one whose processes have their root
    directory in `root`'s containers (a live container of another store, run by a suite beside this one,
    is not ours to count)."""
    try:
        pids = Path(cgroup, "cgroup.procs").read_text().split()
    except OSError:
        return False
    for pid in pids:
        try:
            if os.readlink(f"/proc/{pid}/root").startswith(str(root)):
                return True
        except OSError:
            continue
    return not pids


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return hutch(root, "run", "--rm", *args)


def test_run_rm_prints_and_leaves_nothing(root: Path) -> None:
    proc = run(root, IMAGE, "echo", "hi")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "hi\n", "")
    assert leftovers(root) == []
    assert ok(root, "ps", "-aq") == ""


def test_rm_rootfs_is_volatile_and_its_removal_follows_no_symlink(root: Path, tmp_path: Path) -> None:
    """--rm mounts the rootfs's overlay volatile, as podman does (nothing of it need reach the disk); the
    container's dir then goes without following the symlinks the container left in its upper dir."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("x")
    script = f"grep -c 'fsync=volatile' /proc/self/mountinfo; ln -s {victim} /link; mkdir -p /d/e; ln -s {victim} /d/e/l"
    proc = run(root, IMAGE, "sh", "-c", script)
    assert (proc.returncode, proc.stdout) == (0, "1\n"), proc.stderr
    assert (victim / "keep").read_text() == "x"
    assert leftovers(root) == []
    kept = hutch(root, "run", "--name", "kept", IMAGE, "grep", "-c", "fsync=volatile", "/proc/self/mountinfo")
    assert kept.stdout == "0\n"  # a container that stays keeps a rootfs that syncs
    ok(root, "rm", "kept")
    assert leftovers(root) == []


def test_volatile_rootfs_mounts_again_after_a_reboot(root: Path) -> None:
    """A created --rm container whose overlay went with a reboot starts: the volatile marker the kernel left
    in its work dir (it refuses the upper dir while it is there) is cleared first."""
    cid = ok(root, "create", "--rm", IMAGE, "echo", "again").strip()
    merged = root / "containers" / cid / "merged"
    subprocess.run(["umount", str(merged)], check=True)  # what a reboot does to it
    assert (root / "containers" / cid / "work" / "work" / "incompat" / "volatile").is_dir()
    proc = hutch(root, "start", "-a", cid)
    assert (proc.returncode, proc.stdout) == (0, "again\n"), proc.stderr
    assert leftovers(root) == []


def test_exit_code_is_the_containers(root: Path) -> None:
    assert run(root, IMAGE, "sh", "-c", "exit 7").returncode == 7
    assert leftovers(root) == []


def test_missing_command_is_127_and_leaves_nothing(root: Path) -> None:
    proc = run(root, IMAGE, "no-such-command")
    assert proc.returncode == 127, proc.stderr
    assert proc.stderr.startswith("Error: ") and "no-such-command" in proc.stderr
    assert run(root, IMAGE, "/etc/passwd").returncode == 126
    assert leftovers(root) == []


def test_unknown_image_is_125(root: Path) -> None:
    proc = run(root, "no-such-image:1", "true")
    assert proc.returncode == 125
    assert proc.stderr == "Error: no-such-image:1: image not known\n"


def test_run_pulls_a_missing_image(remote: str, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    proc = hutch(fresh, "run", "--rm", "--pull", "never", remote, "true")
    assert (proc.returncode, proc.stderr) == (125, f"Error: {remote}: image not known\n")
    proc = hutch(fresh, "run", "--rm", "--tls-verify=false", remote, "echo", "pulled")
    assert (proc.returncode, proc.stdout) == (0, "pulled\n"), proc.stderr
    assert f"Trying to pull {remote}" in proc.stderr
    assert ok(fresh, "images", "-q").strip()
    assert leftovers(fresh) == []


def test_env_from_image_and_flags(root: Path) -> None:
    out = run(root, "-e", "OVERRIDE=flag", "-e", "EXTRA=1", IMAGE, "env").stdout.splitlines()
    env = dict(line.split("=", 1) for line in out)
    assert env["FROM_IMAGE"] == "yes"
    assert env["OVERRIDE"] == "flag"
    assert env["EXTRA"] == "1"
    assert env["PATH"] == "/bin"
    assert env["HOME"] == "/root"
    assert env["container"] == "hutch"


def test_workdir_user_hostname(root: Path) -> None:
    assert run(root, "-w", "/srv", IMAGE, "pwd").stdout == "/srv\n"
    assert run(root, "-u", "1234:5678", IMAGE, "id").stdout.startswith("uid=1234 gid=5678")
    out = run(root, "-u", "app", IMAGE, "sh", "-c", "id -u; id -g; id -G; echo $HOME").stdout.split()
    assert out == ["1000", "1000", "1000", "2000", "/home/app"]
    assert run(root, "--hostname", "box", IMAGE, "hostname").stdout == "box\n"
    assert run(root, "--hostname", "box", IMAGE, "cat", "/etc/hostname").stdout == "box\n"
    assert "box" in run(root, "--hostname", "box", IMAGE, "cat", "/etc/hosts").stdout
    assert run(root, "--entrypoint", "echo", IMAGE, "a", "b").stdout == "a b\n"


def _status(text: str, name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(name + ":"))


def test_capabilities_seccomp_and_masked_paths(root: Path) -> None:
    status = run(root, IMAGE, "cat", "/proc/self/status").stdout
    want = sum(1 << bit for bit in PODMAN_CAPS.values())
    assert int(_status(status, "CapEff"), 16) == want
    assert int(_status(status, "CapBnd"), 16) == want
    assert _status(status, "Seccomp") == "2"
    assert _status(status, "NoNewPrivs") == "0"
    unconfined = run(root, "--security-opt", "seccomp=unconfined", IMAGE, "cat", "/proc/self/status").stdout
    assert _status(unconfined, "Seccomp") == "0"
    # A non-root user keeps the bounding set only.
    assert int(_status(run(root, "-u", "1000", IMAGE, "cat", "/proc/self/status").stdout, "CapEff"), 16) == 0
    assert run(root, IMAGE, "cat", "/proc/kcore").stdout == ""
    assert run(root, IMAGE, "cat", "/proc/keys").stdout == ""
    assert run(root, IMAGE, "sh", "-c", "ulimit -n").stdout.strip() == str(
        min(__import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)[1], 1048576)
    )


def test_read_only_and_network(root: Path) -> None:
    proc = run(root, "--read-only", IMAGE, "touch", "/x")
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr
    assert run(root, IMAGE, "touch", "/x").returncode == 0
    links = run(root, "--network", "none", IMAGE, "cat", "/proc/net/dev").stdout
    assert [line.split(":")[0].strip() for line in links.splitlines()[2:]] == ["lo"]
    assert "UP" in run(root, "--network", "none", IMAGE, "ip", "link", "show", "lo").stdout
    # The host's interfaces (others' containers add and remove veths meanwhile: compare the stable ones).
    host_links = {line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]}
    seen = run(root, "--network", "host", IMAGE, "cat", "/proc/net/dev").stdout.splitlines()[2:]
    stable = {n for n in host_links if not n.startswith(("veth", "hutch"))}
    assert stable <= {line.split(":")[0].strip() for line in seen}


def test_name_conflict_is_125(root: Path) -> None:
    first = hutch(root, "run", "--name", "taken", IMAGE, "true")
    assert first.returncode == 0
    proc = hutch(root, "run", "--name", "taken", IMAGE, "true")
    assert proc.returncode == 125
    assert proc.stderr.startswith('Error: the container name "taken" is already in use by ')
    assert "Exited (0)" in ok(root, "ps", "-a")
    assert ok(root, "rm", "taken") == "taken\n"
    assert leftovers(root) == []


def test_detached_ps_stop_rm(root: Path) -> None:
    cid = ok(
        root, "run", "-d", "--name", "sleeper", IMAGE, "sh", "-c", "echo started; exec sleep 1000"
    ).strip()
    assert len(cid) == 64
    assert ok(root, "ps", "-q") == cid[:12] + "\n"
    table = ok(root, "ps").splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert cid[:12] in table[1] and "Up " in table[1] and table[1].endswith("sleeper")
    proc = hutch(root, "rm", "sleeper")
    assert proc.returncode == 2 and "running" in proc.stderr
    deadline = time.monotonic() + 10
    while "started" not in ok(root, "logs", "sleeper") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ok(root, "logs", "sleeper") == "started\n"
    # sleep, PID 1 of its namespace, ignores SIGTERM: stop kills it after -t seconds.
    assert ok(root, "stop", "-t", "1", "sleeper") == "sleeper\n"
    assert ok(root, "ps", "-q") == ""
    assert "Exited (137)" in ok(root, "ps", "-a")
    assert not [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if cid in line]
    assert ok(root, "rm", cid[:12]) == cid[:12] + "\n"
    assert ok(root, "ps", "-aq") == ""
    assert leftovers(root) == []
    proc = hutch(root, "rm", "sleeper")
    assert proc.returncode == 1
    assert proc.stderr == 'Error: no container with name or ID "sleeper" found: no such container\n'


def test_detached_exit_code_and_rm_force(root: Path) -> None:
    ok(root, "run", "-d", "--name", "quick", IMAGE, "sh", "-c", "exit 3")
    deadline = time.monotonic() + 10
    while "Exited (3)" not in ok(root, "ps", "-a") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Exited (3)" in ok(root, "ps", "-a")
    ok(root, "run", "-d", "--name", "busy", IMAGE, "sleep", "1000")
    assert ok(root, "rm", "-f", "busy", "quick") == "busy\nquick\n"
    assert leftovers(root) == []


def test_detached_rm_removes_itself(root: Path) -> None:
    ok(root, "run", "-d", "--rm", IMAGE, "true")
    deadline = time.monotonic() + 10
    while ok(root, "ps", "-aq") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ok(root, "ps", "-aq") == ""
    assert leftovers(root) == []


def test_engine_killed_during_run_then_rm_force(root: Path) -> None:
    proc = subprocess.Popen([*HUTCH, "--root", str(root), "run", "--name", "orphan", IMAGE, "sleep", "1000"])
    try:
        deadline = time.monotonic() + 10
        while "orphan" not in ok(root, "ps") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    assert "orphan" in ok(root, "ps")  # the container outlives its monitor
    assert hutch(root, "rm", "orphan").returncode == 2
    assert ok(root, "rm", "-f", "orphan") == "orphan\n"
    assert leftovers(root) == []


def test_foreground_run_stopped_from_outside(root: Path) -> None:
    """stop sends the image's StopSignal (SIGUSR1 here); the engine, the run's monitor, exits with its code."""
    proc = subprocess.Popen(
        [
            *HUTCH,
            "--root",
            str(root),
            "run",
            "--name",
            "fg",
            IMAGE,
            "sh",
            "-c",
            "trap 'exit 42' USR1; sleep 1000 & wait",
        ]
    )
    try:
        deadline = time.monotonic() + 10
        while "fg" not in ok(root, "ps") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert ok(root, "stop", "fg") == "fg\n"
        assert proc.wait(10) == 42
    finally:
        proc.kill()
    assert "Exited (42)" in ok(root, "ps", "-a")
    ok(root, "rm", "fg")
    assert leftovers(root) == []


def through_pty(argv: list[str]) -> tuple[int, bytes]:
    """Run argv with a new pty as its stdio; its exit code and everything it wrote (20s at most)."""
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        out = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every slave fd is closed
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(10), out
    finally:
        os.close(master)


def test_tty_and_interactive(root: Path) -> None:
    code, out = through_pty(
        [*HUTCH, "--root", str(root), "run", "--rm", "-t", IMAGE, "sh", "-c", "tty; echo TERM=$TERM; exit 5"]
    )
    assert code == 5
    assert b"/dev/pts/0" in out and b"TERM=xterm" in out
    # Without -i stdin is /dev/null; with it the container reads ours.
    piped = subprocess.run(
        [*HUTCH, "--root", str(root), "run", "--rm", IMAGE, "cat"],
        input="x\n",
        capture_output=True,
        text=True,
    )
    assert piped.stdout == ""
    piped = subprocess.run(
        [*HUTCH, "--root", str(root), "run", "--rm", "-i", IMAGE, "cat"],
        input="x\n",
        capture_output=True,
        text=True,
    )
    assert piped.stdout == "x\n"
    assert leftovers(root) == []


def test_logs_follow_until_exit(root: Path) -> None:
    ok(root, "run", "-d", "--rm", "--name", "talker", IMAGE, "sh", "-c", "echo a; sleep 0.5; echo b >&2")
    # --rm removes it (and its log) while logs -f follows: what was written still comes out, stdout lines
    # on stdout and stderr lines on stderr.
    proc = hutch(root, "logs", "-f", "talker")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "a\n", "b\n")


def test_platform_picks_or_refuses_the_stored_image(root: Path) -> None:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    assert run(root, "--platform", f"linux/{arch}", IMAGE, "echo", "mine").stdout == "mine\n"
    proc = run(root, "--platform", "linux/s390x", "--pull", "never", IMAGE, "true")
    assert (proc.returncode, proc.stderr) == (
        125,
        f"Error: {IMAGE}: no image for platform linux/s390x (--pull never)\n",
    )
    proc = run(root, "--platform", "linux", IMAGE, "true")
    assert (proc.returncode, proc.stderr) == (125, "Error: --platform 'linux': expected os/arch[/variant]\n")
    assert leftovers(root) == []


@pytest.mark.parametrize("proxy", [True, False])
def test_sig_proxy(root: Path, proxy: bool) -> None:
    """A signal to `hutch run` goes to the container (it exits 7 from its trap); with --sig-proxy=false it
    stays with hutch, which it ends, and the container runs on until rm -f."""
    name = f"proxy-{proxy}".lower()
    flag = [] if proxy else ["--sig-proxy=false"]
    script = "trap 'exit 7' USR1; echo ready; sleep 1000 & wait"
    proc = subprocess.Popen(
        [*HUTCH, "--root", str(root), "run", *flag, "--name", name, IMAGE, "sh", "-c", script],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGUSR1)
        code = proc.wait(10)
        if proxy:
            assert code == 7
            assert ok(root, "inspect", "-f", "{{.State.ExitCode}}", name).strip() == "7"
        else:
            assert code == -signal.SIGUSR1
            assert ok(root, "inspect", "-f", "{{.State.Status}}", name).strip() == "running"
    finally:
        proc.kill()
        ok(root, "rm", "-f", name)
    assert leftovers(root) == []


def test_hot_paths_stay_off_heavy_imports(root: Path, remote: str) -> None:
    """`hutch ps` and `hutch run --rm --network none` import none of the modules that cost milliseconds
    and that they do not need (docs/architecture.md, Start-up time). The image is named as stored, and by a
    short name (busybox-run:1, stored as docker.io/library/busybox-run:1), which hutch.image.reference
    normalizes without re."""
    heavy = {"subprocess", "hashlib", "secrets", "socket", "ipaddress", "typing", "tempfile"}
    # shutil (bz2, lzma): the container's dir goes through monitor.remove_tree; sqlite3 (datetime): the
    # databases use its C part, _sqlite3
    heavy |= {"shutil", "bz2", "lzma", "sqlite3", "datetime"}
    # argparse (re, enum, gettext, locale): hutch.cli.fastargs reads these command lines
    heavy |= {"argparse", "re", "enum", "gettext", "locale"}
    launcher = REPO / ".venv" / "bin" / "hutch"
    for args, extra in (
        (["ps", "-a"], set()),
        (["run", "--rm", "--network", "none", remote, "true"], set()),
        (["run", "--rm", "--network", "none", IMAGE, "true"], set()),
    ):
        proc = subprocess.run(
            [str(REPO / ".venv" / "bin" / "hutch-python"), "-X", "importtime", "-IS", str(launcher),
             "--root", str(root), *args],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        imported = {
            line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "import time:" in line
        }
        assert (heavy | extra) & imported == set(), args
        if IMAGE in args:  # the short name was parsed, not found as given
            assert "hutch.image.reference" in imported


def test_etc_files_are_written_once_and_readable_whatever_the_umask(root: Path, tmp_path: Path) -> None:
    """create writes each of /etc/hosts, /etc/hostname and /etc/resolv.conf once (hosts and resolv.conf
    by the network's prepare), 0644 even under umask 077, so that a container's other user reads them."""
    trace = tmp_path / "trace"
    name = "etc-once"
    shell = 'umask 077 && exec "$@"'
    command = [*HUTCH, "--root", str(root), "create", "--name", name, "--network", "none", "--user", "1000"]
    proc = subprocess.run(
        ["sh", "-c", shell, "sh", "strace", "-f", "-qq", "-e", "trace=openat", "-o", str(trace),
         *command, IMAGE, "cat", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    try:
        assert proc.returncode == 0, proc.stderr
        cid = proc.stdout.strip()
        writes = [
            line.split('"')[1].rsplit("/", 1)[1]
            for line in trace.read_text().splitlines()
            if f"/{cid}/userdata/" in line and "O_WRONLY" in line
        ]
        assert sorted(w for w in writes if w in ("hosts", "hostname", "resolv.conf")) == [
            "hostname",
            "hosts",
            "resolv.conf",
        ]
        out = ok(root, "start", "--attach", name)
        assert "127.0.0.1\tlocalhost" in out and f"\t{cid[:12]} {name}\n" in out
        for file in ("hosts", "hostname", "resolv.conf"):
            assert (root / "containers" / cid / "userdata" / file).stat().st_mode & 0o777 == 0o644
    finally:
        hutch(root, "rm", "-f", name)
