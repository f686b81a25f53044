"""Another OCI runtime than hutch's (runc, crun, runsc or a path) behind hutch.engine.runtimes' interface,
through its runc-compatible command line."""

from __future__ import annotations

import os

from hutch.engine.runtimes import Runtime
from hutch.errors import HutchError, NotFoundError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess


class CliRuntime(Runtime):
    """Another OCI runtime, through its runc-compatible command line."""

    def __init__(self, name: str, binary: str) -> None:
        self.name = name
        self.binary = binary
        self.root = f"/run/hutch/{os.path.basename(binary) if name == binary else name}"

    def conmon_args(self) -> list[str]:
        args = ["--root", self.root]
        if os.path.basename(self.binary) == "runsc":
            # gVisor cannot join this host's hybrid cgroup v1 hierarchies: it runs without cgroups; and its
            # netstack needs a configured netns, so the sandbox has its own loopback-only network.
            args += ["--ignore-cgroups", "--network=none"]
        return args

    def command(self, *args: str) -> list[str]:
        return [self.binary, *self.conmon_args(), *args]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        import subprocess

        return subprocess.run(self.command(*args), capture_output=True, text=True, check=False, timeout=60)

    def _state(self, container_id: str) -> dict[str, object] | None:
        proc = self._run("state", container_id)
        if proc.returncode != 0:
            return None
        from hutch import jsonfast

        doc = jsonfast.loads(proc.stdout)
        return doc if isinstance(doc, dict) else None

    def status(self, container_id: str) -> str:
        doc = self._state(container_id)
        return str(doc.get("status", "gone")) if doc else "gone"

    def pid(self, container_id: str) -> int:
        doc = self._state(container_id)
        pid = doc.get("pid", 0) if doc else 0
        return pid if isinstance(pid, int) else 0

    def start(self, container_id: str) -> None:
        self._check(self._run("start", container_id), "start")

    def kill(self, container_id: str, sig: int, all_processes: bool = False) -> None:
        status = self.status(container_id)
        if status == "gone":
            raise NotFoundError(f"container {container_id[:12]}: {self.name} has no state for it")
        if status not in ("running", "paused", "created"):
            raise StateError(f"container {container_id[:12]} is {status}")
        args = ["kill", *(["--all"] if all_processes else []), container_id, str(sig)]
        proc = self._run(*args)
        if proc.returncode != 0 and self.status(container_id) in ("running", "paused", "created"):
            raise StateError(f"{self.name} kill {container_id[:12]}: {_last_line(proc.stderr)}")

    def delete(self, container_id: str) -> None:
        if self.status(container_id) != "gone":
            self._check(self._run("delete", "--force", container_id), "delete")

    def _check(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            raise HutchError(
                f"{self.name} {what}: {_last_line(proc.stderr) or f'exit status {proc.returncode}'}"
            )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
