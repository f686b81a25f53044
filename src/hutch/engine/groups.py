"""--group-add as podman reads it: gids, or group names looked up in the container's /etc/group."""

from __future__ import annotations

from hutch.errors import ConfigError


def group_ids(rootfs: str, groups: list[str]) -> list[int]:
    """--group-add: gids, or group names from the rootfs's /etc/group; keep-groups is accepted."""
    from hutch.engine.spec import _read_in_root

    out: list[int] = []
    table: list[list[str]] | None = None
    for g in groups:
        if g == "keep-groups":
            continue
        if g.isdigit():
            out.append(int(g))
            continue
        if table is None:
            text = _read_in_root(rootfs, "/etc/group")
            table = [line.split(":") for line in text.splitlines() if line.count(":") >= 3]
        entry = next((e for e in table if e[0] == g and e[2].isdigit()), None)
        if entry is None:
            raise ConfigError(
                f"--group-add {g!r}: unable to find group {g}: no matching entries in group file"
            )
        out.append(int(entry[2]))
    return out
