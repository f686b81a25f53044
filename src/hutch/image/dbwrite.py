"""Writes to the image database (hutch.image.db): a pull's claims and records, tags, removal and garbage
collection. Each is one `BEGIN IMMEDIATE` transaction, which takes the write lock up front (no lock upgrades,
so no deadlocks between writers) and waits for it up to the busy timeout.

A pull claims its blobs with `claim_blob` and its layers with `begin_layer` before it writes them, records the
image with `record_image` (one transaction), and `collect` never returns what was claimed within its grace
period, so rmi/prune running beside a pull cannot take the blobs from under it. `collect` deletes the rows of
what nothing references and returns them; the caller then removes the files.
"""

from __future__ import annotations

import time

from hutch.errors import ConfigError, NotFoundError
from hutch.image.db import Database, DatabaseError, Image, Layer, _layer
from hutch.image.sqlite import sqlite3
from hutch.oci import digest as _digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from dataclasses import dataclass, field

    from hutch.oci.digest import Digest
else:
    from hutch.record import dataclass, field


@dataclass
class LayerRef:
    """One layer of an image being recorded: its diff_id, and the compressed blob it came from."""

    diff_id: Digest
    digest: Digest | None = None


@dataclass
class Garbage:
    """What `collect` removed from the database; the caller removes the files."""

    blobs: list[Digest] = field(default_factory=list)
    layers: list[Layer] = field(default_factory=list)


class Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` on any exception; sqlite errors become DatabaseError."""

    def __init__(self, db: Database) -> None:
        self._conn = db._conn
        self._path = db.path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise DatabaseError(f"{self._path}: cannot start a transaction: {e}") from e
        return self._conn

    def __exit__(self, exc_type: object, exc: BaseException | None, _tb: object) -> None:
        if exc is None:
            try:
                self._conn.execute("COMMIT")
                return
            except sqlite3.Error as e:
                self._conn.execute("ROLLBACK")
                raise DatabaseError(f"{self._path}: commit failed: {e}") from e
        self._conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise DatabaseError(f"{self._path}: {exc}") from exc


def claim_blob(db: Database, digest: Digest, size: int) -> None:
    """Record that a pull is about to use (or has stored) `digest`: `collect` leaves it alone for a while."""
    with Transaction(db) as c:
        _upsert_blob(c, digest, size, time.time())


def begin_layer(db: Database, diff_id: Digest, path: str, digest: Digest | None, size: int | None) -> Layer:
    """Claim a layer for unpacking into `path`; return the existing row if it is already unpacked.

    A layer left `pulling` by a killed pull is claimed again (its directory is the caller's to clear).
    """
    now = time.time()
    with Transaction(db) as c:
        row = c.execute(
            "SELECT diff_id, path, state, digest, size, unpacked_size FROM layers WHERE diff_id = ?",
            (str(diff_id),),
        ).fetchone()
        if row is not None and row[2] == "unpacked":
            c.execute("UPDATE layers SET claimed = ? WHERE diff_id = ?", (now, str(diff_id)))
            return _layer(row)
        c.execute(
            "INSERT INTO layers (diff_id, digest, size, unpacked_size, path, state, claimed)"
            " VALUES (?, ?, ?, NULL, ?, 'pulling', ?)"
            " ON CONFLICT (diff_id) DO UPDATE SET digest = excluded.digest, size = excluded.size,"
            " path = excluded.path, state = 'pulling', claimed = excluded.claimed",
            (str(diff_id), _opt(digest), size, path, now),
        )
    return Layer(diff_id, path, "pulling", digest, size, None)


def finish_layer(db: Database, diff_id: Digest, unpacked_size: int | None) -> None:
    """Mark a layer `unpacked`, after its directory is complete and synced."""
    with Transaction(db) as c:
        n = c.execute(
            "UPDATE layers SET state = 'unpacked', unpacked_size = ?, claimed = ? WHERE diff_id = ?",
            (unpacked_size, time.time(), str(diff_id)),
        ).rowcount
        if n == 0:
            raise NotFoundError(f"layer {diff_id}: not in the image database {db.path}")


def record_image(
    db: Database,
    image: Image,
    layers: Sequence[LayerRef],
    blobs: Sequence[tuple[Digest, int]],
    tags: Sequence[str],
) -> None:
    """Record `image` (replacing a previous record of the same id), its layers in order, the blobs it
    references (manifest, config, compressed layers) with their sizes, and move `tags` to it; one transaction.

    Every layer must have been begun (`begin_layer`) and finished: an image is only recorded complete.
    """
    now = time.time()
    image_id = str(image.id)
    with Transaction(db) as c:
        for ref in layers:
            row = c.execute("SELECT state FROM layers WHERE diff_id = ?", (str(ref.diff_id),)).fetchone()
            if row is None or row[0] != "unpacked":
                state = "missing" if row is None else row[0]
                raise DatabaseError(f"image {image.id}: layer {ref.diff_id} is {state}, not unpacked")
        c.execute(
            "INSERT INTO images (id, manifest_digest, media_type, created, size, os, architecture, variant, added,"
            " index_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET manifest_digest = excluded.manifest_digest,"
            " media_type = excluded.media_type, created = excluded.created, size = excluded.size,"
            " os = excluded.os, architecture = excluded.architecture, variant = excluded.variant,"
            " index_digest = excluded.index_digest",
            (
                image_id,
                str(image.manifest_digest),
                image.media_type,
                image.created,
                image.size,
                image.os,
                image.architecture,
                image.variant,
                image.added or now,
                _opt(image.index_digest),
            ),
        )
        c.execute("DELETE FROM image_layers WHERE image_id = ?", (image_id,))
        c.executemany(
            "INSERT INTO image_layers (image_id, position, diff_id, digest) VALUES (?, ?, ?, ?)",
            [(image_id, i, str(ref.diff_id), _opt(ref.digest)) for i, ref in enumerate(layers)],
        )
        c.execute("DELETE FROM image_blobs WHERE image_id = ?", (image_id,))
        for blob, size in blobs:
            _upsert_blob(c, blob, size, now)
            c.execute("INSERT OR IGNORE INTO image_blobs VALUES (?, ?)", (image_id, str(blob)))
        for name in tags:
            _tag(c, name, image_id)


def tag(db: Database, name: str, image_id: Digest) -> None:
    """Point the reference `name` at the image (moving it from another image if needed)."""
    with Transaction(db) as c:
        if c.execute("SELECT 1 FROM images WHERE id = ?", (str(image_id),)).fetchone() is None:
            raise NotFoundError(f"image {image_id}: not known")
        _tag(c, name, str(image_id))


def untag(db: Database, name: str) -> Digest:
    """Remove the reference `name`; return the image it named. The image stays, perhaps untagged."""
    with Transaction(db) as c:
        row = c.execute("SELECT image_id FROM tags WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"{name}: no such image tag")
        c.execute("DELETE FROM tags WHERE name = ?", (name,))
    return _digest.parse(row[0], db.path)


def remove_image(db: Database, image_id: Digest) -> None:
    """Delete the image record and its tags; its blobs and layers are left for `collect`."""
    with Transaction(db) as c:
        if c.execute("DELETE FROM images WHERE id = ?", (str(image_id),)).rowcount == 0:
            raise NotFoundError(f"image {image_id}: not known")


def collect(db: Database, grace: float) -> Garbage:
    """Delete the rows of blobs and layers no image references, and return them for the caller to remove.

    Blobs and layers claimed (by a pull) within the last `grace` seconds are kept.
    """
    cutoff = time.time() - grace
    garbage = Garbage()
    with Transaction(db) as c:
        rows = c.execute(
            "SELECT digest FROM blobs WHERE claimed <= ?"
            " AND NOT EXISTS (SELECT 1 FROM image_blobs WHERE image_blobs.digest = blobs.digest)",
            (cutoff,),
        ).fetchall()
        garbage.blobs = [_digest.parse(r[0], db.path) for r in rows]
        c.executemany("DELETE FROM blobs WHERE digest = ?", [(r[0],) for r in rows])
        rows = c.execute(
            "SELECT diff_id, path, state, digest, size, unpacked_size FROM layers WHERE claimed <= ?"
            " AND NOT EXISTS (SELECT 1 FROM image_layers WHERE image_layers.diff_id = layers.diff_id)",
            (cutoff,),
        ).fetchall()
        garbage.layers = [_layer(r) for r in rows]
        c.executemany("DELETE FROM layers WHERE diff_id = ?", [(r[0],) for r in rows])
    return garbage


def _upsert_blob(c: sqlite3.Connection, digest: Digest, size: int, now: float) -> None:
    c.execute(
        "INSERT INTO blobs (digest, size, claimed) VALUES (?, ?, ?)"
        " ON CONFLICT (digest) DO UPDATE SET size = excluded.size, claimed = excluded.claimed",
        (str(digest), size, now),
    )


def _opt(d: Digest | None) -> str | None:
    return None if d is None else str(d)


def _tag(c: sqlite3.Connection, name: str, image_id: str) -> None:
    if not name:
        raise ConfigError("tag: an empty name cannot be a tag")
    c.execute(
        "INSERT INTO tags (name, image_id) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET image_id = excluded.image_id",
        (name, image_id),
    )
