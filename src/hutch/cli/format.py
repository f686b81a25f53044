"""Output as podman prints it: tables padded like Go's tabwriter, human sizes and durations (go-units), times.
The Go templates of --format are hutch.cli.templates's (`hutch ps` and the other tables do without them)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from typing import Any

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float) -> str:
    """go-units HumanSizeWithPrecision(size, 3): decimal units, three significant digits (`5.87 MB`)."""
    i = 0
    while size >= 1000 and i < len(_DECIMAL_UNITS) - 1:
        size /= 1000
        i += 1
    return f"{size:.3g} {_DECIMAL_UNITS[i]}"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: `Less than a second`, `About a minute`, `3 hours`, `2 weeks`, `2 years`."""
    if seconds < 1:
        return "Less than a second"
    if int(seconds) == 1:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def parse_time(text: str | None) -> datetime.datetime | None:
    """An RFC 3339 time from an image config (nanoseconds allowed), or None. (datetime is imported here:
    `hutch ps` never needs it.)"""
    import datetime

    if not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # Python takes at most microseconds: cut a longer fraction.
    dot = value.find(".")
    if dot >= 0:
        end = dot + 1
        while end < len(value) and value[end].isdigit():
            end += 1
        value = value[: dot + 1] + value[dot + 1 : end][:6] + value[end:]
    try:
        t = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=datetime.UTC)


def ago(text: str | None, now: datetime.datetime | None = None) -> str:
    """podman's CREATED column: `2 years ago`, or `N/A` without a time."""
    import datetime

    t = parse_time(text)
    if t is None:
        return "N/A"
    now = now or datetime.datetime.now(datetime.UTC)
    return human_duration(max(0.0, (now - t).total_seconds())) + " ago"


def table(rows: list[list[str]]) -> str:
    """Columns as podman's tabwriter pads them (minimum width 12, padding 2); the last is not padded."""
    if not rows:
        return ""
    widths = [max(12, max(len(r[i]) for r in rows) + 2) for i in range(len(rows[0]) - 1)]
    lines = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)] + [r[-1]]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def render(template: str, doc: Any) -> str:
    """A Go template through `doc` (hutch.cli.templates.render)."""
    from hutch.cli import templates

    return templates.render(template, doc)
