"""What must not cross from the host into a container: file descriptors (only stdio and --preserve-fds),
a working directory outside the rootfs, and a dumpable runtime process while it is inside (exec)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import RW_ROOT, run_ok, sh, wait_for

# Every fd of the process with what it points to; `ls` itself opens the directory it lists (one more fd).
LIST_FDS = "for f in /proc/self/fd/*; do echo ${f##*/} $(readlink $f); done"


@pytest.fixture
def leaky_fds(tmp_path: Path) -> Iterator[list[int]]:
    """Three fds open in the test process without O_CLOEXEC, on a file the container must never see."""
    secret = tmp_path / "host-secret"
    secret.write_text("host only\n")
    fds = [os.open(secret, os.O_RDONLY) for _ in range(3)]
    for fd in fds:
        os.set_inheritable(fd, True)
    try:
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def _fds(out: str) -> dict[int, str]:
    result = {}
    for line in out.splitlines():
        number, _, target = line.partition(" ")
        if number.isdigit() and target:  # no target: the directory the shell's glob had open, now closed
            result[int(number)] = target
    return result


def _check_only_stdio(fds: dict[int, str], extra: tuple[int, ...] = ()) -> None:
    assert {0, 1, 2} <= set(fds), fds
    for fd, target in fds.items():
        assert "host-secret" not in target or fd in extra, fds
    # beyond stdio, the preserved fds and the directory the listing shell opened, nothing
    others = [fd for fd in fds if fd > 2 and fd not in extra and not fds[fd].startswith("/proc/")]
    assert others == [], fds


def _popen(runtime: Any, fds: list[int], *args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = runtime.popen(
        *args,
        pass_fds=fds,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_no_host_fd_reaches_the_container_with_run(bundle: Any, runtime: Any, leaky_fds: list[int]) -> None:
    result = _popen(runtime, leaky_fds, "run", "--bundle", sh(bundle, LIST_FDS), "c1")
    assert result.returncode == 0, result.stderr
    _check_only_stdio(_fds(result.stdout))


def test_no_host_fd_reaches_the_container_with_create(
    bundle: Any, runtime: Any, leaky_fds: list[int], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()

    def edit(spec: dict[str, Any]) -> None:
        spec["mounts"].append(
            {"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]}
        )

    b = sh(bundle, f"{{ {LIST_FDS}; }} > /out/fds", edit=edit)
    with open(os.devnull, "w") as null:
        proc = runtime.popen(
            "create",
            "--bundle",
            b,
            "c1",
            pass_fds=leaky_fds,
            stdin=subprocess.DEVNULL,
            stdout=null,
            stderr=null,
        )
        assert proc.wait(timeout=30) == 0
    # the init waiting on the fifo holds nothing of ours either
    init_fds = {int(fd) for fd in os.listdir(f"/proc/{runtime.state('c1')['pid']}/fd")}
    for fd in init_fds:
        target = os.readlink(f"/proc/{runtime.state('c1')['pid']}/fd/{fd}")
        assert "host-secret" not in target
        assert not target.startswith("/sys/fs/cgroup")  # the launcher's cgroup warm-up writes a host cgroup
        assert not target.endswith("hutch.modules")  # the launcher's module cache (modcache)
    runtime.run("start", "c1")
    wait_for(lambda: (out / "fds").exists() and (out / "fds").read_text().endswith("\n"), what="the listing")
    time.sleep(0.1)
    # (fd 1 of the listing's readlink subshells is their pipe; it was /out/fds to the shell)
    _check_only_stdio(_fds((out / "fds").read_text()))


def test_no_host_fd_reaches_an_exec(bundle: Any, runtime: Any, leaky_fds: list[int]) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(["sleep", "60"]), "c1")
    result = _popen(runtime, leaky_fds, "exec", "c1", "sh", "-c", LIST_FDS)
    assert result.returncode == 0, result.stderr
    _check_only_stdio(_fds(result.stdout))


def test_preserve_fds_passes_exactly_those(
    bundle: Any, runtime: Any, leaky_fds: list[int], tmp_path: Path
) -> None:
    # fds 3 and 4 are preserved, 5 is not; each reads back what the host wrote into it
    files = []
    for n in range(3):
        f = tmp_path / f"preserved{n}"
        f.write_text(f"fd{3 + n}\n")
        files.append(f)

    def setup() -> None:
        for n, f in enumerate(files):
            fd = os.open(f, os.O_RDONLY)
            os.dup2(fd, 3 + n)

    script = f"{LIST_FDS}; cat <&3; cat <&4"
    proc = runtime.popen(
        "run", "--preserve-fds", "2", "--bundle", sh(bundle, script), "c1",
        pass_fds=(3, 4, 5), preexec_fn=setup, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    fds = _fds(out)
    assert fds[3].endswith("preserved0") and fds[4].endswith("preserved1")
    assert 5 not in fds or not fds[5].endswith("preserved2")
    _check_only_stdio(fds, extra=(3, 4))
    assert out.splitlines()[-2:] == ["fd3", "fd4"]


def test_exec_preserve_fds(bundle: Any, runtime: Any, leaky_fds: list[int], tmp_path: Path) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(["sleep", "60"]), "c1")
    f = tmp_path / "one"
    f.write_text("one\n")

    def setup() -> None:
        os.dup2(os.open(f, os.O_RDONLY), 3)

    proc = runtime.popen(
        "exec", "--preserve-fds", "1", "c1", "sh", "-c", f"{LIST_FDS}; cat <&3",
        pass_fds=(3, *leaky_fds), preexec_fn=setup, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    _check_only_stdio(_fds(out), extra=(3,))
    assert out.splitlines()[-1] == "one"


# --- the working directory ---


@pytest.mark.parametrize("cwd", ["/../../../..", "/up/../../../../.."])
def test_cwd_cannot_climb_out_of_the_rootfs(bundle: Any, runtime: Any, cwd: str) -> None:
    b = sh(bundle, "pwd; ls", cwd=cwd, root=RW_ROOT)
    (b / "rootfs" / "marker-in-rootfs").write_text("")
    out = run_ok(runtime, b).split()
    assert out[0] == "/"
    assert "marker-in-rootfs" in out


@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_cwd_symlink_is_resolved_inside_the_rootfs(
    bundle: Any, runtime: Any, tmp_path: Path, style: str
) -> None:
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    (host_dir / "host-marker").write_text("")
    b = sh(bundle, "pwd -P; ls", cwd="/link", root=RW_ROOT)
    rootfs = b / "rootfs"
    depth = len(rootfs.resolve().parts)
    target = str(host_dir) if style == "absolute" else "../" * (depth + 2) + str(host_dir).lstrip("/")
    (rootfs / "link").symlink_to(target)
    out = run_ok(runtime, b).split()
    assert "host-marker" not in out
    assert out[0] == str(host_dir)  # the same path, but inside the rootfs
    assert (rootfs / str(host_dir).lstrip("/")).is_dir()
    assert sorted(p.name for p in host_dir.iterdir()) == ["host-marker"]


def test_exec_cwd_symlink_is_resolved_inside_the_rootfs(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    (host_dir / "host-marker").write_text("")
    b = bundle(["sleep", "60"])
    (b / "rootfs" / "link").symlink_to(host_dir)
    (b / "rootfs" / str(host_dir).lstrip("/")).mkdir(parents=True)
    (b / "rootfs" / str(host_dir).lstrip("/") / "inside-marker").write_text("")
    runtime.run("run", "--detach", "--bundle", b, "c1")
    out = runtime.run("exec", "--cwd", "/link", "c1", "ls").stdout.split()
    assert out == ["inside-marker"]


def test_cwd_is_the_containers_etc_not_the_hosts(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "wc -l < passwd", cwd="/etc"))
    assert int(out) == 3  # the busybox rootfs's passwd, not the host's


# --- the runtime is non-dumpable while inside ---


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to hold exec before its execve")
def test_exec_runtime_is_not_dumpable_inside_the_container(bundle: Any, runtime: Any) -> None:
    # The process that becomes the exec'd program is the runtime until its execve. strace holds every execve
    # for a while; meanwhile that process is in the container's pid namespace, as root, with the container's
    # capabilities. Another root process of the container, with the same capabilities, may read the environ
    # of a dumpable process of root (the container's init, here), never of a non-dumpable one.
    runtime.run("run", "--detach", "--bundle", bundle(["sleep", "60"]), "c1")
    init = runtime.state("c1")["pid"]
    pid_ns = os.readlink(f"/proc/{init}/ns/pid")
    control = runtime.run("exec", "c1", "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ")
    assert "PATH=" in control.stdout  # the observer can read a dumpable process of root
    strace = subprocess.Popen(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=execve", "-e", "inject=execve:delay_enter=1500000",
         *runtime.command("exec", "c1", "true")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    checked: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 20
        while strace.poll() is None and time.monotonic() < deadline and not checked:
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or int(entry.name) == init:
                    continue
                try:
                    if os.readlink(f"{entry.path}/ns/pid") != pid_ns:
                        continue
                    cmdline = Path(f"{entry.path}/cmdline").read_text()
                    nspid = (
                        Path(f"{entry.path}/status").read_text().split("NSpid:")[1].split("\n")[0].split()[-1]
                    )
                except (OSError, IndexError):
                    continue
                if "hutch" in cmdline:  # the runtime, inside, before its execve
                    seen = runtime.run("exec", "c1", "cat", f"/proc/{nspid}/environ", check=False)
                    checked[int(entry.name)] = seen.stderr
                    assert seen.returncode != 0, f"read the runtime's environ from inside: {seen.stdout!r}"
                    assert "Permission denied" in seen.stderr
            time.sleep(0.01)
        assert strace.wait(timeout=30) == 0
    finally:
        if strace.poll() is None:
            strace.kill()
            strace.wait()
    assert checked, "never saw the runtime inside the container"
