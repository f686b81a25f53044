"""Restart policies, as podman has them: no, on-failure[:N] (a non-zero exit, at most N restarts when N is
given), always and unless-stopped (podman treats it as always). `hutch stop` (and rm) mark the container
stopped by the user, which no policy restarts. The cleanup exit command applies the policy.

The policy is in the container's config JSON (`RestartPolicy`); what changes with each run (RestartCount,
StoppedByUser) is in userdata/restart.json.
"""

from __future__ import annotations

import os

from hutch.errors import HutchError

POLICIES = ("no", "on-failure", "always", "unless-stopped")
STATE_FILE = "restart.json"


def parse(text: str) -> dict[str, object]:
    """`--restart` as podman's inspect shows it: {"Name": ..., "MaximumRetryCount": N}."""
    name, sep, count = text.partition(":")
    if name not in POLICIES:
        raise HutchError(
            f"--restart {text!r}: invalid restart policy, expected no, on-failure[:N], always or unless-stopped"
        )
    retries = 0
    if sep:
        if name != "on-failure":
            raise HutchError(f"--restart {text!r}: a retry count is only valid with on-failure")
        if not count.isdigit():
            raise HutchError(f"--restart {text!r}: the retry count must be a non-negative integer")
        retries = int(count)
    return {"Name": "" if name == "no" else name, "MaximumRetryCount": retries}


def load(userdata: str) -> dict[str, object]:
    from hutch import jsonfast

    try:
        with open(os.path.join(userdata, STATE_FILE)) as f:
            doc = jsonfast.loads(f.read())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def save(userdata: str, **changes: object) -> None:
    """Merge `changes` into the state file. `stop` and conmon's cleanup may save at once: the read, merge
    and rename happen under a lock on userdata (flock of the directory), so neither change is lost."""
    import fcntl

    from hutch import jsonfast

    try:
        fd = os.open(userdata, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # the container was removed meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        doc = load(userdata)
        doc.update(changes)
        path = os.path.join(userdata, STATE_FILE)
        try:
            with open(f"{path}.tmp", "w") as f:
                f.write(jsonfast.dumps(doc))
            os.rename(f"{path}.tmp", path)
        except FileNotFoundError:
            pass  # removed while we waited for the lock
    finally:
        os.close(fd)


def count(userdata: str) -> int:
    n = load(userdata).get("RestartCount", 0)
    return n if isinstance(n, int) else 0


def wanted(policy: dict[str, object], exit_code: int | None, userdata: str) -> bool:
    """Whether the container that just exited with `exit_code` is to be started again."""
    state = load(userdata)
    if state.get("StoppedByUser"):
        return False
    name = policy.get("Name") or ""
    if name in ("always", "unless-stopped"):
        return True
    if name != "on-failure" or exit_code == 0:
        return False
    limit = policy.get("MaximumRetryCount") or 0
    return not (isinstance(limit, int) and limit > 0 and count(userdata) >= limit)
