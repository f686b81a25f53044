"""The Go templates of --format and inspect -f, as podman renders them: `render` for one document,
`render_rows` for a listing (`table ...` with a header and padded columns)."""

from __future__ import annotations

from hutch.cli.format import table
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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


def print_documents(template: str | None, docs: list[Any]) -> None:
    """What an inspect command prints: the documents as one JSON array, or each through a Go template."""
    if template and template != "json":
        for doc in docs:
            print(render(template, doc))
    else:
        from hutch.cli.main import _json

        print(_json(docs))


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
