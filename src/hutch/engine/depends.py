"""Which containers depend on a container (podman rm --depend): those that joined its network namespace
(--network container:X, a pod's members through its infra), found through their network plans."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


def dependents(engine: Engine, rec: Record) -> list[Record]:
    """The containers that depend on `rec`, directly or not, those that depend on others first."""
    from hutch.engine.network import plan

    targets = {}
    for other in engine.list(all=True):
        doc = plan.load(engine.path(other, "userdata")) or {}
        if doc.get("target"):
            targets[other.id] = (other, str(doc["target"]))
    out: list[Record] = []

    def visit(target: str) -> None:
        for other, on in targets.values():
            if on == target and all(o.id != other.id for o in out):
                visit(other.id)
                out.append(other)

    visit(rec.id)
    return out


def removal_order(engine: Engine, names: list[str]) -> list[str]:
    """rm --depend: each named container after the containers that depend on it."""
    from hutch.engine.db import NoSuchContainer

    order: list[str] = []
    for name in names:
        try:
            rec = engine.find(name)
        except NoSuchContainer:
            order.append(name)  # rm reports it
            continue
        for other in dependents(engine, rec):
            if other.id not in order:
                order.append(other.id)
        if rec.id not in order:
            order.append(rec.id)
    return order
