"""The module cache (hutch/modcache.py): modules served from one file behave as their sources; anything it
cannot vouch for (a changed source, a file others can write, a corrupt file, another Python's) is imported the
normal way."""

import importlib
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from hutch import modcache
from hutch.modcache_write import write

REPO = Path(__file__).resolve().parents[2]
PKG = "mcpkg"
SOURCES = {
    "__init__.py": "VALUE = 1\n",
    "mod.py": (
        "from mcpkg import VALUE\n\n\ndef double(x):\n    return 2 * x + VALUE\n\n\n"
        "def fail():\n    raise RuntimeError('from mod')\n"
    ),
    "sub/__init__.py": "",
    "sub/leaf.py": "from . import __name__ as parent\n\nname = parent + '.leaf'\n",
    "fut.py": '"""Doc."""\n\nfrom __future__ import annotations\n\n\ndef f(x: Undefined) -> None:\n    pass\n',
}


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package `mcpkg` under tmp_path/src, importable the normal way, and its cache file tmp_path/cache."""
    root = tmp_path / "src"
    for name, text in SOURCES.items():
        (root / PKG / name).parent.mkdir(parents=True, exist_ok=True)
        (root / PKG / name).write_text(text)
    write(str(tmp_path / "cache"), str(root), PKG)
    monkeypatch.syspath_prepend(str(root))
    yield tmp_path
    modcache.drop()
    for name in [n for n in sys.modules if n == PKG or n.startswith(PKG + ".")]:
        del sys.modules[name]


def _served() -> set[str]:
    return {
        n
        for n, m in sys.modules.items()
        if n.startswith(PKG) and isinstance(m.__loader__, modcache.ModuleCache)
    }


def _import(tree: Path, name: str) -> ModuleType:
    modcache.install(str(tree / "cache"))
    return importlib.import_module(name)


def test_a_served_module_behaves_as_its_source(tree: Path) -> None:
    mod = _import(tree, f"{PKG}.mod")
    assert _served() == {PKG, f"{PKG}.mod"}
    source = str(tree / "src" / PKG / "mod.py")
    served = (
        mod.double(20),
        mod.__file__,
        mod.__name__,
        mod.__package__,
        getattr(mod.__spec__, "origin", None),
    )
    modcache.drop()
    for name in (PKG, f"{PKG}.mod"):
        del sys.modules[name]
    normal = importlib.import_module(f"{PKG}.mod")
    assert not _served()
    assert served == (41, source, f"{PKG}.mod", PKG, source)
    assert served == (normal.double(20), normal.__file__, normal.__name__, normal.__package__, source)


def test_a_traceback_shows_the_served_modules_source(tree: Path) -> None:
    mod = _import(tree, f"{PKG}.mod")
    with pytest.raises(RuntimeError) as raised:
        mod.fail()
    last = traceback.extract_tb(raised.value.__traceback__)[-1]
    assert (last.filename, last.lineno, last.line) == (
        str(tree / "src" / PKG / "mod.py"),
        9,
        "raise RuntimeError('from mod')",
    )


def test_a_future_import_is_compiled_in_without_importing_future(tree: Path) -> None:
    probe = (
        f"import sys; sys.path.insert(0, {str(tree / 'src')!r})\n"
        f"from hutch import modcache; modcache.install({str(tree / 'cache')!r})\n"
        f"from {PKG} import fut\n"
        "print(type(fut.__loader__).__name__, fut.__doc__, fut.f.__annotations__, '__future__' in sys.modules)\n"
    )
    env = {"PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    # annotations stay strings (an undefined name is no error), and the __future__ module is never loaded
    assert out.stdout.strip() == "ModuleCache Doc. {'x': 'Undefined', 'return': 'None'} False"


def test_a_packages_submodules_resolve_whether_in_the_file_or_not(tree: Path) -> None:
    (tree / "src" / PKG / "sub" / "late.py").write_text("late = True\n")  # written after the cache
    leaf = _import(tree, f"{PKG}.sub.leaf")
    late = importlib.import_module(f"{PKG}.sub.late")
    sub = sys.modules[f"{PKG}.sub"]
    assert (leaf.name, late.late) == (f"{PKG}.sub.leaf", True)
    assert sub.__path__ == [str(tree / "src" / PKG / "sub")]
    assert sub.__file__ == str(tree / "src" / PKG / "sub" / "__init__.py")
    assert _served() == {PKG, f"{PKG}.sub", f"{PKG}.sub.leaf"}


def test_a_changed_source_is_imported_from_the_source(tree: Path) -> None:
    path = tree / "src" / PKG / "mod.py"
    path.write_text(path.read_text().replace("2 * x", "3 * x"))
    assert _import(tree, f"{PKG}.mod").double(20) == 61
    assert _served() == {PKG}


def test_a_touched_source_of_the_same_size_is_imported_from_the_source(tree: Path) -> None:
    path = tree / "src" / PKG / "mod.py"
    path.write_text(path.read_text().replace("2 * x", "4 * x"))
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1))
    assert _import(tree, f"{PKG}.mod").double(20) == 81
    assert _served() == {PKG}


@pytest.mark.parametrize("mode, uid", [(0o664, 0), (0o646, 0), (0o644, 65534)])
def test_a_cache_file_others_can_write_is_refused(tree: Path, mode: int, uid: int) -> None:
    os.chmod(tree / "cache", mode)
    os.chown(tree / "cache", uid, -1)
    assert _import(tree, f"{PKG}.mod").double(1) == 3
    assert not _served()
    assert not any(isinstance(f, modcache.ModuleCache) for f in sys.meta_path)


def _damage_index(data: bytes) -> bytes:
    return data[:30] + b"\xff" * 40 + data[70:]


def _truncate_code(data: bytes) -> bytes:
    return data[:-10]


def _other_python(data: bytes) -> bytes:
    return data.replace(modcache.MARK, b"hutch.modules\0" + bytes([0, 0, 13, 10]), 1)


@pytest.mark.parametrize(
    "damage", [_damage_index, _truncate_code, _other_python, lambda data: b"", lambda data: data[:10]]
)
def test_a_corrupt_or_foreign_file_falls_back(tree: Path, damage) -> None:
    cache = tree / "cache"
    cache.write_bytes(damage(cache.read_bytes()))
    sub = _import(tree, f"{PKG}.sub.leaf")
    mod = importlib.import_module(f"{PKG}.mod")
    assert (mod.double(1), sub.name) == (3, f"{PKG}.sub.leaf")
    # the last module written is the one truncated; the others are whole
    assert _served() <= {PKG, f"{PKG}.sub", f"{PKG}.mod"}


def test_a_missing_file_is_no_error(tree: Path) -> None:
    (tree / "cache").unlink()
    assert _import(tree, f"{PKG}.mod").double(1) == 3
    assert not _served()


def test_drop_removes_the_finder_and_closes_its_file(tree: Path) -> None:
    modcache.install(str(tree / "cache"))
    (finder,) = [f for f in sys.meta_path if isinstance(f, modcache.ModuleCache)]
    modcache.drop()
    assert finder not in sys.meta_path
    with pytest.raises(OSError):
        os.fstat(finder.fd)
    __import__(f"{PKG}.mod")
    assert not _served()


def test_the_launcher_serves_every_hutch_module_from_its_file(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "lib").mkdir()
    (bindir / "python").symlink_to(os.path.realpath(REPO / ".venv" / "bin" / "python"))
    launcher = str(REPO / "scripts" / "write-launcher")
    subprocess.run(
        [sys.executable, launcher, bindir / "python", bindir / "hutch", "hutch.cli.main", "--code", "hutch"],
        check=True,
    )
    text = (bindir / "hutch").read_text()
    assert f"modcache.install({str(tmp_path / 'lib' / 'hutch.modules')!r})" in text
    probe = text.split("from hutch.cli.main")[0] + (
        "import hutch.cli.main, hutch.engine.containers\n"
        "mods = [m for n, m in sys.modules.items() if n.startswith('hutch.') and n != 'hutch.modcache']\n"
        "print(len(mods), sum(isinstance(m.__loader__, modcache.ModuleCache) for m in mods))\n"
    )
    out = subprocess.run(
        [bindir / "hutch-python", "-IS", "-c", probe], capture_output=True, text=True, check=True
    )
    total, served = out.stdout.split()
    assert int(total) > 5 and served == total
