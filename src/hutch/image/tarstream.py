"""A lean reader of the tar streams image layers are: ustar, GNU long names and links, PAX extended headers.

tarfile's general path cost about 70 µs of Python per entry on a Debian layer (a member object, a copy of
its read-ahead per header, the PAX records through a regex, a copy of every data block); here an entry is
one 512-byte slice and a few field conversions, and file data goes to `os.write` as memoryview slices of
the chunks the decompressor made, never copied. Sparse files (GNU 'S' and PAX GNU.sparse.*) are reported as
the type SPARSE for the caller to refuse. Global PAX headers are skipped, as containers/storage and
containerd (Go's archive/tar) skip them. Every header's checksum is verified.
"""

from __future__ import annotations

import os
from collections.abc import Callable

REG = 0x30  # '0'; '\0' (old tar) and '7' (contiguous file) are read as REG
LNK = 0x31
SYM = 0x32
CHR = 0x33
BLK = 0x34
DIR = 0x35
FIFO = 0x36
SPARSE = 0x53  # 'S'

_BLOCK = 512
_ZEROS = bytes(_BLOCK)
_HEADER_ONLY = frozenset((LNK, SYM, CHR, BLK, DIR, FIFO))  # their size field is ignored (no data follows)
_MAX_EXTENDED = 1 << 20  # a PAX header or GNU long name bigger than this is refused, not read into memory
_CHUNK = 1 << 20


class TarError(Exception):
    """The stream is not a well-formed tar; the message says what is wrong."""


class Entry:
    """One member. `mtime_ns` is in nanoseconds; `pax` holds the member's raw PAX records (None without)."""

    __slots__ = (
        "name",
        "type",
        "mode",
        "uid",
        "gid",
        "size",
        "mtime_ns",
        "linkname",
        "devmajor",
        "devminor",
        "pax",
    )

    name: str
    type: int
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: str
    devmajor: int
    devminor: int
    pax: dict[str, bytes] | None


class Reader:
    """Entries of the tar read by `read(n)` (chunks of any size; b"" at the end), one `next()` at a time;
    a regular entry's data is written by `write_data` or skipped by the next `next()`."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._buf = b""
        self._view = memoryview(self._buf)
        self._pos = 0
        self._left = 0  # data and padding of the current entry not consumed yet

    def _fill(self) -> bool:
        """The next chunk in place of the used one; False at the end of the stream."""
        data = self._read(_CHUNK)
        self._buf, self._view, self._pos = data, memoryview(data), 0
        return bool(data)

    def _take(self, n: int) -> bytes:
        """The next `n` bytes (fewer only at the end of the stream)."""
        pos, end = self._pos, self._pos + n
        if end <= len(self._buf):
            self._pos = end
            return self._buf[pos:end]
        parts = [self._buf[pos:]]
        need = n - len(parts[0])
        while need and self._fill():
            parts.append(self._buf[:need])
            self._pos = len(parts[-1])
            need -= self._pos
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        while n:
            room = len(self._buf) - self._pos
            if room >= n:
                self._pos += n
                return
            n -= room
            if not self._fill():
                raise TarError("unexpected end of data")

    def _extended(self, size: int) -> bytes:
        """The data of a PAX header or GNU long name entry, and its padding consumed."""
        if size > _MAX_EXTENDED:
            raise TarError(f"extended header of {size} bytes (more than {_MAX_EXTENDED})")
        data = self._take(size)
        if len(data) < size:
            raise TarError("unexpected end of data")
        self._skip(-size % _BLOCK)
        return data

    def write_data(self, fd: int, size: int) -> None:
        """Write the current entry's `size` bytes of data to `fd`, straight from the chunks."""
        while size:
            if self._pos >= len(self._buf) and not self._fill():
                raise TarError("unexpected end of data")
            end = min(len(self._buf), self._pos + size)
            view = self._view[self._pos : end]
            size -= end - self._pos
            self._left -= end - self._pos
            self._pos = end
            while view:
                view = view[os.write(fd, view) :]

    def next(self) -> Entry | None:
        """The next entry, None at the end of the archive (a zero block, or the end of the stream)."""
        if self._left:
            self._skip(self._left)
            self._left = 0
        longname = longlink = None
        pax: dict[str, bytes] | None = None
        while True:
            hdr = self._take(_BLOCK)
            if len(hdr) < _BLOCK:
                if hdr or pax is not None or longname is not None or longlink is not None:
                    raise TarError("unexpected end of data")
                return None
            if hdr == _ZEROS:
                return None
            _check(hdr)
            kind = hdr[156]
            size = _number(hdr[124:136])
            if kind == 0x78 or kind == 0x58:  # 'x', 'X' (Solaris): PAX records for the next member
                pax = _pax(self._extended(size), pax)
            elif kind == 0x67:  # 'g': global PAX header
                self._skip(size + (-size % _BLOCK))
            elif kind == 0x4C:  # 'L': GNU long name of the next member
                longname = _text(_cstr(self._extended(size)))
            elif kind == 0x4B:  # 'K': GNU long link target
                longlink = _text(_cstr(self._extended(size)))
            else:
                break
        e = _entry(hdr, kind, size)
        if longname is not None:
            e.name = longname
        if longlink is not None:
            e.linkname = longlink
        if pax is not None:
            _apply_pax(e, pax)
        if e.type == REG and e.name.endswith("/") and kind == 0:
            e.type = DIR  # old tar: a directory is a regular file with a trailing slash
        if e.size < 0:
            raise TarError(f"negative size {e.size}")
        self._left = 0 if e.type in _HEADER_ONLY else e.size + (-e.size % _BLOCK)
        return e


