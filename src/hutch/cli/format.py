"""Output as podman prints it: tables padded like Go's tabwriter, human sizes and durations (go-units), and
the Go templates of --format (`render`)."""

from __future__ import annotations

from hutch.errors import HutchError

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
    """A Go template of simple dotted paths, as podman users script them: `{{.State.Status}}`,
    `{{ .Config.Cmd }}`, `{{json .Config}}`, text around them; fields match exactly, else ignoring case."""
    import re

    def value(path: str) -> Any:
        node = doc
        if path == ".":
            return node
        for part in path.lstrip(".").split("."):
            if not isinstance(node, dict):
                raise HutchError(f"template: {template}: can't evaluate field {part}")
            if part in node:
                node = node[part]
                continue
            found = [k for k in node if k.lower() == part.lower()]
            if not found:
                raise HutchError(f"template: {template}: can't evaluate field {part}")
            node = node[found[0]]
        return node

    def sub(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr.startswith("json "):
            import json

            return json.dumps(value(expr[5:].strip()))
        if not expr.startswith("."):
            raise HutchError(f"template: {template}: only .Field paths and json are supported")
        return _go_text(value(expr))

    return re.sub(r"\{\{(.*?)\}\}", sub, template.replace("\\n", "\n").replace("\\t", "\t"))


def render_rows(
    template: str, rows: list[dict[str, Any]], titles: dict[str, str], heading: bool, default: str = ""
) -> str:
    """podman's --format for a listing: `table ...` prints a header from `titles` (unless `heading` is
    false) and pads the tab-separated columns (`table` alone renders `default`); a plain template prints
    each row as it renders."""
    is_table = template.startswith("table")
    body = template[len("table") :].lstrip() if is_table else template
    if is_table and not body:
        body = default
    lines = [render(body, row) for row in rows]
    if not is_table:
        return "".join(line + "\n" for line in lines)
    if heading:
        lines.insert(0, render(body, titles))
    cells = [line.split("\t") for line in lines]
    width = max((len(c) for c in cells), default=0)
    return table([c + [""] * (width - len(c)) for c in cells]) if cells else ""


def title(field: str) -> str:
    """A field's column title as podman's report headers make it: `CreatedAt` -> `CREATED AT`."""
    import re

    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", field).upper()


def _go_text(v: Any) -> str:
    """A value as Go's text/template prints it."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + " ".join(_go_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_text(v[k])}" for k in sorted(v)) + "]"
    return str(v)
