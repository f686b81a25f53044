"""Creating the image database's tables, and upgrading those of an older hutch (see hutch.image.db for the
schema); run once per database file, in one write transaction."""

from __future__ import annotations

import time

from hutch.image.db import _SCHEMA_V1, _SCHEMA_V2, SCHEMA_VERSION, Database, DatabaseError
from hutch.image.dbwrite import Transaction


def migrate(db: Database) -> None:
    with Transaction(db) as c:
        exists = c.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if exists:
            row = c.execute("SELECT max(version) FROM schema_version").fetchone()
            version = row[0] or 0
        else:
            c.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied REAL NOT NULL)")
            version = 0
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"{db.path}: schema version {version} is newer than this hutch knows ({SCHEMA_VERSION})"
            )
        if version < 1:
            for statement in _SCHEMA_V1.split(";"):
                if statement.strip():
                    c.execute(statement)
            c.execute("INSERT INTO schema_version VALUES (1, ?)", (time.time(),))
        if version < 2:
            for statement in _SCHEMA_V2.split(";"):
                if statement.strip():
                    c.execute(statement)
            c.execute("INSERT INTO schema_version VALUES (2, ?)", (time.time(),))
