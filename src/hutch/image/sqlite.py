"""SQLite for hutch's databases: the `_sqlite3` C module itself, when it is whole.

The `sqlite3` package only adds datetime adapters and DB-API aliases to `_sqlite3`, and its imports (datetime,
collections, functools...) cost milliseconds on every command that opens a database. A Python without the C
module, or with one that lacks what hutch uses, gets the package.

`_sqlite3` itself takes one thing from functools as it loads: `lru_cache`, which makes each connection's
statement cache. functools imports collections (~2 ms), so unless functools is loaded already, `_sqlite3`
loads beside a stand-in that makes the same cache from functools' own C part, as functools.lru_cache does.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

# What hutch's databases use of the module.
NEEDED = ("connect", "Connection", "Cursor", "Error", "OperationalError", "IntegrityError")


def load() -> object:
    """`_sqlite3` when it has every NEEDED name, else the `sqlite3` package."""
    try:
        module = _c_module()
    except ImportError:
        pass
    else:
        if all(hasattr(module, name) for name in NEEDED):
            return module
    import sqlite3

    return sqlite3


def _c_module() -> object:
    # With threading loaded another thread could import functools meanwhile, and get the stand-in.
    if "functools" in sys.modules or "threading" in sys.modules or "_sqlite3" in sys.modules:
        import _sqlite3

        return _sqlite3
    stand_in = _functools_stand_in()
    sys.modules["functools"] = stand_in
    try:
        import _sqlite3

        return _sqlite3
    except AttributeError:
        pass  # this `_sqlite3` takes more of functools: load it with the real one
    finally:
        if sys.modules.get("functools") is stand_in:
            del sys.modules["functools"]
    import _sqlite3

    return _sqlite3


def _functools_stand_in() -> ModuleType:
    module = type(sys)("functools")
    module.lru_cache = _lru_cache  # type: ignore[attr-defined]
    return module


def _lru_cache(maxsize: int = 128, typed: bool = False) -> object:
    """functools.lru_cache(maxsize, typed) for a statement cache: the same C wrapper, without the
    update_wrapper and cache_parameters that only a decorated function shows."""
    from _functools import _lru_cache_wrapper

    def decorate(user_function: object) -> object:
        return _lru_cache_wrapper(user_function, max(maxsize, 0), typed, _cache_info)

    return decorate


def _cache_info(*info: int) -> tuple[int, ...]:
    return info


if TYPE_CHECKING:
    import sqlite3 as sqlite3
else:
    sqlite3 = load()
