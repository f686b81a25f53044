"""The engine's container records, in SQLite (WAL, synchronous=NORMAL: a commit is safe from a crash of the
process, the last ones may be lost with the machine's power) beside the image database: ROOT/containers.db."""

from __future__ import annotations

from hutch.errors import ExistsError, HutchError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from dataclasses import dataclass

else:
    from hutch.image.sqlite import sqlite3  # its C part when whole: the package's imports cost ~1 ms
    from hutch.record import dataclass

SCHEMA_VERSION = 3

# The first schema; hutch.engine.dbmigrate brings a database up to SCHEMA_VERSION.
_SCHEMA_V1 = """
CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    image_name TEXT NOT NULL,
    command TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    state TEXT NOT NULL,
    exit_code INTEGER,
    monitor_pid INTEGER,
    remove INTEGER NOT NULL DEFAULT 0,
    dir TEXT NOT NULL,
    stop_signal TEXT NOT NULL DEFAULT ''
)
"""

_COLUMNS = (
    "id, name, image_id, image_name, command, created, started, finished, state, exit_code, monitor_pid, "
    "remove, dir, stop_signal, config"
)


class NoSuchContainer(NotFoundError):
    """No container has this name or id (podman's `no such container`)."""


@dataclass(slots=True)
class Record:
    id: str
    name: str
    image_id: str
    image_name: str
    command: str
    created: float
    started: float | None
    finished: float | None
    state: str  # created, running, paused, exited
    exit_code: int | None
    monitor_pid: int | None
    remove: bool
    dir: str
    stop_signal: str = ""
    config: str = "{}"  # JSON: the create options and the image config's fields that inspect shows


class ContainerDB:
    """A connection to the container database; one per process (not shared across fork)."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path = path
        try:
            self._conn = _Conn(sqlite3.connect(path, timeout=timeout, isolation_level=None), path)
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            # Commits checkpoint the WAL once it has this many pages (default 1000): CLI commands leave the
            # db open at exit (Engine.close), and the next one reads the whole WAL to recover it (~1.5 us a
            # page); a run --rm writes about a dozen pages.
            self._conn.execute("PRAGMA wal_autocheckpoint = 128")
            self._migrate()
        except sqlite3.Error as e:
            raise HutchError(f"{path}: cannot open the container database: {e}") from e

    def close(self) -> None:
        self._conn.close()

    def _version(self) -> int:
        c = self._conn
        if c.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone() is None:
            return 0
        return int(c.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)

    def _migrate(self) -> None:
        # A read first: a current schema takes no write lock (every command opens the db; logs -f per poll).
        if self._version() == SCHEMA_VERSION:
            return
        from hutch.engine import dbmigrate

        dbmigrate.migrate(self._conn, self.path)

    def add(self, rec: Record) -> None:
        try:
            self._conn.execute(
                f"INSERT INTO containers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.id,
                    rec.name,
                    rec.image_id,
                    rec.image_name,
                    rec.command,
                    rec.created,
                    rec.started,
                    rec.finished,
                    rec.state,
                    rec.exit_code,
                    rec.monitor_pid,
                    int(rec.remove),
                    rec.dir,
                    rec.stop_signal,
                    rec.config,
                ),
            )
        except sqlite3.IntegrityError:
            row = self._conn.execute("SELECT id FROM containers WHERE name = ?", (rec.name,)).fetchone()
            if row is None:
                raise
            raise ExistsError(
                f'the container name "{rec.name}" is already in use by {row[0]}. You have to remove that '
                "container to be able to reuse that name: that name is already in use"
            ) from None

    def update(self, container_id: str, **fields: object) -> None:
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._conn.execute(f"UPDATE containers SET {sets} WHERE id = ?", (*fields.values(), container_id))

    def rename(self, container_id: str, name: str) -> None:
        try:
            self._conn.execute("UPDATE containers SET name = ? WHERE id = ?", (name, container_id))
        except sqlite3.IntegrityError:
            row = self._conn.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
            raise ExistsError(
                f'the container name "{name}" is already in use by {row[0] if row else "another container"}. '
                "You have to remove that container to be able to reuse that name: that name is already in use"
            ) from None

    def uses_image(self, image_id: str) -> list[str]:
        """The ids of the containers made from the image `image_id` (its hex)."""
        rows = self._conn.execute("SELECT id FROM containers WHERE image_id = ?", (image_id,)).fetchall()
        return [str(r[0]) for r in rows]

    def remove(self, container_id: str) -> None:
        self._conn.execute("DELETE FROM containers WHERE id = ?", (container_id,))

    def all(self) -> list[Record]:
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM containers ORDER BY created").fetchall()
        return [_record(r) for r in rows]

    def names(self) -> set[str]:
        """Every container's name (`all` would read every record's config too)."""
        return {str(r[0]) for r in self._conn.execute("SELECT name FROM containers").fetchall()}

    def get(self, container_id: str) -> Record:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM containers WHERE id = ?", (container_id,)
        ).fetchone()
        if row is None:
            raise NoSuchContainer(f'no container with ID "{container_id}" found: no such container')
        return _record(row)

    def find(self, name_or_id: str) -> Record:
        """By exact name, full id, or a unique id prefix."""
        c = self._conn
        row = c.execute(f"SELECT {_COLUMNS} FROM containers WHERE name = ?", (name_or_id,)).fetchone()
        if row is None and name_or_id and all(ch in "0123456789abcdef" for ch in name_or_id):
            rows = c.execute(
                f"SELECT {_COLUMNS} FROM containers WHERE substr(id, 1, ?) = ?", (len(name_or_id), name_or_id)
            ).fetchall()
            if len(rows) > 1:
                raise HutchError(
                    f'more than one result for container "{name_or_id}": container already exists'
                )
            row = rows[0] if rows else None
        if row is None:
            raise NoSuchContainer(f'no container with name or ID "{name_or_id}" found: no such container')
        return _record(row)


class _Conn:
    """A connection whose errors are HutchErrors naming the database (an IntegrityError stays as it is)."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self._path = path

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as e:
            raise HutchError(f"{self._path}: {e}") from e

    def close(self) -> None:
        self._conn.close()


def _record(row: tuple[object, ...]) -> Record:
    (
        cid,
        name,
        image_id,
        image_name,
        command,
        created,
        started,
        finished,
        state,
        code,
        mon,
        rm,
        d,
        sig,
        cfg,
    ) = row
    return Record(
        id=str(cid),
        name=str(name),
        image_id=str(image_id),
        image_name=str(image_name),
        command=str(command),
        created=float(created),  # type: ignore[arg-type]
        started=None if started is None else float(started),  # type: ignore[arg-type]
        finished=None if finished is None else float(finished),  # type: ignore[arg-type]
        state=str(state),
        exit_code=None if code is None else int(code),  # type: ignore[call-overload]
        monitor_pid=None if mon is None else int(mon),  # type: ignore[call-overload]
        remove=bool(rm),
        dir=str(d),
        stop_signal=str(sig or ""),
        config=str(cfg or "{}"),
    )
