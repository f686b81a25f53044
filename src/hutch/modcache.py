"""One file of compiled code for a package's modules: the `hutch` launcher imports hutch's modules from it.

A normal import asks the builtin and frozen importers, stats the module's directory, then opens, reads and
validates its .pyc; `hutch run` imports ~74 hutch modules. Here the index is read once and each module costs
one stat of its source and one pread of its code. A module whose source changed since the file was written
(mtime or size) is imported the normal way, so an edit never runs stale code; so is every module when the file
is missing, corrupt, of another Python's bytecode, or writable by anyone but its owner, root or the user
running it (it is code).

The file (hutch/modcache_write.py writes it): MARK, the index's length (4 bytes), the index, then each module's
code (marshal). The index is marshal's (source root, {module name: record}); a record is bytes: the code's
offset after the index (4) and length (4), the source's st_mtime_ns (8) and st_size (8), and 1 if the module is
a package (1), integers little-endian. Bytes rather than a tuple: fewer objects, loaded in ~20 us, not ~60.
"""

import marshal
import os
import sys
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import MAGIC_NUMBER

TYPE_CHECKING = False  # mypy takes it as true; `typing` and `types` cost an import each
if TYPE_CHECKING:
    from types import ModuleType

MARK = b"hutch.modules\0" + MAGIC_NUMBER
_HEAD = len(MARK) + 4
_CODE = type((lambda: None).__code__)
_BROKEN = (OSError, ValueError, EOFError, TypeError, IndexError)  # what a short or corrupt file raises


def _field(record: bytes, start: int, end: int) -> int:
    return int.from_bytes(record[start:end], "little")


class ModuleCache:
    """A meta-path finder and loader serving the modules of one cache file."""

    def __init__(self, fd: int, root: str, index: dict[str, bytes], base: int) -> None:
        self.fd = fd
        self.root = root
        self.index = index
        self.base = base

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        record = self.index.get(name)
        if record is None:
            return None
        where = f"{self.root}/{name.replace('.', '/')}"
        try:
            package = record[24] == 1
            origin = f"{where}/__init__.py" if package else f"{where}.py"
            length = _field(record, 4, 8)
            st = os.stat(origin)
            if st.st_mtime_ns != _field(record, 8, 16) or st.st_size != _field(record, 16, 24):
                return None
            data = os.pread(self.fd, length, self.base + _field(record, 0, 4))
            code = marshal.loads(data) if len(data) == length else None
        except _BROKEN:
            return None
        if type(code) is not _CODE:
            return None
        # A loader by duck typing: importlib.abc.Loader, its base in typeshed, costs importlib.abc's import.
        spec = ModuleSpec(name, self, origin=origin, loader_state=code, is_package=package)  # type: ignore[arg-type]
        spec.has_location = True
        if package:
            spec.submodule_search_locations = [where]
        return spec

    def create_module(self, spec: ModuleSpec) -> None:
        return None

    def exec_module(self, module: "ModuleType") -> None:
        spec = module.__spec__
        assert spec is not None
        code, spec.loader_state = spec.loader_state, None
        exec(code, module.__dict__)


installed = ""  # the file install() took, for a fresh interpreter of ours to take too (runtime.prespawn)


def install(path: str) -> None:
    """Serve modules from the cache file at `path` before any other finder, if it can be trusted.

    First, so that a module of the file skips the builtin and frozen importers' look-ups (~3 us each); any
    other name costs one dict look-up here.
    """
    global installed
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    cache = _read(fd)
    if cache is None:
        os.close(fd)
    else:
        sys.meta_path.insert(0, cache)
        installed = path


def _read(fd: int) -> ModuleCache | None:
    st = os.fstat(fd)
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
        return None
    try:
        head = os.pread(fd, _HEAD, 0)
        if len(head) != _HEAD or head[: len(MARK)] != MARK:
            return None
        length = int.from_bytes(head[len(MARK) :], "little")
        root, index = marshal.loads(os.pread(fd, length, _HEAD))
    except _BROKEN:
        return None
    if type(root) is not str or type(index) is not dict:
        return None
    return ModuleCache(fd, root, index, _HEAD + length)


def drop() -> None:
    """Stop serving modules from cache files and close them (a host fd must not reach a container)."""
    for finder in [f for f in sys.meta_path if isinstance(f, ModuleCache)]:
        sys.meta_path.remove(finder)
        os.close(finder.fd)
