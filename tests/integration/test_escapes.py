"""Escapes that OCI runtimes have suffered, tried against hutch-runtime: each must fail."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture
def private_runtime(tmp_path: Path) -> Iterator[Path]:
    """hutch-runtime on a private copy of the interpreter, so a failing test cannot damage the venv's."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(os.path.realpath(REPO / ".venv" / "bin" / "python"))
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
    yield bindir / "hutch-runtime"
    copy = str(bindir / "hutch-python")
    while copy in Path("/proc/self/mountinfo").read_text():
        m.umount2(copy, m.MNT_DETACH)


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
