"""Go's duration syntax (time.ParseDuration), which the flags of runc and podman take: `300ms`, `1.5s`,
`1h30m`; a sign, and a bare `0`, are allowed as in Go. Standard library only: the runtime uses it too."""

from __future__ import annotations

NANOSECONDS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def parse_ns(text: str) -> int:
    """The duration in nanoseconds; ValueError, saying what is wrong, when `text` is not one."""
    rest = text.strip()
    sign = -1 if rest.startswith("-") else 1
    rest = rest.lstrip("+-")
    if rest == "0":
        return 0
    if not rest:
        raise ValueError("an empty duration")
    total = 0
    while rest:
        digits = 0
        while digits < len(rest) and (rest[digits].isdigit() or rest[digits] == "."):
            digits += 1
        end = digits
        while end < len(rest) and not (rest[end].isdigit() or rest[end] == "."):
            end += 1
        number, unit = rest[:digits], rest[digits:end]
        if not number or number == "." or unit not in NANOSECONDS:
            raise ValueError("not a duration (such as 300ms, 1.5s or 1h30m)")
        total += round(float(number) * NANOSECONDS[unit])
        rest = rest[end:]
    return sign * total


def parse_seconds(text: str) -> float:
    return parse_ns(text) / 10**9
