"""Image records, tags, layers and blob references in SQLite (default /var/lib/hutch/hutch.db).

The database is opened in WAL mode with foreign keys on, and a busy timeout so that several `hutch` commands
can write at once: every write is one `BEGIN IMMEDIATE` transaction, which takes the write lock up front (no
lock upgrades, so no deadlocks between writers) and waits for it up to the timeout.

Tables (schema version 2, in `schema_version`):

- `images`: id (the config digest), manifest digest and media type, the index digest when the reference named an
  index (the digest the user pulled, which podman shows), created (from the config), size (manifest, config and
  the unpacked layers, as podman counts it), platform (os, architecture, variant), added (when it was stored).
- `tags`: reference name (normalized by the caller, e.g. `docker.io/library/busybox:latest`) -> image id.
- `blobs`: each blob the store holds for an image, with its size and when a pull last claimed it.
- `image_blobs`: which blobs an image references (its manifest, config and compressed layers).
- `layers`: unpacked layers by diff_id, with the compressed blob they came from, the unpacked directory and a
  state: `pulling` while being unpacked, `unpacked` once complete; `unpacked_size` is the layer's tar size.

Version 2 adds `images.index_digest` and recounts `images.size` of older records from their layers' unpacked
sizes (version 1 counted the compressed layers).
- `image_layers`: an image's layers, in order (position 0 is the base).

The writes (a pull's claims and records, tags, removal, garbage collection) are in hutch.image.dbwrite and
the schema's creation and upgrades in hutch.image.dbmigrate: `run` only reads.
"""

from __future__ import annotations

import os
import time

from hutch.errors import HutchError, NotFoundError
from hutch.image.sqlite import sqlite3
from hutch.oci import digest as _digest
from hutch.oci.digest import Digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from dataclasses import dataclass, field
    from typing import Literal

    from hutch.image.dbwrite import Garbage, LayerRef

    LayerState = Literal["pulling", "unpacked"]
else:
    from hutch.record import dataclass, field

DEFAULT_PATH = "/var/lib/hutch/hutch.db"
SCHEMA_VERSION = 2
# Shortest id prefix accepted by `lookup`, as podman's (3 hex characters).
MIN_PREFIX = 3

_SCHEMA_V1 = """
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    created TEXT,
    size INTEGER NOT NULL,
    os TEXT NOT NULL,
    architecture TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',
    added REAL NOT NULL
);
CREATE INDEX images_manifest ON images (manifest_digest);
CREATE TABLE tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE
);
CREATE INDEX tags_image ON tags (image_id);
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    claimed REAL NOT NULL
);
CREATE TABLE image_blobs (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES blobs (digest),
    PRIMARY KEY (image_id, digest)
);
CREATE INDEX image_blobs_digest ON image_blobs (digest);
CREATE TABLE layers (
    diff_id TEXT PRIMARY KEY,
    digest TEXT,
    size INTEGER,
    unpacked_size INTEGER,
    path TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pulling', 'unpacked')),
    claimed REAL NOT NULL
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    diff_id TEXT NOT NULL REFERENCES layers (diff_id),
    digest TEXT,
    PRIMARY KEY (image_id, position)
);
CREATE INDEX image_layers_diff_id ON image_layers (diff_id);
"""

# Version 2: the index digest of an image pulled through an index; sizes count unpacked layers (a layer without
# a recorded unpacked size counts its compressed size, the best the old record knows).
_SCHEMA_V2 = """
ALTER TABLE images ADD COLUMN index_digest TEXT;
CREATE INDEX images_index ON images (index_digest);
UPDATE images SET size =
    coalesce((SELECT sum(b.size) FROM blobs b WHERE b.digest IN (images.manifest_digest, images.id)), 0)
    + coalesce((SELECT sum(coalesce(l.unpacked_size, l.size, 0)) FROM image_layers il
                JOIN layers l ON l.diff_id = il.diff_id WHERE il.image_id = images.id), 0)
"""


class DatabaseError(HutchError):
    """The image database cannot be opened, is from a newer hutch, or a write failed."""


class AmbiguousError(HutchError):
    """An id prefix matches more than one image."""


@dataclass
class Image:
    id: Digest
    manifest_digest: Digest
    media_type: str
    size: int
    os: str
    architecture: str
    variant: str = ""
    created: str | None = None
    added: float = 0.0
    tags: list[str] = field(default_factory=list)
    layers: list[Digest] = field(default_factory=list)  # diff_ids, base first
    index_digest: Digest | None = None  # the index the reference named, when it named one

    @property
    def digest(self) -> Digest:
        """The digest podman shows for the image: the one pulled (the index's, when it was an index)."""
        return self.index_digest or self.manifest_digest

    @property
    def platform(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)


