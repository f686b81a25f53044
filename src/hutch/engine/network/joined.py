"""--network container:NAME: the other container's netns joined, and its /etc/hosts and resolv.conf shared."""

from __future__ import annotations

from hutch.engine.network import etcfiles, netns, plan
from hutch.errors import NotFoundError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.containers import Engine


def container_netns(engine: Engine, name: str) -> tuple[str, str]:
    """--network container:NAME: (its id, its named netns or its init's while it runs)."""
    from hutch.engine.db import NoSuchContainer

    try:
        other = engine.find(name)
    except NoSuchContainer:
        raise NotFoundError(f"--network container:{name}: no such container") from None
    other_plan = plan.load(engine.path(other, "userdata")) or {}
    if other_plan.get("mode") == "bridge":
        return other.id, netns.path(other.id)
    if other_plan.get("mode") == "container":
        return str(other_plan.get("target") or other.id), str(other_plan["path"])
    from hutch.runtime import container

    try:
        pid = container.load(engine.runtime_root, other.id).pid
    except NotFoundError:
        pid = 0
    from hutch.engine.containers import LIVE

    if other.state not in LIVE or not pid:
        raise StateError(f"--network container:{name}: the container must be running")
    return other.id, f"/proc/{pid}/ns/net"


def share_etc(engine: Engine, target: str, userdata: str, doc: dict[str, Any]) -> None:
    """A container in another's netns sees that one's /etc/hosts (after its own --add-host entries) and
    resolv.conf, as podman gives it."""
    from hutch.engine.db import NoSuchContainer

    try:
        other = engine.db.get(target)
    except NoSuchContainer:
        return
    for name in ("hosts", "resolv.conf"):
        try:
            with open(engine.path(other, f"userdata/{name}")) as f:
                text = f.read()
        except OSError:
            continue
        if name == "hosts":
            text = "".join(f"{ip}\t{host}\n" for host, ip in doc["add_hosts"] if ip != "host-gateway") + text
        etcfiles.write(userdata, name, text)
