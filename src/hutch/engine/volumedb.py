"""The engine's volume records, in the container database (its volumes table): ROOT/volumes/NAME/_data is
hutch.engine.volumes'."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from dataclasses import dataclass

    from hutch.engine.db import ContainerDB
else:
    from hutch.image.sqlite import sqlite3
    from hutch.record import dataclass

_VOLUME_COLUMNS = "name, created, labels, anonymous, needs_copy"


@dataclass(slots=True)
class VolumeRecord:
    name: str
    created: float
    labels: str = "{}"  # JSON
    anonymous: bool = False
    needs_copy: bool = True


def add(db: ContainerDB, vol: VolumeRecord) -> bool:
    """Insert `vol`; False when a volume of that name exists already."""
    try:
        db._conn.execute(
            f"INSERT INTO volumes ({_VOLUME_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (vol.name, vol.created, vol.labels, int(vol.anonymous), int(vol.needs_copy)),
        )
    except sqlite3.IntegrityError:
        return False
    return True


def get(db: ContainerDB, name: str) -> VolumeRecord | None:
    row = db._conn.execute(f"SELECT {_VOLUME_COLUMNS} FROM volumes WHERE name = ?", (name,)).fetchone()
    return None if row is None else _volume(row)


def all(db: ContainerDB) -> list[VolumeRecord]:
    rows = db._conn.execute(f"SELECT {_VOLUME_COLUMNS} FROM volumes ORDER BY created").fetchall()
    return [_volume(r) for r in rows]


def copied(db: ContainerDB, name: str) -> None:
    db._conn.execute("UPDATE volumes SET needs_copy = 0 WHERE name = ?", (name,))


def remove(db: ContainerDB, name: str) -> None:
    db._conn.execute("DELETE FROM volumes WHERE name = ?", (name,))


def _volume(row: tuple[object, ...]) -> VolumeRecord:
    name, created, labels, anonymous, needs_copy = row
    when = float(created)  # type: ignore[arg-type]
    return VolumeRecord(str(name), when, str(labels or "{}"), bool(anonymous), bool(needs_copy))
