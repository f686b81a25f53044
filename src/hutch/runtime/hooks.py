"""OCI hooks: run one list of hooks in order, each with the container state on its stdin."""

import subprocess
from collections.abc import Callable

from hutch.errors import HutchError
from hutch.oci.config import Hook


def run_hooks(
    kind: str, hooks: list[Hook], state_json: str, on_error: Callable[[str], None] | None = None
) -> None:
    """Run `hooks` in order; the first failure raises, naming the hook and the phase.

    With `on_error` (poststart, poststop: the spec wants a warning and the rest to go on), each failure is
    passed to it instead and the next hook runs."""
    for i, hook in enumerate(hooks):
        try:
            _run_one(kind, i, hook, state_json)
        except HutchError as e:
            if on_error is None:
                raise
            on_error(str(e))


def _run_one(kind: str, i: int, hook: Hook, state_json: str) -> None:
    argv = hook.args or [hook.path]
    try:
        proc = subprocess.run(
            argv,
            executable=hook.path,
            input=state_json.encode(),
            env=dict(e.split("=", 1) for e in hook.env if "=" in e),
            capture_output=True,
            timeout=hook.timeout,
            close_fds=True,
        )
    except subprocess.TimeoutExpired:
        raise HutchError(f"{kind} hook #{i} ({hook.path}) timed out after {hook.timeout}s") from None
    except OSError as e:
        raise HutchError(f"{kind} hook #{i} ({hook.path}): {e.strerror}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = f": {err[-1]}" if err else ""
        raise HutchError(f"{kind} hook #{i} ({hook.path}) exited with status {proc.returncode}{detail}")
