"""SQLite for hutch's databases: the `_sqlite3` C module itself, when it is whole.

The `sqlite3` package only adds datetime adapters and DB-API aliases to `_sqlite3`, and its imports (datetime,
collections, functools...) cost ~1 ms on every command that opens a database. A Python without the C module,
or with one that lacks what hutch uses, gets the package.
"""

TYPE_CHECKING = False
# What hutch's databases use of the module.
NEEDED = ("connect", "Connection", "Cursor", "Error", "OperationalError", "IntegrityError")


def load() -> object:
    """`_sqlite3` when it has every NEEDED name, else the `sqlite3` package."""
    try:
        import _sqlite3
    except ImportError:
        pass
    else:
        if all(hasattr(_sqlite3, name) for name in NEEDED):
            return _sqlite3
    import sqlite3

    return sqlite3


if TYPE_CHECKING:
    import sqlite3 as sqlite3
else:
    sqlite3 = load()
