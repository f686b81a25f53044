"""attach whose container's monitor dies (conmon killed: the attach socket closes, init runs on and no exit is
ever recorded): podman's "cannot get exit code" and 127 after the wait, not a success."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import HUTCH, IMAGE, ok

remote = run_suite.remote
root = run_suite.root


def test_attach_without_an_exit_code_is_127(root: Path) -> None:
    cid = ok(root, "run", "-d", IMAGE, "sleep", "60").strip()
    try:
        attach = subprocess.Popen(
            [*HUTCH, "--root", str(root), "attach", "--no-stdin", cid],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        conmon = int((root / "containers" / cid / "userdata" / "conmon.pid").read_text())
        # Attached once conmon has a second connection on its attach socket beside its listening one.
        while time.monotonic() < deadline:
            sockets = [os.readlink(f"/proc/{conmon}/fd/{fd}") for fd in os.listdir(f"/proc/{conmon}/fd")]
            if sum(s.startswith("socket:") for s in sockets) >= 2 or attach.poll() is not None:
                break
            time.sleep(0.05)
        os.kill(conmon, signal.SIGKILL)
        out, err = attach.communicate(timeout=30)
        assert attach.returncode == 127, (out, err)
        assert (
            err.startswith(f"Error: cannot get exit code: container {cid[:12]}")
            and len(err.splitlines()) == 1
        )
        assert ok(root, "inspect", "-f", "{{.State.Status}}", cid).strip() == "running"  # init runs on
    finally:
        ok(root, "rm", "-f", "-t", "0", cid)
