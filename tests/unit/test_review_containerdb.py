"""Opening the container database does not take its write lock once the schema is current: `ps`, `logs -f`
(which opens it on every poll) and the rest read while another command writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hutch.engine.db import ContainerDB


def test_open_reads_while_another_connection_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "containers.db")
    ContainerDB(path).close()  # made, schema current
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another hutch command in a write transaction
    try:
        db = ContainerDB(path, timeout=0.2)
        try:
            assert db.all() == []
        finally:
            db.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
