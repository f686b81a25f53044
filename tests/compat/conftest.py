"""Compatibility tests: real callers (podman + conmon, containerd + its runc shim) drive hutch-runtime.

    busybox_image_archive           Path of an OCI image archive (oci-archive tar) of the busybox rootfs,
                                    named BUSYBOX_IMAGE, built once per session with the stdlib
    podman                          podman with private storage and `--runtime <hutch-runtime>`:
                                    .run(*args, check=True, input=None, timeout=60) -> CompletedProcess[str];
                                    .image is the busybox image, already loaded; .runtime_ids() lists the
                                    containers hutch-runtime holds in its default --root (see Podman);
                                    .run_tty(*args, input=None) runs podman in a pty (for `run -it`)
    ctr                             containerd's ctr against a private containerd started for the session:
                                    .run(*args, ...) as above; .image is the busybox image, already imported;
                                    .runtime is the path to give `ctr run --runc-binary`; .runc_flags are
                                    `--runc-binary <hutch-runtime> --runc-root <private root>` for `ctr run`;
                                    .run_tty(*args, input=None) runs ctr in a pty (for `ctr run -t`)

Each fixture removes the test's containers afterwards. Like the integration tests these need root.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import resource
import select
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HUTCH_RUNTIME = os.environ.get("HUTCH_RUNTIME") or str(
    Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hutch-runtime"
)
# A localhost name: no test may reach a registry on the internet by mistake.
BUSYBOX_IMAGE = "localhost/hutch/busybox:latest"
CTR_NAMESPACE = "hutch-test"
ENV_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


@pytest.fixture(scope="session", autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.exit(
            "tests/compat needs root (podman, containerd): run the suite as root (make test)", returncode=1
        )


def _hutch_runtime() -> str:
    binary = shutil.which(HUTCH_RUNTIME)
    if binary is None:
        pytest.fail(f"{HUTCH_RUNTIME} is missing: run `make venv`", pytrace=False)
    return binary


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: run `make deps`", pytrace=False)
    return path


def _run(
    command: list[str], *, check: bool, input: str | None, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a client command with its output collected through files (a container may hold a pipe open)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        completed = subprocess.run(
            command,
            input=input.encode() if input is not None else None,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            timeout=timeout,
            env=env,
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
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        )
    return result


def _unmount_under(path: Path) -> None:
    prefix = str(path.resolve())
    with open("/proc/self/mountinfo") as mountinfo:
        targets = [line.split()[4].encode().decode("unicode_escape") for line in mountinfo]
    for target in sorted(targets, key=len, reverse=True):
        if target == prefix or target.startswith(prefix + "/"):
            subprocess.run(["umount", "--lazy", target], check=False)


def run_in_pty(
    command: list[str], *, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, str]:
    """Run a client with a new pty as its stdin, stdout and stderr (as `podman run -it` or `ctr run -t` in a
    terminal); `input` is typed into the terminal. Returns the exit code and all the terminal showed."""
    import pty

    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
    finally:
        os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        if input is not None:
            os.write(master, input.encode())
        while True:
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise AssertionError(f"{' '.join(command)} timed out; the terminal showed {bytes(output)!r}")
            exited = process.poll() is not None
            if not select.select([master], [], [], 0.1)[0]:
                if exited:  # and nothing more to read
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every holder of the terminal's other side is gone
                break
            if not chunk:
                break
            output += chunk
        return process.wait(timeout=10), output.decode(errors="replace")
    finally:
        os.close(master)


# --- the image ---


def _blob(layout: Path, data: bytes, media_type: str) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def build_oci_archive(rootfs: Path, archive: Path, name: str) -> None:
    """Write an OCI image layout holding one layer (the rootfs) as a tar archive, as `podman save` would."""
    layout = archive.with_suffix(".layout")
    (layout / "blobs" / "sha256").mkdir(parents=True)
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    arch = GOARCH.get(platform.machine(), platform.machine())
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Env": [ENV_PATH], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [
            {"created_by": "hutch tests: busybox-static", "comment": "built by tests/compat/conftest.py"}
        ],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _blob(layout, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [_blob(layout, layer_bytes, "application/vnd.oci.image.layer.v1.tar")],
    }
    descriptor = _blob(layout, json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    descriptor["annotations"] = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name}
    descriptor["platform"] = {"architecture": arch, "os": "linux"}
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(layout.iterdir()):
            tar.add(entry, arcname=entry.name)
    shutil.rmtree(layout)


@pytest.fixture(scope="session")
def busybox_image_archive(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = tmp_path_factory.mktemp("image") / "busybox.tar"
    build_oci_archive(busybox_rootfs, archive, BUSYBOX_IMAGE)
    return archive


# --- podman ---


# podman as root gives containers RLIMIT_NOFILE 1048576 and RLIMIT_NPROC 4194304, above this host's hard
# limits: any runtime then fails to set them. Give the host's own (conmon's RLIMIT_NPROC is 32768 at most).
PODMAN_CONF = """\
[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
# A new, empty network namespace: no bridge, veth or firewall rule is made on the host.
netns = "none"

[engine]
# Tests use the images the fixtures load; nothing is ever pulled.
pull_policy = "never"
"""


class Podman:
    """podman with private storage and state, using hutch-runtime (through conmon) as its OCI runtime."""

    def __init__(self, home: Path, runtime: str) -> None:
        self.home = home
        self.runtime = runtime
        self.image = BUSYBOX_IMAGE
        conf = home / "containers.conf"
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
        conf.write_text(PODMAN_CONF.format(nofile=nofile, nproc=nproc))
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.base = [
            _need("podman"),
            "--root",
            str(home / "storage"),
            "--runroot",
            str(home / "run"),
            "--tmpdir",
            str(home / "tmp"),
            "--runtime",
            runtime,
            # No `--runtime-flag root=DIR`: podman leaves runtime flags out of conmon's exit command
            # (`podman container cleanup`), whose `delete` would then look in the default root.
            # hutch-runtime has no systemd cgroup driver, and this host's pid 1 is not systemd anyway.
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]

    def run(
        self, *args: str | os.PathLike[str], check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return _run([*self.base, *map(str, args)], check=check, input=input, timeout=timeout, env=self.env)

    def run_tty(
        self, *args: str | os.PathLike[str], input: str | None = None, timeout: float = 60
    ) -> tuple[int, str]:
        return run_in_pty([*self.base, *map(str, args)], input=input, env=self.env, timeout=timeout)

    def remove_containers(self) -> None:
        self.run("rm", "--all", "--force", "--time", "0", check=False)

    def runtime_ids(self) -> list[str]:
        """The containers hutch-runtime itself knows of (`list -q` in its default root, shared with any
        other user of the machine's hutch-runtime: look for the ids podman gave)."""
        return _run([self.runtime, "list", "-q"], check=True, input=None, timeout=30).stdout.split()


@pytest.fixture(scope="session")
def _podman_session(
    busybox_image_archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Podman]:
    podman = Podman(tmp_path_factory.mktemp("podman"), _hutch_runtime())
    podman.run("load", "--input", busybox_image_archive)
    podman.run("image", "exists", podman.image)
    yield podman
    podman.remove_containers()
    podman.run("rmi", "--all", "--force", check=False)
    _unmount_under(podman.home)


@pytest.fixture
def podman(_podman_session: Podman) -> Iterator[Podman]:
    yield _podman_session
    _podman_session.remove_containers()


# --- containerd ---


class Ctr:
    """containerd's ctr, talking to the session's private containerd in its own namespace."""

    def __init__(self, address: Path, runtime: str, runc_root: Path) -> None:
        self.address = address
        self.runtime = runtime
        self.runc_root = runc_root
        self.image = BUSYBOX_IMAGE
        self.base = [_need("ctr"), "--address", str(address), "--namespace", CTR_NAMESPACE]
        # The runc shim runs `<runc-binary> --root <runc-root> ...`; the default root is /run/containerd/runc.
        self.runc_flags = ["--runc-binary", runtime, "--runc-root", str(runc_root)]

    def run(
        self, *args: str | os.PathLike[str], check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return _run([*self.base, *map(str, args)], check=check, input=input, timeout=timeout)

    def run_tty(
        self, *args: str | os.PathLike[str], input: str | None = None, timeout: float = 60
    ) -> tuple[int, str]:
        return run_in_pty([*self.base, *map(str, args)], input=input, timeout=timeout)

    def remove_containers(self) -> None:
        for task in self.run("tasks", "list", "--quiet", check=False).stdout.split():
            self.run("tasks", "kill", "--signal", "SIGKILL", task, check=False)
            self.run("tasks", "delete", "--force", task, check=False)
        for container in self.run("containers", "list", "--quiet", check=False).stdout.split():
            self.run("containers", "delete", container, check=False)


CONTAINERD_CONFIG = """\
version = 2
root = "{home}/root"
state = "{home}/state"
# Nothing here needs Kubernetes' CRI plugin (and its CNI setup).
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{home}/containerd.sock"

[ttrpc]
  address = "{home}/containerd.sock.ttrpc"

[debug]
  address = "{home}/debug.sock"
"""


@pytest.fixture(scope="session")
def _containerd(busybox_image_archive: Path) -> Iterator[Ctr]:
    # A short home: containerd's socket paths must fit in a unix socket address (108 bytes).
    home = Path(tempfile.mkdtemp(prefix="hutch-ctrd-"))
    config = home / "config.toml"
    config.write_text(CONTAINERD_CONFIG.format(home=home))
    log = (home / "containerd.log").open("w")
    daemon = subprocess.Popen(
        [_need("containerd"), "--config", str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
    )
    ctr = Ctr(home / "containerd.sock", _hutch_runtime(), home / "runc")
    try:
        deadline = time.monotonic() + 30
        while ctr.run("version", check=False, timeout=10).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"containerd did not start: {(home / 'containerd.log').read_text()[-2000:]}",
                    pytrace=False,
                )
            time.sleep(0.1)
        ctr.run("images", "import", busybox_image_archive)
        ctr.run("images", "check", f"name=={ctr.image}")
        yield ctr
    finally:
        with contextlib.suppress(Exception):
            ctr.remove_containers()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        _unmount_under(home)
        shutil.rmtree(home, ignore_errors=True)
        # ctr puts a container's cgroup under /<namespace>/<id>; the runtime removes <id>, not the parent.
        for parent in Path("/sys/fs/cgroup").glob(f"*/{CTR_NAMESPACE}"):
            with contextlib.suppress(OSError):
                parent.rmdir()


@pytest.fixture
def ctr(_containerd: Ctr) -> Iterator[Ctr]:
    yield _containerd
    _containerd.remove_containers()
