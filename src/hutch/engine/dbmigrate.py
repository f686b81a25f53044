"""The container database's schema brought up to SCHEMA_VERSION (hutch.engine.db opens it; a current one never
gets here): each version's change, applied in one write transaction."""

from __future__ import annotations

import time

from hutch.engine.db import _SCHEMA_V1, SCHEMA_VERSION
from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.db import _Conn

# v2: what `create` was asked (Cmd, Entrypoint, Env, ...) as JSON, for inspect and start.
_SCHEMA_V2 = "ALTER TABLE containers ADD COLUMN config TEXT NOT NULL DEFAULT '{}'"

# v3: volumes (ROOT/volumes/NAME/_data); `anonymous` ones go with `rm -v`, `needs_copy` until the first
# mount has copied the image's content at the destination into it.
_SCHEMA_V3 = """
CREATE TABLE volumes (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    anonymous INTEGER NOT NULL DEFAULT 0,
    needs_copy INTEGER NOT NULL DEFAULT 1
)
"""


def migrate(c: _Conn, path: str) -> None:
    c.execute("BEGIN IMMEDIATE")
    try:
        c.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied REAL NOT NULL)"
        )
        version = c.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        if version > SCHEMA_VERSION:
            raise HutchError(f"{path}: schema version {version} is newer than this hutch knows")
        if version < 1:
            c.execute(_SCHEMA_V1)
            c.execute("INSERT INTO schema_version VALUES (1, ?)", (time.time(),))
        if version < 2:
            c.execute(_SCHEMA_V2)
            c.execute("INSERT INTO schema_version VALUES (2, ?)", (time.time(),))
        if version < 3:
            c.execute(_SCHEMA_V3)
            c.execute("INSERT INTO schema_version VALUES (3, ?)", (time.time(),))
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
