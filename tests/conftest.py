"""Fixtures shared by every test: a busybox rootfs, bundles made from it, and runtimes that run them.

    busybox_rootfs                  Path of a busybox rootfs built once per session (read it, never change it)
    bundle(args=None, *, edit=None, rootless=False, **fields) -> Path
                                    a fresh bundle: a copy of the rootfs and a config.json from default_spec()
    runtime                         hutch-runtime with its own --root: .run(*args, check=True, input=None,
                                    timeout=30) -> CompletedProcess[str]; also .popen(), .state(id), .root
    runc                            the same for runc, to compare behaviour
    test_token                      the marker put into every bundle's process.env to find leaked processes

`runtime` and `runc` clean up after the test: `delete --force` of every container left under their root, then
the test fails if any process of its containers is still alive or anything is still mounted below tmp_path.
Set HUTCH_RUNTIME=/path/to/binary to run the suite against another binary (HUTCH_RUNTIME=runc checks a test).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from hutch.runtime.default_spec import default_spec

REPO = Path(__file__).resolve().parent.parent
HUTCH_RUNTIME = os.environ.get("HUTCH_RUNTIME") or str(REPO / ".venv" / "bin" / "hutch-runtime")
BUSYBOX = Path("/bin/busybox")  # from busybox-static: a static binary runs in any rootfs
TOKEN_VAR = "HUTCH_TEST_TOKEN"

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""

GROUP = """\
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
"""

# config.json keys that `bundle(**fields)` sets inside "process"; the other accepted keys are top-level ones.
PROCESS_KEYS = frozenset(
    {
        "terminal",
        "consoleSize",
        "user",
        "args",
        "commandLine",
        "env",
        "cwd",
        "capabilities",
        "rlimits",
        "apparmorProfile",
        "noNewPrivileges",
        "oomScoreAdj",
        "scheduler",
        "selinuxLabel",
        "ioPriority",
        "execCPUAffinity",
    }
)
TOP_KEYS = frozenset(
    {"ociVersion", "root", "mounts", "hostname", "domainname", "hooks", "annotations", "linux"}
)

Edit = Callable[[dict[str, Any]], None]


# --- the busybox rootfs ---


def build_busybox_rootfs(rootfs: Path) -> None:
    """/bin/busybox, a symlink per applet in /bin, root/user/nobody in /etc, and empty proc sys dev tmp."""
    if not BUSYBOX.exists():
        pytest.exit(f"{BUSYBOX} is missing: install busybox-static (make deps)", returncode=1)
    for name in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user"):
        (rootfs / name).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    (rootfs / "root").chmod(0o700)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], check=True, capture_output=True, text=True).stdout
    for applet in applets.split():
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text(PASSWD)
    (rootfs / "etc" / "group").write_text(GROUP)
    with contextlib.suppress(PermissionError):  # only root can give the home away; unit tests don't care
        os.chown(rootfs / "home" / "user", 1000, 1000)


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rootfs = tmp_path_factory.mktemp("busybox") / "rootfs"
    build_busybox_rootfs(rootfs)
    return rootfs


# --- bundles ---


@pytest.fixture
def test_token() -> str:
    return uuid.uuid4().hex


class BundleFactory:
    """bundle(args=None, *, edit=None, rootless=False, **fields) -> Path of a new bundle directory.

    config.json is default_spec(rootless) with terminal false, then: `args` (default ["sh"]); each field, set
    in "process" when it is a process key (env, cwd, user, capabilities, rlimits, ...) or at the top level
    otherwise (hostname, mounts, root, annotations, hooks, linux, ...), replacing the default value; then
    HUTCH_TEST_TOKEN=<test_token> appended to process.env; last, edit(spec) may change anything in place.
    The rootfs is a private copy of busybox_rootfs at <bundle>/rootfs (the spec's root is read-only by
    default: pass root={"path": "rootfs", "readonly": False} to write to it).
    """

    def __init__(self, rootfs: Path, parent: Path, token: str) -> None:
        self._rootfs = rootfs
        self._parent = parent
        self._token = token
        self._count = 0

    def __call__(
        self,
        args: Sequence[str] | None = None,
        *,
        edit: Edit | None = None,
        rootless: bool = False,
        **fields: Any,
    ) -> Path:
        spec = default_spec(rootless=rootless)
        spec["process"]["terminal"] = False
        if args is not None:
            if isinstance(args, str):
                raise TypeError("bundle(args=...) takes a list of strings, not a string")
            spec["process"]["args"] = list(args)
        for key, value in fields.items():
            if key in PROCESS_KEYS:
                spec["process"][key] = value
            elif key in TOP_KEYS:
                spec[key] = value
            else:
                raise TypeError(
                    f"bundle() got an unknown config.json field {key!r}; use edit= for nested changes"
                )
        spec["process"].setdefault("env", []).append(f"{TOKEN_VAR}={self._token}")
        if edit is not None:
            edit(spec)

        self._count += 1
        path = self._parent / f"bundle{self._count}"
        path.mkdir()
        subprocess.run(["cp", "-a", str(self._rootfs), str(path / "rootfs")], check=True)
        (path / "config.json").write_text(json.dumps(spec, indent=2) + "\n")
        return path


@pytest.fixture
def bundle(busybox_rootfs: Path, tmp_path: Path, test_token: str) -> BundleFactory:
    return BundleFactory(busybox_rootfs, tmp_path, test_token)


# --- runtimes ---


class RuntimeFailed(subprocess.CalledProcessError):
    """A runtime command exited non-zero; unlike its base class, it shows what the command printed."""

    def __str__(self) -> str:
        return (
            f"{' '.join(map(str, self.cmd))} exited {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def _proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat, to tell a process from a later one with the same pid; None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has done all it will do; its parent (maybe pid 1) reaps it in its time
        return None
    return fields[19]


def _pids_with_token(token: str) -> set[int]:
    marker = f"{TOKEN_VAR}={token}".encode()
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.add(int(entry.name))
    return found


def _pids_of_runtime_root(root: Path) -> set[int]:
    """Processes started as `<runtime> --root ROOT ...`: a runtime command, or a container init that has not
    exec'd yet (it is a fork of `create`, so it has the runtime's command line and not the token)."""
    marker = f"\0--root\0{root}\0".encode()
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline and _proc_start_time(int(entry.name)) is not None:
            found.add(int(entry.name))
    return found


class RuntimeCLI:
    """A runtime binary with its own state root, run the way a test wants it."""

    def __init__(self, binary: str, root: Path, token: str) -> None:
        self.binary = binary
        self.root = root
        self.token = token

    def command(self, *args: str | os.PathLike[str]) -> list[str]:
        return [self.binary, "--root", str(self.root), *map(str, args)]

    def run(
        self,
        *args: str | os.PathLike[str],
        check: bool = True,
        input: str | None = None,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess[str]:
        """Run `<binary> --root <root> *args`; return its exit code, stdout and stderr as text.

        Output is collected through files, not pipes, so a `create` whose container keeps stdout open returns
        as soon as the runtime exits; what the container prints later is not in the result (use `run`).
        Raises RuntimeFailed (a CalledProcessError showing the output) on a non-zero exit when `check`.
        """
        command = self.command(*args)
        with open(os.devnull, "rb") as null, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            completed = subprocess.run(
                command,
                input=input.encode() if input is not None else None,
                stdin=None if input is not None else null,
                stdout=out,
                stderr=err,
                timeout=timeout,
            )
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(
                command,
                completed.returncode,
                out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )
        if check and result.returncode != 0:
            raise RuntimeFailed(result.returncode, command, result.stdout, result.stderr)
        return result

    def popen(self, *args: str | os.PathLike[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start `<binary> --root <root> *args` without waiting; kwargs go to subprocess.Popen."""
        return subprocess.Popen(self.command(*args), **kwargs)

    def state(self, container_id: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.run("state", container_id).stdout)
        return result

    def container_ids(self) -> set[str]:
        """What `list -q` says, and every state dir under the root, in case list is what is broken."""
        ids: set[str] = set()
        with contextlib.suppress(Exception):
            ids.update(self.run("list", "-q", check=False, timeout=10).stdout.split())
        if self.root.is_dir():
            ids.update(entry.name for entry in self.root.iterdir() if entry.is_dir())
        return ids

    def cleanup(self) -> list[str]:
        """Force-delete what the test left; kill and report any of its processes still alive."""
        problems: list[str] = []
        watched: dict[int, str | None] = {}
        for container_id in sorted(self.container_ids()):
            with contextlib.suppress(Exception):
                pid = int(self.state(container_id).get("pid") or 0)
                if pid > 0:
                    watched[pid] = _proc_start_time(pid)
            try:
                deleted = self.run("delete", "--force", container_id, check=False, timeout=30)
            except subprocess.TimeoutExpired:
                problems.append(f"delete --force {container_id} timed out")
                continue
            if deleted.returncode != 0:
                problems.append(
                    f"delete --force {container_id} exited {deleted.returncode}: {deleted.stderr.strip()}"
                )

        if self.root.is_dir():
            left = sorted(entry.name for entry in self.root.iterdir())
            if left:
                problems.append(f"left under --root after delete --force: {', '.join(left)}")

        deadline = time.monotonic() + 5
        while True:
            alive = {pid for pid, start in watched.items() if start and _proc_start_time(pid) == start}
            alive |= _pids_with_token(self.token) | _pids_of_runtime_root(self.root)
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for pid in sorted(alive):
            with contextlib.suppress(OSError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                os.kill(pid, signal.SIGKILL)
                problems.append(f"process {pid} ({command}) survived its container: killed it")
        return problems


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    targets = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            target = line.split()[4].encode().decode("unicode_escape")
            if target == prefix or target.startswith(prefix + "/"):
                targets.append(target)
    return targets


@pytest.fixture
def _no_leaked_mounts(tmp_path: Path) -> Iterator[None]:
    """Fail a test that leaves a mount below its tmp_path (and detach it, so removing tmp_path stays safe)."""
    yield
    leaked = _mounts_under(tmp_path)
    for target in sorted(leaked, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", target], check=False)
    if leaked:
        pytest.fail("mounts left behind in the host's namespace: " + ", ".join(leaked), pytrace=False)


def _runtime_fixture(binary: str, root: Path, token: str) -> Iterator[RuntimeCLI]:
    cli = RuntimeCLI(binary, root, token)
    yield cli
    problems = cli.cleanup()
    if problems:
        pytest.fail(f"{Path(binary).name} cleanup: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def runtime(tmp_path: Path, test_token: str, _no_leaked_mounts: None) -> Iterator[RuntimeCLI]:
    binary = shutil.which(HUTCH_RUNTIME)
    if binary is None:
        pytest.fail(f"{HUTCH_RUNTIME} is missing: run `make venv`", pytrace=False)
    yield from _runtime_fixture(binary, tmp_path / "state-hutch", test_token)


@pytest.fixture
def runc(tmp_path: Path, test_token: str, _no_leaked_mounts: None) -> Iterator[RuntimeCLI]:
    binary = shutil.which("runc")
    if binary is None:
        pytest.fail("runc is missing: run `make deps`", pytrace=False)
    yield from _runtime_fixture(binary, tmp_path / "state-runc", test_token)
