"""The content-addressed blob store (hutch.image.store): verified, atomic, crash-safe ingest."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import time
from typing import TYPE_CHECKING

import pytest

from hutch.errors import NotFoundError
from hutch.image.store import BlobStore, replace_file
from hutch.oci import digest
from hutch.oci.digest import Digest, MismatchError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.synchronize import Barrier, Event
    from pathlib import Path

ctx = multiprocessing.get_context("fork")

DATA = os.urandom(256 * 1024)
DATA_DIGEST = digest.of_bytes(DATA)


def chunked(data: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def ingest_names(store: BlobStore) -> list[str]:
    return os.listdir(store.ingest_dir)


def test_layout_and_roundtrip(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    path = store.ingest(DATA_DIGEST, len(DATA), chunked(DATA))
    assert path == str(tmp_path / "blobs" / "sha256" / DATA_DIGEST.hex) == store.path(DATA_DIGEST)
    assert store.has(DATA_DIGEST)
    assert store.size(DATA_DIGEST) == len(DATA)
    assert store.read(DATA_DIGEST) == DATA
    with store.open(DATA_DIGEST) as f:
        assert hashlib.sha256(f.read()).hexdigest() == DATA_DIGEST.hex
    assert list(store.list()) == [DATA_DIGEST]
    assert ingest_names(store) == []
    assert store.delete(DATA_DIGEST)
    assert not store.has(DATA_DIGEST)
    assert not store.delete(DATA_DIGEST)
    with pytest.raises(NotFoundError, match=f"blob {DATA_DIGEST}: not in the store"):
        store.open(DATA_DIGEST)


def test_sha512_and_ingest_bytes(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    d = digest.of_bytes(b"config", "sha512")
    store.ingest_bytes(b"config", d)
    assert (tmp_path / "blobs" / "sha512" / d.hex).read_bytes() == b"config"
    assert list(store.list()) == [d]


def test_list_skips_stray_files(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    (tmp_path / "blobs" / "sha256" / "not-a-digest").write_bytes(b"")
    assert list(store.list()) == []


def test_digest_mismatch_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    wrong = digest.of_bytes(b"something else")
    with pytest.raises(MismatchError, match=r"^busybox: layer 1: digest mismatch"):
        store.ingest(wrong, len(DATA), chunked(DATA), where="busybox: layer 1")
    assert not store.has(wrong)
    assert list(store.list()) == []
    assert ingest_names(store) == []


def test_size_mismatch_stops_the_stream_and_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    read = []

    def stream() -> Iterator[bytes]:
        for chunk in chunked(DATA):
            read.append(len(chunk))
            yield chunk

    with pytest.raises(MismatchError, match="longer than its descriptor's size 1000"):
        store.ingest(DATA_DIGEST, 1000, stream())
    assert len(read) == 1  # stopped at the first chunk past the size
    assert list(store.list()) == [] and ingest_names(store) == []

    with pytest.raises(MismatchError, match="its descriptor says"):
        store.ingest(DATA_DIGEST, len(DATA) + 1, chunked(DATA))
    assert list(store.list()) == [] and ingest_names(store) == []


def test_error_in_stream_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))

    def stream() -> Iterator[bytes]:
        yield DATA[:100]
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        store.ingest(DATA_DIGEST, len(DATA), stream())
    assert list(store.list()) == [] and ingest_names(store) == []


def test_present_blob_is_not_read_again(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    store.ingest_bytes(DATA, DATA_DIGEST)

    read = []

    def stream() -> Iterator[bytes]:
        read.append(1)
        yield DATA

    assert store.ingest(DATA_DIGEST, len(DATA), stream()) == store.path(DATA_DIGEST)
    assert read == []


def _slow_ingest(root: str, barrier: Barrier) -> None:
    def stream() -> Iterator[bytes]:
        chunks = list(chunked(DATA))
        yield chunks[0]
        barrier.wait(10)  # both processes are now mid-ingest of the same blob
        yield from chunks[1:]

    BlobStore(root).ingest(DATA_DIGEST, len(DATA), stream())


def test_concurrent_ingest_of_the_same_blob(tmp_path: Path) -> None:
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_slow_ingest, args=(str(tmp_path), barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    store = BlobStore(str(tmp_path))
    assert store.read(DATA_DIGEST) == DATA
    assert ingest_names(store) == []


def _stuck_ingest(root: str, midway: Event) -> None:
    def stream() -> Iterator[bytes]:
        chunks = list(chunked(DATA))
        yield from chunks[:3]
        midway.set()
        time.sleep(60)
        yield from chunks[3:]

    BlobStore(root).ingest(DATA_DIGEST, len(DATA), stream())


def test_kill_midway_leaves_no_blob_and_next_ingest_completes(tmp_path: Path) -> None:
    midway = ctx.Event()
    proc = ctx.Process(target=_stuck_ingest, args=(str(tmp_path), midway))
    proc.start()
    try:
        assert midway.wait(10)
        store = BlobStore(str(tmp_path), sweep=False)
        # A live ingest's temp file is locked: a sweep leaves it alone.
        assert store.sweep() == 0
        [partial] = ingest_names(store)
        assert partial.startswith(DATA_DIGEST.hex + ".")
    finally:
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    assert not store.has(DATA_DIGEST)
    assert list(store.list()) == []
    assert ingest_names(store) == [partial]
    assert os.path.getsize(os.path.join(store.ingest_dir, partial)) == 3 * 16 * 1024

    store.ingest(DATA_DIGEST, len(DATA), chunked(DATA))  # sweeps the dead ingest's file, then completes
    assert store.read(DATA_DIGEST) == DATA
    assert ingest_names(store) == []


def test_startup_sweeps_dead_temp_files(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    leftover = os.path.join(store.ingest_dir, f"{DATA_DIGEST.hex}.0123456789abcdef")
    with open(leftover, "wb") as f:
        f.write(DATA[:10])
    BlobStore(str(tmp_path))
    assert ingest_names(store) == []


def test_digest_type_in_path(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    d = Digest("sha512", "a" * 128)
    assert store.path(d).endswith(os.path.join("blobs", "sha512", "a" * 128))
    assert not store.has(d)


def test_replace_file_swaps_in_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_bytes(b"old")

    def fail(f: object) -> None:
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        replace_file(str(path), fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out"]
    replace_file(str(path), lambda f: f.write(b"new"), mode=0o600)
    assert path.read_bytes() == b"new"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["out"]
