"""`hutch images` (`image ls`) as podman lists them: the table, `-q`, `--format json` or a Go template (with
`table` for headers and padded columns), `--digests`, `--no-trunc`, `--noheading`, and `--filter`
(reference=, dangling=, label=, before=, since=; several values of one key match any, different keys all).

One row per tag (an untagged image is one `<none>` row), newest first. Templates go through the renderer of
cli/templates.py, over podman's image report fields (.ID, .Repository, .Tag, .Digest, .CreatedSince,
.CreatedAt, .Size, ...).
"""

from __future__ import annotations

import argparse
import sys

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.image.db import Image
    from hutch.image.storage import Storage

FILTER_KEYS = ("reference", "dangling", "label", "before", "since")
# The header of a template field in a `table` format, where it is not the field's name in upper case.
HEADERS = {"ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "ReadOnly": "R/O"}
FIELDS = (
    "ID",
    "Repository",
    "Tag",
    "Digest",
    "CreatedSince",
    "CreatedAt",
    "Created",
    "Size",
    "VirtualSize",
    "SharedSize",
    "Containers",
    "ReadOnly",
    "Dangling",
    "Labels",
    "History",
)


class FilterError(HutchError):
    """A --filter that hutch does not know or cannot read."""


def parse_filters(texts: list[str]) -> dict[str, list[str]]:
    """`--filter KEY=VALUE` flags, by key; an unknown key or a flag without `=` is an error."""
    out: dict[str, list[str]] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep:
            raise FilterError(f'invalid image filter "{text}": must be in the format "filter=value"')
        if key not in FILTER_KEYS:
            raise FilterError(f'invalid image filter "{key}": the known filters are {", ".join(FILTER_KEYS)}')
        if key == "dangling" and value not in ("true", "false"):
            raise FilterError(f'invalid image filter "{text}": dangling takes true or false')
        out.setdefault(key, []).append(value)
    return out


def reference_matches(pattern: str, tag: str) -> bool:
    """podman's reference filter: a glob over the stored name with or without its tag, also matching the
    name's last components (`busybox` and `busy*:1` match `127.0.0.1:5000/busybox:1`)."""
    import fnmatch

    from hutch.image.storage import repository_and_tag

    repo, tag_part = repository_and_tag(tag)
    names = [repo] if tag_part == "<none>" else [repo, f"{repo}:{tag_part}"]
    return any(fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(n, "*/" + pattern) for n in names)


def _labels(storage: Storage, image: Image) -> dict[str, str]:
    config = storage.config_document(image).get("config") or {}
    labels = config.get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _created(image: Image) -> float:
    from hutch.cli import format as fmt

    t = fmt.parse_time(image.created)
    return t.timestamp() if t else 0.0


def select(storage: Storage, images: list[Image], filters: dict[str, list[str]]) -> list[Image]:
    """The images every filter key lets through."""
    out = []
    bounds: dict[str, float] = {}
    for key in ("before", "since"):
        for value in filters.get(key, []):
            t = _created(storage.find(value))
            bounds[key] = min(bounds.get(key, t), t) if key == "before" else max(bounds.get(key, t), t)
    for image in images:
        if "dangling" in filters and any((not image.tags) != (v == "true") for v in filters["dangling"]):
            continue
        if "reference" in filters and not any(
            reference_matches(p, t) for p in filters["reference"] for t in image.tags
        ):
            continue
        if "before" in bounds and not _created(image) < bounds["before"]:
            continue
        if "since" in bounds and not _created(image) > bounds["since"]:
            continue
        if "label" in filters:
            labels = _labels(storage, image)
            wanted = [v.partition("=") for v in filters["label"]]
            if not all(k in labels and (not sep or labels[k] == v) for k, sep, v in wanted):
                continue
        out.append(image)
    return out


def _rows(image: Image, no_trunc: bool) -> list[dict[str, Any]]:
    """podman's image report, one per tag (untagged: one `<none>` row)."""
    from hutch.cli import format as fmt
    from hutch.image.storage import repository_and_tag

    names = _display_names(image.tags)
    created = fmt.parse_time(image.created)
    out = []
    for name in names:
        repo, tag = repository_and_tag(name) if name else ("<none>", "<none>")
        out.append(
            {
                "ID": str(image.id) if no_trunc else image.id.short,
                "Repository": repo,
                "Tag": tag,
                "Digest": str(image.digest),
                "CreatedSince": fmt.ago(image.created),
                "Created": fmt.ago(image.created),
                "CreatedAt": str(created) if created else "",
                "Size": fmt.human_size(image.size),
                "VirtualSize": fmt.human_size(image.size),
                "SharedSize": fmt.human_size(0),
                "Containers": 0,
                "ReadOnly": False,
                "Dangling": not image.tags,
                "Labels": None,
                "History": None,
            }
        )
    return out


def _display_names(tags: list[str]) -> list[str]:
    """The names that get a row: each tag, and a `repo@digest` name whose repository has no tag (shown with
    TAG <none>); an image without names is one row of `<none>`."""
    from hutch.image.storage import repository_and_tag

    tagged = [t for t in tags if "@" not in t]
    repos = {repository_and_tag(t)[0] for t in tagged}
    out = list(tagged)
    for t in tags:
        repo = repository_and_tag(t)[0]
        if "@" in t and repo not in repos:
            repos.add(repo)
            out.append(t)
    return out or [""]


def _json_doc(storage: Storage, image: Image) -> dict[str, Any]:
    from hutch.cli import format as fmt

    created = fmt.parse_time(image.created)
    names = [t for t in image.tags if "@" not in t] or None
    return {
        "Id": image.id.hex,
        "ParentId": "",
        "RepoTags": names,
        "RepoDigests": storage.repo_digests(image),
        "Size": image.size,
        "SharedSize": 0,
        "VirtualSize": image.size,
        "Labels": _labels(storage, image) or None,
        "Containers": 0,
        "Names": names,
        "Digest": str(image.digest),
        "History": names,
        "Created": int(created.timestamp()) if created else 0,
        "CreatedAt": image.created or "",
    }


def render_template(template: str, rows: list[dict[str, Any]], heading: bool) -> str:
    """podman's --format (see hutch.cli.templates.render_rows), with images' column titles."""
    from hutch.cli import templates

    titles = {f: HEADERS.get(f, templates.title(f)) for f in FIELDS}
    default = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    return templates.render_rows(template, rows, titles, heading, default)


def list_images(args: argparse.Namespace, storage: Storage) -> int:
    """`hutch images` with the parsed flags `args`, over `storage`."""
    filters = parse_filters(args.filter)
    images = select(storage, list(storage.iter_images()), filters)
    no_trunc = args.no_trunc
    if args.quiet:
        seen: list[str] = []
        for img in images:
            text = str(img.id) if no_trunc else img.id.short
            if text not in seen:
                seen.append(text)
        sys.stdout.write("".join(s + "\n" for s in seen))
        return 0
    if args.format == "json":
        import json

        print(json.dumps([_json_doc(storage, img) for img in images], indent=4))
        return 0
    rows = [row for img in images for row in _rows(img, no_trunc)]
    template = args.format
    if not template:
        digest = "\t{{.Digest}}" if args.digests else ""
        template = "table {{.Repository}}\t{{.Tag}}" + digest + "\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    sys.stdout.write(render_template(template, rows, not args.noheading))
    return 0