def _check(hdr: bytes) -> None:
    """The header checksum: the bytes' sum with the checksum field as spaces (unsigned, or signed as some
    old tars computed it)."""
    stored = _number(hdr[148:156])
    unsigned = sum(hdr) - sum(hdr[148:156]) + 256
    if stored != unsigned:
        signed = sum(b - 256 if b > 127 else b for b in hdr) - sum(hdr[148:156]) + 256
        if stored != signed:
            raise TarError("bad header checksum")


def _entry(hdr: bytes, kind: int, size: int) -> Entry:
    e = Entry()
    e.type = REG if kind in (0, 0x37) else kind
    name = _cstr(hdr[0:100])
    if hdr[257:263] == b"ustar\x00" and hdr[345]:  # POSIX ustar: a prefix of the name (star's is shorter)
        prefix = _cstr(hdr[345:476] if hdr[508:512] == b"tar\x00" else hdr[345:500])
        name = prefix + b"/" + name
    e.name = _text(name)
    e.mode = _number(hdr[100:108])
    e.uid = _number(hdr[108:116])
    e.gid = _number(hdr[116:124])
    e.size = size
    e.mtime_ns = _number(hdr[136:148]) * 1_000_000_000
    e.linkname = _text(_cstr(hdr[157:257]))
    if kind in (CHR, BLK):
        e.devmajor = _number(hdr[329:337])
        e.devminor = _number(hdr[337:345])
    else:
        e.devmajor = e.devminor = 0
    e.pax = None
    return e


def _pax(data: bytes, into: dict[str, bytes] | None) -> dict[str, bytes]:
    """The records "LENGTH KEY=VALUE\\n" of a PAX header, added to `into`; values are kept as bytes."""
    out = {} if into is None else into
    pos, end = 0, len(data)
    while pos < end and data[pos]:
        space = data.find(b" ", pos, pos + 20)
        digits = data[pos:space] if space > pos else b""
        if not digits.isdigit():
            raise TarError("invalid PAX record length")
        stop = pos + int(digits)
        if stop > end or stop < space + 4 or data[stop - 1] != 0x0A:
            raise TarError("invalid PAX record")
        key, eq, value = data[space + 1 : stop - 1].partition(b"=")
        if not eq or not key:
            raise TarError("invalid PAX record")
        out[key.decode("utf-8", "surrogateescape")] = value
        pos = stop
    return out


def _apply_pax(e: Entry, pax: dict[str, bytes]) -> None:
    e.pax = pax
    for key in ("path", "linkpath"):
        if b"\0" in pax.get(key, b""):
            raise TarError(f"a NUL byte in the PAX {key} {pax[key]!r}")
    try:
        if (v := pax.get("path")) is not None:
            e.name = _text(v)
        if (v := pax.get("linkpath")) is not None:
            e.linkname = _text(v)
        if (v := pax.get("size")) is not None:
            e.size = int(v)
        if (v := pax.get("uid")) is not None:
            e.uid = int(v)
        if (v := pax.get("gid")) is not None:
            e.gid = int(v)
        if (v := pax.get("mtime")) is not None:
            e.mtime_ns = _ns(v)
    except ValueError:
        raise TarError("invalid number in a PAX record") from None
    if any(k.startswith("GNU.sparse.") for k in pax):
        e.type = SPARSE


def _ns(value: bytes) -> int:
    """A PAX time ("SECONDS[.FRACTION]", maybe negative) in nanoseconds."""
    sec, _, frac = value.partition(b".")
    if not (frac.isdigit() or not frac) or not sec.lstrip(b"-").isdigit():
        raise ValueError(value)
    ns = int(frac[:9].ljust(9, b"0")) if frac else 0
    return int(sec) * 1_000_000_000 + (-ns if sec.startswith(b"-") else ns)


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU's base-256 (the first byte 0x80, or 0xff if negative)."""
    first = field[0]
    if first == 0x80 or first == 0xFF:
        n = int.from_bytes(field[1:], "big")
        return n - 256 ** (len(field) - 1) if first == 0xFF else n
    text = _cstr(field).strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarError(f"invalid number field {field!r}") from None


def _cstr(field: bytes) -> bytes:
    end = field.find(0)
    return field if end < 0 else field[:end]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")
