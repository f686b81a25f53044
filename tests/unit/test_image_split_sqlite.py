"""hutch.image.sqlite: the `_sqlite3` C module when it is whole, else the `sqlite3` package; the image
database works on either; the C module loads without functools (and collections) unless they are loaded."""

from __future__ import annotations

import subprocess
import sys
import types
from typing import TYPE_CHECKING

import pytest

from hutch.image import sqlite

if TYPE_CHECKING:
    from pathlib import Path


def test_the_c_module_when_it_has_what_hutch_uses() -> None:
    import _sqlite3

    assert sqlite.load() is _sqlite3
    assert sqlite.sqlite3 is _sqlite3


def test_the_package_when_the_c_module_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    monkeypatch.setitem(sys.modules, "_sqlite3", None)  # import _sqlite3 raises ImportError
    assert sqlite.load() is sqlite3


def test_the_package_when_the_c_module_lacks_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import _sqlite3
    import sqlite3

    partial = types.ModuleType("_sqlite3")
    for name in sqlite.NEEDED[:-1]:
        setattr(partial, name, getattr(_sqlite3, name))
    monkeypatch.setitem(sys.modules, "_sqlite3", partial)
    assert sqlite.load() is sqlite3


# Open an image database, record an image, find it, fail a write: what hutch does with the module.
_USE_DB = """
import sys
from hutch.errors import NotFoundError
from hutch.image import sqlite
from hutch.image.db import Database, DatabaseError, Image
from hutch.oci.digest import of_bytes

print(sqlite.sqlite3.__name__)
with Database(sys.argv[1]) as db:
    image = Image(of_bytes(b"config"), of_bytes(b"manifest"), "application/vnd.oci.image.manifest.v1+json", 1,
                  "linux", "amd64")
    db.record_image(image, [], [], ["localhost/t:1"])
    assert db.lookup("localhost/t:1").id == image.id
    try:
        db.tag("localhost/t:2", of_bytes(b"other"))
    except NotFoundError:
        pass
    try:
        db._conn.execute("SELECT nothing FROM nowhere")
    except sqlite.sqlite3.OperationalError:
        pass
    from hutch.image import dbwrite
    try:
        with dbwrite.Transaction(db) as c:
            c.execute("INSERT INTO tags VALUES ('x', 'sha256:none')")  # a tag of no image: the foreign key refuses it
    except DatabaseError:
        pass
    assert [t for t, _ in db.tags()] == ["localhost/t:1"]
"""

# The `sqlite3` package is imported first (it needs the real `_sqlite3`), then `_sqlite3` is replaced by an
# empty module, as a Python whose C module differs.
_PACKAGE = """
import sys, types
import sqlite3
sys.modules["_sqlite3"] = types.ModuleType("_sqlite3")
"""


@pytest.mark.parametrize("setup", ["", _PACKAGE], ids=["c-module", "package"])
def test_the_image_database_works_on_either(tmp_path: Path, setup: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", setup + _USE_DB, str(tmp_path / "hutch.db")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == ["_sqlite3" if not setup else "sqlite3"]


def _fresh(code: str) -> list[str]:
    """What `code` prints, run in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()


# A connection's statement cache at work (the same statements again), then the real functools.
_CACHE = """
import sys
from hutch.image.sqlite import sqlite3
print(sqlite3.__name__, "functools" in sys.modules, "collections" in sys.modules)
c = sqlite3.connect(":memory:", isolation_level=None)
c.execute("CREATE TABLE t (x)")
for i in range(300):
    c.execute("INSERT INTO t VALUES (?)", (i % 7,))
assert c.execute("SELECT count(*), sum(x) FROM t").fetchall() == [(300, sum(i % 7 for i in range(300)))]
import functools
print(functools.lru_cache.__module__)
"""


def test_the_c_module_loads_without_functools() -> None:
    assert _fresh(_CACHE) == ["_sqlite3", "False", "False", "functools"]


def test_functools_already_loaded_is_used() -> None:
    assert _fresh("import functools\n" + _CACHE) == ["_sqlite3", "True", "True", "functools"]


def test_a_c_module_wanting_more_of_functools_gets_the_real_one() -> None:
    code = """
import sys
from hutch.image import sqlite
del sys.modules["_sqlite3"]
sqlite._functools_stand_in = lambda: type(sys)("functools")  # lru_cache missing: _sqlite3 fails to load
module = sqlite._c_module()
print(module.__name__, type(sys.modules["functools"].lru_cache).__name__)
print(module.connect(":memory:").execute("SELECT 1").fetchall() == [(1,)])
"""
    assert _fresh(code) == ["_sqlite3", "function", "True"]
