"""The OCI runtime of an engine container, behind one interface: hutch's own runtime (called in-process as a
library; conmon runs its `hutch-runtime` binary) or another runtime's runc-compatible CLI (runc, crun, runsc
or a PATH; hutch.engine.cliruntime), each with its own state root under /run/hutch. A container records its
runtime's name in its config JSON (`OCIRuntime`); every later operation on it goes through that runtime.
"""

from __future__ import annotations

import os
import sys

from hutch.errors import HutchError, NotFoundError

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
            try:
                lifecycle.delete_leftover(self.root, container_id)
            except NotFoundError:
                pass
            return
        lifecycle.delete(c, force=True)


def resolve(name: str) -> Runtime:
    """The runtime `--runtime` names: hutch (the default), runc, crun, runsc (found on PATH), or a path to a
    runc-compatible binary."""
    if not name or name == HUTCH:
        return HutchRuntime()
    from hutch.engine.cliruntime import CliRuntime

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