@dataclass
class Layer:
    diff_id: Digest
    path: str
    state: LayerState
    digest: Digest | None = None
    size: int | None = None
    unpacked_size: int | None = None


class Database:
    """A connection to the image database; one per thread (sqlite3 connections are not shared)."""

    def __init__(self, path: str = DEFAULT_PATH, *, timeout: float = 30.0) -> None:
        self.path = path
        directory = os.path.dirname(path)
        try:
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            self._conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=True)
        except (OSError, sqlite3.Error) as e:
            raise DatabaseError(f"{path}: cannot open the image database: {e}") from e
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            mode = self._wal(timeout)
            if mode != "wal":
                raise DatabaseError(f"{path}: cannot switch the database to WAL mode (got {mode!r})")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.Error as e:
            self._conn.close()
            raise DatabaseError(f"{path}: cannot open the image database: {e}") from e

    def _wal(self, timeout: float) -> str:
        """Switch to WAL mode (once per database file). SQLite does not call the busy handler while another
        connection switches at the same moment, so retry here until `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                mode = str(self._conn.execute("PRAGMA journal_mode").fetchone()[0])
                if mode != "wal":
                    mode = str(self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
                return mode
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        """Create or upgrade the schema; a read first, without the write lock migrating takes (every command
        opens the database; `run` should not wait behind a pull's transaction for it)."""
        c = self._conn
        known = c.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone() is not None
        if known and c.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION:
            return
        from hutch.image import dbmigrate

        dbmigrate.migrate(self)

    def schema_version(self) -> int:
        return int(self._conn.execute("SELECT max(version) FROM schema_version").fetchone()[0])

    # Writes: hutch.image.dbwrite has them and says what they do.

    def claim_blob(self, digest: Digest, size: int) -> None:
        from hutch.image import dbwrite

        dbwrite.claim_blob(self, digest, size)

    def begin_layer(
        self, diff_id: Digest, path: str, digest: Digest | None = None, size: int | None = None
    ) -> Layer:
        from hutch.image import dbwrite

        return dbwrite.begin_layer(self, diff_id, path, digest, size)

    def finish_layer(self, diff_id: Digest, unpacked_size: int | None = None) -> None:
        from hutch.image import dbwrite

        dbwrite.finish_layer(self, diff_id, unpacked_size)

    def record_image(
        self,
        image: Image,
        layers: Sequence[LayerRef],
        blobs: Sequence[tuple[Digest, int]],
        tags: Sequence[str] = (),
    ) -> None:
        from hutch.image import dbwrite

        dbwrite.record_image(self, image, layers, blobs, tags)

    def tag(self, name: str, image_id: Digest) -> None:
        from hutch.image import dbwrite

        dbwrite.tag(self, name, image_id)

    def untag(self, name: str) -> Digest:
        from hutch.image import dbwrite

        return dbwrite.untag(self, name)

    def remove_image(self, image_id: Digest) -> None:
        from hutch.image import dbwrite

        dbwrite.remove_image(self, image_id)

    def collect(self, grace: float = 600.0) -> Garbage:
        from hutch.image import dbwrite

        return dbwrite.collect(self, grace)

    # Reads.

    def lookup(self, ref: str) -> Image:
        """Find an image by tag name, by `name@digest` or a bare manifest digest, or by id (`sha256:...`,
        full hex, or a unique prefix of at least MIN_PREFIX characters). NotFoundError, or AmbiguousError."""
        c = self._conn
        row = c.execute("SELECT image_id FROM tags WHERE name = ?", (ref,)).fetchone()
        if row is not None:
            return self._image(row[0], ref)
        if "@" in ref:
            manifest = ref.rpartition("@")[2]
            rows = c.execute(
                "SELECT id FROM images WHERE manifest_digest = ? OR index_digest = ?", (manifest, manifest)
            ).fetchall()
            if rows:
                return self._image(rows[0][0], ref)
            raise NotFoundError(f"{ref}: image not known")
        if ":" in ref:
            rows = c.execute(
                "SELECT id FROM images WHERE id = ? OR manifest_digest = ? OR index_digest = ? ORDER BY id = ? DESC",
                (ref, ref, ref, ref),
            ).fetchall()
            if rows:
                return self._image(rows[0][0], ref)
            raise NotFoundError(f"{ref}: image not known")
        if len(ref) >= MIN_PREFIX and all(ch in "0123456789abcdef" for ch in ref):
            rows = c.execute(
                "SELECT id FROM images WHERE substr(id, instr(id, ':') + 1, ?) = ? LIMIT 2", (len(ref), ref)
            ).fetchall()
            if len(rows) > 1:
                raise AmbiguousError(f"{ref}: the id prefix matches more than one image")
            if rows:
                return self._image(rows[0][0], ref)
        raise NotFoundError(f"{ref}: image not known")

    def get(self, image_id: Digest) -> Image:
        return self._image(str(image_id), str(image_id))

    def images(self) -> list[Image]:
        """Every image, newest first."""
        rows = self._conn.execute("SELECT id FROM images ORDER BY added DESC, id").fetchall()
        return [self._image(r[0], r[0]) for r in rows]

    def layer(self, diff_id: Digest) -> Layer | None:
        row = self._conn.execute(
            "SELECT diff_id, path, state, digest, size, unpacked_size FROM layers WHERE diff_id = ?",
            (str(diff_id),),
        ).fetchone()
        return None if row is None else _layer(row)

    def image_layers(self, image_id: Digest) -> list[Layer]:
        """The image's layers, base first."""
        rows = self._conn.execute(
            "SELECT l.diff_id, l.path, l.state, l.digest, l.size, l.unpacked_size"
            " FROM image_layers il JOIN layers l ON l.diff_id = il.diff_id"
            " WHERE il.image_id = ? ORDER BY il.position",
            (str(image_id),),
        ).fetchall()
        return [_layer(r) for r in rows]

    def image_blobs(self, image_id: Digest) -> list[Digest]:
        rows = self._conn.execute(
            "SELECT digest FROM image_blobs WHERE image_id = ? ORDER BY digest", (str(image_id),)
        ).fetchall()
        return [_digest.parse(r[0], self.path) for r in rows]

    def tags(self) -> list[tuple[str, Digest]]:
        """Every (tag name, image id), sorted by name."""
        rows = self._conn.execute("SELECT name, image_id FROM tags ORDER BY name").fetchall()
        return [(r[0], _digest.parse(r[1], self.path)) for r in rows]

    def blobs(self) -> list[Digest]:
        """Every blob the database knows of."""
        rows = self._conn.execute("SELECT digest FROM blobs ORDER BY digest").fetchall()
        return [_digest.parse(r[0], self.path) for r in rows]

    def _image(self, image_id: str, where: str) -> Image:
        c = self._conn
        with _read(c):
            row = c.execute(
                "SELECT id, manifest_digest, media_type, size, os, architecture, variant, created, added,"
                " index_digest FROM images WHERE id = ?",
                (image_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"{where}: image not known")
            tags = [
                r[0] for r in c.execute("SELECT name FROM tags WHERE image_id = ? ORDER BY name", (image_id,))
            ]
            layers = [
                r[0]
                for r in c.execute(
                    "SELECT diff_id FROM image_layers WHERE image_id = ? ORDER BY position", (image_id,)
                )
            ]
        return Image(
            id=_digest.parse(row[0], self.path),
            manifest_digest=_digest.parse(row[1], self.path),
            media_type=row[2],
            size=row[3],
            os=row[4],
            architecture=row[5],
            variant=row[6],
            created=row[7],
            added=row[8],
            tags=tags,
            layers=[_digest.parse(d, self.path) for d in layers],
            index_digest=None if row[9] is None else _digest.parse(row[9], self.path),
        )


class _read:
    """A read transaction, so a multi-statement read sees one snapshot."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN DEFERRED")

    def __exit__(self, *_exc: object) -> None:
        self._conn.execute("COMMIT")


def _layer(row: tuple[str, str, str, str | None, int | None, int | None]) -> Layer:
    return Layer(
        diff_id=_digest.parse(row[0], "layers.diff_id"),
        path=row[1],
        state=row[2],  # type: ignore[arg-type]  # the CHECK constraint
        digest=None if row[3] is None else _digest.parse(row[3], "layers.digest"),
        size=row[4],
        unpacked_size=row[5],
    )


def __getattr__(name: str) -> object:
    """LayerRef and Garbage, which only writers use, from hutch.image.dbwrite (imported on first use)."""
    if name in ("LayerRef", "Garbage"):
        from hutch.image import dbwrite

        return getattr(dbwrite, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
