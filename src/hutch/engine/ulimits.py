"""--ulimit as podman reads it: NAME=SOFT[:HARD] into an OCI rlimit, checked against the host's hard limit."""

from __future__ import annotations

import resource

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_RLIMITS = {
    "as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}  # fmt: skip
_UNLIMITED = 2**64 - 1


def ulimit(text: str) -> dict[str, Any]:
    """--ulimit NAME=SOFT[:HARD] (-1 for unlimited): an rlimit; above the host's hard limit is an error."""
    name, sep, value = text.partition("=")
    kind = _RLIMITS.get(name.strip().lower())
    if not sep or kind is None:
        raise ConfigError(f"--ulimit {text!r}: expected NAME=SOFT[:HARD] with a name such as nofile or nproc")
    soft_text, _, hard_text = value.partition(":")
    soft = _limit(soft_text, text)
    hard = _limit(hard_text, text) if hard_text else soft
    if soft > hard:
        raise ConfigError(f"--ulimit {text!r}: the soft limit {soft} is above the hard limit {hard}")
    host = resource.getrlimit(getattr(resource, kind))[1]
    if host != resource.RLIM_INFINITY and hard > host:
        raise ConfigError(f"--ulimit {text!r}: the hard limit is above the host's ({host})")
    return {"type": kind, "soft": soft, "hard": hard}


def _limit(text: str, whole: str) -> int:
    if text.strip() == "-1":
        return _UNLIMITED
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--ulimit {whole!r}: {text!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"--ulimit {whole!r}: {text!r} must not be negative")
    return value
