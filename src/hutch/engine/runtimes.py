"""The OCI runtime of an engine container, behind one interface: hutch's own runtime (called in-process as a
library; conmon runs its `hutch-runtime` binary) or another runtime's runc-compatible CLI (runc, crun, runsc
or a PATH), each with its own state root under /run/hutch. A container records its runtime's name in its
config JSON (`OCIRuntime`); every later operation on it goes through that runtime.
"""

from __future__ import annotations

import contextlib
import os
import sys

from hutch.errors import HutchError, NotFoundError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

HUTCH = "hutch"
# The hutch runtime's state root (engine.containers.RUNTIME_ROOT says why it is shared by every --root).
HUTCH_ROOT = "/run/hutch/runtime"
KNOWN = ("runc", "crun", "runsc")


class Runtime:
    """What the engine needs of an OCI runtime for one container."""

    name: str = HUTCH
    binary: str = ""
    root: str = HUTCH_ROOT

    def conmon_args(self) -> list[str]:
        """The runtime's global flags, as conmon passes them before the subcommand (`--runtime-arg`)."""
        return ["--root", self.root]

    def status(self, container_id: str) -> str:
        """created, running, paused, stopped, or `gone` when the runtime has no state for it."""
        raise NotImplementedError

    def pid(self, container_id: str) -> int:
        raise NotImplementedError

    def start(self, container_id: str) -> None:
        raise NotImplementedError

    def kill(self, container_id: str, sig: int, all_processes: bool = False) -> None:
        """StateError when the container does not run, NotFoundError when the runtime does not know it."""
        raise NotImplementedError

    def delete(self, container_id: str) -> None:
        """Forced delete; nothing when the runtime has no state for it."""
        raise NotImplementedError


class HutchRuntime(Runtime):
    """hutch's own runtime, through the library in this process."""

    def __init__(self, root: str = HUTCH_ROOT) -> None:
        self.root = root
        self.binary = _hutch_runtime_binary()

    def _load(self, container_id: str):  # type: ignore[no-untyped-def]
        from hutch.runtime import container

        return container.load(self.root, container_id)

    def status(self, container_id: str) -> str:
        try:
            return str(self._load(container_id).status())
        except NotFoundError:
            return "gone"

    def pid(self, container_id: str) -> int:
        try:
            return int(self._load(container_id).pid)
        except NotFoundError:
            return 0

    def start(self, container_id: str) -> None:
        from hutch.runtime import lifecycle

        lifecycle.start(self._load(container_id))

    def kill(self, container_id: str, sig: int, all_processes: bool = False) -> None:
        from hutch.runtime import lifecycle

        lifecycle.kill(self._load(container_id), sig, all_processes=all_processes)

    def delete(self, container_id: str) -> None:
        from hutch.runtime import lifecycle

        try:
            c = self._load(container_id)
        except NotFoundError:
            with contextlib.suppress(NotFoundError):
                lifecycle.delete_leftover(self.root, container_id)
            return
        lifecycle.delete(c, force=True)


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


def resolve(name: str) -> Runtime:
    """The runtime `--runtime` names: hutch (the default), runc, crun, runsc (found on PATH), or a path to a
    runc-compatible binary."""
    if not name or name == HUTCH:
        return HutchRuntime()
    if "/" in name:
        if not (os.path.isfile(name) and os.access(name, os.X_OK)):
            raise HutchError(f"--runtime {name!r}: no executable file at that path")
        path = os.path.abspath(name)  # recorded as its name: later commands (and conmon's, in /) find it
        return CliRuntime(path, path)
    import shutil

    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        raise HutchError(
            f"--runtime {name!r}: cannot find the OCI runtime (expected hutch, {', '.join(KNOWN)} or a path)"
        )
    return CliRuntime(name, found)


def of_config(config: dict[str, object]) -> Runtime:
    """The runtime a container's config JSON records."""
    name = config.get("OCIRuntime")
    return resolve(name if isinstance(name, str) else HUTCH)


def _hutch_runtime_binary() -> str:
    """`hutch-runtime` beside the interpreter that runs us (the venv's bin), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "hutch-runtime")
    if os.access(here, os.X_OK):
        return here
    import shutil

    return shutil.which("hutch-runtime") or here


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
