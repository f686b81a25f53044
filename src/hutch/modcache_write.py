"""Write the module cache file that hutch/modcache.py serves imports from (its docstring has the layout)."""

import __future__

import ast
import marshal
import os
import types

from hutch.modcache import MARK


def write(path: str, root: str, package: str) -> None:
    """Compile every module of `package`, a directory under `root`, into a cache file at `path`, atomically."""
    index = {}
    blobs = []
    offset = 0
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, package)):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for filename in sorted(f for f in filenames if f.endswith(".py")):
            source = os.path.join(dirpath, filename)
            st = os.stat(source)  # before the read: a change while reading makes the entry stale, not wrong
            with open(source, "rb") as f:
                blob = marshal.dumps(_compile(f.read(), source))
            parts = os.path.relpath(source, root)[: -len(".py")].split(os.sep)
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            index[name] = _record(offset, len(blob), st, is_package)
            blobs.append(blob)
            offset += len(blob)
    table = marshal.dumps((os.path.abspath(root), index))
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as out:
        os.fchmod(out.fileno(), 0o644)  # whatever the umask: the reader refuses a file others can write
        out.write(MARK + len(table).to_bytes(4, "little") + table + b"".join(blobs))
    os.replace(tmp, path)


def _compile(text: bytes, source: str) -> types.CodeType:
    """The module's code, its `from __future__ import ...` statements turned into compiler flags: run, each
    imports the __future__ module, which only the first of a process does, from disk (~0.15 ms) and for
    nothing else. The code is otherwise the same; only the module's global `annotations` is not bound."""
    tree = ast.parse(text, source)
    flags = 0
    body = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                flags |= getattr(__future__, alias.name).compiler_flag
        else:
            body.append(node)
    tree.body = body
    code: types.CodeType = compile(tree, source, "exec", flags=flags, dont_inherit=True)
    return code


def _record(offset: int, length: int, st: os.stat_result, is_package: bool) -> bytes:
    fields = ((offset, 4), (length, 4), (st.st_mtime_ns, 8), (st.st_size, 8), (is_package, 1))
    return b"".join(n.to_bytes(size, "little") for n, size in fields)
