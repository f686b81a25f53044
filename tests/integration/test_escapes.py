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
