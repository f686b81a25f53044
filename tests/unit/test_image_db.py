"""The image database (hutch.image.db): records, lookup, tags, collection, migrations, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
from typing import TYPE_CHECKING

import pytest

from hutch.errors import NotFoundError
from hutch.image.db import SCHEMA_VERSION, AmbiguousError, Database, DatabaseError, Image, LayerRef
from hutch.oci import digest
from hutch.oci.digest import Digest

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier
    from pathlib import Path

ctx = multiprocessing.get_context("fork")
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def d(name: str) -> Digest:
    return digest.of_bytes(name.encode())


def pull(db: Database, name: str, layers: list[str], tags: list[str], base: str = "/s/layers") -> Image:
    """Record an image the way a pull does: claim blobs, unpack layers, record."""
    refs = []
    blobs = [(d(name + "-manifest"), 500), (d(name + "-config"), 1000)]
    for layer in layers:
        diff_id, compressed = d(layer), d(layer + ".gz")
        db.claim_blob(compressed, 100)
        existing = db.begin_layer(diff_id, f"{base}/{diff_id.hex}", compressed, 100)
        if existing.state != "unpacked":
            db.finish_layer(diff_id, 300)
        refs.append(LayerRef(diff_id, compressed))
        blobs.append((compressed, 100))
    image = Image(
        id=d(name + "-config"),
        manifest_digest=d(name + "-manifest"),
        media_type=MANIFEST,
        size=1500 + 100 * len(layers),
        os="linux",
        architecture="arm",
        variant="v7",
        created="2026-11-01T00:00:00Z",
    )
    db.record_image(image, refs, blobs, tags)
    return db.get(image.id)


def test_opens_in_wal_with_foreign_keys_and_schema_version(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "hutch.db")
    with Database(path) as db:
        assert db.schema_version() == SCHEMA_VERSION == 2
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,), (2,)]
    conn.close()
    with Database(path) as db:  # reopening does not migrate again
        assert db._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 2
    conn.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "hutch.db")
    Database(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (3, 0)")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseError, match="schema version 3 is newer than this hutch knows"):
        Database(path)


def test_record_and_lookup(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "hutch.db"))
    image = pull(db, "busybox", ["base", "top"], ["docker.io/library/busybox:latest"])
    assert image.tags == ["docker.io/library/busybox:latest"]
    assert image.layers == [d("base"), d("top")]
    assert image.platform == "linux/arm/v7"
    assert image.created == "2026-11-01T00:00:00Z"
    assert image.added > 0
    for ref in (
        "docker.io/library/busybox:latest",
        str(image.id),
        image.id.hex,
        image.id.hex[:12],
        image.id.hex[:3],
        str(image.manifest_digest),
        f"docker.io/library/busybox@{image.manifest_digest}",
    ):
        assert db.lookup(ref) == image, ref
    for ref in (
        "docker.io/library/busybox:1",
        image.id.hex[:2],
        "sha256:" + "0" * 64,
        "busybox@sha256:" + "0" * 64,
    ):
        with pytest.raises(NotFoundError):
            db.lookup(ref)
    assert [layer.diff_id for layer in db.image_layers(image.id)] == [d("base"), d("top")]
    assert all(
        layer.state == "unpacked" and layer.unpacked_size == 300 for layer in db.image_layers(image.id)
    )
    assert set(db.image_blobs(image.id)) == {
        d("busybox-manifest"),
        d("busybox-config"),
        d("base.gz"),
        d("top.gz"),
    }
    assert db.images() == [image]


def test_ambiguous_prefix(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "hutch.db"))
    for n in "12":
        image_id = Digest("sha256", "abcd" + n * 60)
        db.record_image(Image(image_id, d(n), MANIFEST, 1, "linux", "amd64"), [], [])
    with pytest.raises(AmbiguousError, match="^abcd: the id prefix matches more than one image"):
        db.lookup("abcd")
    assert db.lookup("abcd1").id == Digest("sha256", "abcd" + "1" * 60)
    assert db.lookup("abcd2").id == Digest("sha256", "abcd" + "2" * 60)
    with pytest.raises(NotFoundError):
        db.lookup("ab")  # shorter than MIN_PREFIX


def test_record_refuses_layers_not_unpacked(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "hutch.db"))
    db.begin_layer(d("l"), "/x")
    image = Image(d("c"), d("m"), MANIFEST, 1, "linux", "amd64")
    with pytest.raises(DatabaseError, match=f"layer {d('l')} is pulling, not unpacked"):
        db.record_image(image, [LayerRef(d("l"))], [], ["t"])
    with pytest.raises(DatabaseError, match="is missing"):
        db.record_image(image, [LayerRef(d("nope"))], [], ["t"])
    assert db.images() == [] and db.tags() == []  # the transaction rolled back


def test_tag_untag(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "hutch.db"))
    a = pull(db, "a", ["base"], ["localhost/app:1"])
    b = pull(db, "b", ["base"], [])
    db.tag("localhost/app:latest", a.id)
    assert db.lookup("localhost/app:latest").id == a.id
    db.tag("localhost/app:latest", b.id)  # moves the tag
    assert db.lookup("localhost/app:latest").id == b.id
    assert db.get(a.id).tags == ["localhost/app:1"]
    assert db.tags() == [("localhost/app:1", a.id), ("localhost/app:latest", b.id)]
    assert db.untag("localhost/app:1") == a.id
    assert db.get(a.id).tags == []  # untagged, still there
    with pytest.raises(NotFoundError, match="localhost/app:1: no such image tag"):
        db.untag("localhost/app:1")
    with pytest.raises(NotFoundError):
        db.tag("x", d("unknown"))


def test_collect_after_remove(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "hutch.db"))
    a = pull(db, "a", ["base", "a-top"], ["a"])
    b = pull(db, "b", ["base", "b-top"], ["b"])
    garbage = db.collect(grace=0)
    assert garbage.blobs == [] and garbage.layers == []

    db.remove_image(a.id)
    with pytest.raises(NotFoundError):
        db.lookup("a")
    with pytest.raises(NotFoundError):
        db.remove_image(a.id)
    assert db.collect(grace=3600).blobs == []  # claimed just now by the pull: kept
    garbage = db.collect(grace=-1)
    assert sorted(garbage.blobs) == sorted([d("a-manifest"), d("a-config"), d("a-top.gz")])
    assert [layer.diff_id for layer in garbage.layers] == [d("a-top")]
    assert garbage.layers[0].path == f"/s/layers/{d('a-top').hex}"
    assert db.layer(d("a-top")) is None
    assert db.layer(d("base")) is not None  # b still has it
    assert db.collect(grace=-1).blobs == []

    db.remove_image(b.id)
    garbage = db.collect(grace=-1)
    assert {layer.diff_id for layer in garbage.layers} == {d("base"), d("b-top")}
    assert db.blobs() == []


def test_killed_pull_layer_is_claimed_again_and_collected_when_stale(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "hutch.db"))
    first = db.begin_layer(d("l"), "/s/l", d("l.gz"), 10)
    assert first.state == "pulling"
    again = db.begin_layer(d("l"), "/s/l2", d("l.gz"), 10)  # the next pull takes it over
    assert again.state == "pulling" and again.path == "/s/l2"
    garbage = db.collect(grace=-1)
    assert [(layer.diff_id, layer.state) for layer in garbage.layers] == [(d("l"), "pulling")]


def _writer(path: str, worker: int, barrier: Barrier) -> None:
    db = Database(path, timeout=60)
    barrier.wait(10)
    for i in range(25):
        pull(
            db,
            f"w{worker}-{i}",
            ["shared", f"w{worker}-{i}"],
            [f"localhost/w{worker}:{i}", "localhost/last:latest"],
        )
        db.tag(f"localhost/w{worker}:latest", d(f"w{worker}-{i}-config"))
        if i % 5 == 4:
            db.untag(f"localhost/w{worker}:{i}")
    db.close()


def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    path = str(tmp_path / "hutch.db")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(path, w, barrier)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    db = Database(path)
    assert len(db.images()) == 50
    names = [name for name, _ in db.tags()]
    assert len(names) == 2 * 20 + 2 + 1
    assert db.lookup("localhost/w0:latest").id == d("w0-24-config")
    assert db.lookup("localhost/w1:latest").id == d("w1-24-config")
    assert db.layer(d("shared")) is not None
    assert db.collect(grace=-1).blobs == []


def _open(path: str, barrier: Barrier) -> None:
    barrier.wait(10)
    Database(path).close()


def test_many_processes_create_the_database_at_once(tmp_path: Path) -> None:
    # SQLite does not wait for a busy lock while switching to WAL: Database retries.
    for round in range(5):
        path = str(tmp_path / f"hutch{round}.db")
        barrier = ctx.Barrier(8)
        procs = [ctx.Process(target=_open, args=(path, barrier)) for _ in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * 8
        with Database(path) as db:
            assert db.schema_version() == 2


def test_version_1_database_is_migrated_with_unpacked_sizes(tmp_path: Path) -> None:
    """A database written by schema 1 (sizes counted compressed layers, no index digest) opens as schema 2 with
    each image's size recounted from its manifest, config and unpacked layers."""
    from hutch.image import db as dbmod

    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.executescript(dbmod._SCHEMA_V1)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied REAL NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1, 0)")
    image, manifest, layer, gz = d("cfg"), d("man"), d("layer"), d("layer.gz")
    conn.execute(
        "INSERT INTO images VALUES (?, ?, ?, NULL, 777, 'linux', 'amd64', '', 0)",
        (str(image), str(manifest), MANIFEST),
    )
    conn.executemany(
        "INSERT INTO blobs VALUES (?, ?, 0)", [(str(image), 10), (str(manifest), 20), (str(gz), 100)]
    )
    conn.execute("INSERT INTO layers VALUES (?, ?, 100, 5000, '/l', 'unpacked', 0)", (str(layer), str(gz)))
    conn.execute("INSERT INTO image_layers VALUES (?, 0, ?, ?)", (str(image), str(layer), str(gz)))
    conn.commit()
    conn.close()
    with Database(path) as db:
        assert db.schema_version() == 2
        got = db.get(image)
        assert got.size == 10 + 20 + 5000
        assert got.index_digest is None and got.digest == manifest


def test_index_digest_is_recorded_and_found(tmp_path: Path) -> None:
    with Database(str(tmp_path / "hutch.db")) as db:
        image = pull(db, "x", ["l1"], ["example.com/x:1"])
        index = d("x-index")
        image.index_digest = index
        db.record_image(image, [LayerRef(d("l1"), d("l1.gz"))], [(d("l1.gz"), 100)], [])
        got = db.lookup(f"example.com/x@{index}")
        assert got.id == image.id and got.digest == index and got.manifest_digest == d("x-manifest")
        assert db.lookup(str(index)).id == image.id
