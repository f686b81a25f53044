"""JSON on the hot path, through the C accelerator that the `json` package itself uses.

`import json` costs ~6 ms, nearly all of it `re` and `enum`, which json's pure-Python fallbacks need and
its C scanner and encoder do not. `hutch-runtime run` reads config.json and writes state.json, so this
module calls `_json` directly and falls back to `json` when the accelerator is missing (another Python
implementation) or for pretty-printing, which only the pure-Python encoder does. (Init, a child, gets its
container and its messages in marshal, which is built in: it loads no shared object for JSON.)
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    import _json as _accelerator
except ImportError:  # pragma: no cover - CPython always has it
    _accelerator = None  # type: ignore[assignment]
_json: Any = _accelerator


def _constant(name: str) -> float:
    raise ValueError(f"invalid JSON constant {name}")


class _Context:
    """What the C scanner reads from its context: the json.JSONDecoder defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo: dict[str, str] = {}


_WHITESPACE = " \t\n\r"


class DecodeError(ValueError):
    """Invalid JSON; `lineno` and `colno` say where, as json.JSONDecodeError does."""

    def __init__(self, msg: str, doc: str, pos: int) -> None:
        self.msg = msg
        self.lineno = doc.count("\n", 0, pos) + 1
        self.colno = pos - doc.rfind("\n", 0, pos)
        self.pos = pos
        super().__init__(f"{msg}: line {self.lineno} column {self.colno} (char {pos})")


def loads(text: str) -> Any:
    if _json is None:
        import json

        return json.loads(text)
    scan = _json.make_scanner(_Context())
    pos = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = scan(text, pos)
    except StopIteration as e:
        raise DecodeError("Expecting value", text, e.value) from None
    except ValueError as e:
        if hasattr(e, "pos"):  # json.JSONDecodeError, raised by the scanner through json.decoder
            raise DecodeError(getattr(e, "msg", str(e)), text, e.pos) from None
        raise
    except SystemError:
        # Some truncated documents make the bare C scanner fail without an error of its own; the error
        # path can afford `json`, which reports where the text went wrong.
        import json

        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            raise DecodeError(e.msg, text, e.pos) from None
        raise
    rest = len(text) - len(text[end:].lstrip(_WHITESPACE))
    if rest != len(text):
        raise DecodeError("Extra data", text, rest)
    return value


def dumps(value: Any, indent: int | str | None = None) -> str:
    """JSON text as json.dumps(value, indent=indent) writes it."""
    if _json is None:
        import json

        return json.dumps(value, indent=indent)
    if indent is not None:
        step = " " * indent if isinstance(indent, int) else indent
        return "".join(_pretty(value, step, "\n"))
    encode = _json.make_encoder(
        {}, _default, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return "".join(encode(value, 0))


def _pretty(value: Any, step: str, newline: str) -> Any:
    inner = newline + step
    if isinstance(value, dict) and value:
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield ("," if i else "") + inner + dumps(str(key)) + ": "
            yield from _pretty(item, step, inner)
        yield newline + "}"
    elif isinstance(value, (list, tuple)) and value:
        yield "["
        for i, item in enumerate(value):
            yield ("," if i else "") + inner
            yield from _pretty(item, step, inner)
        yield newline + "]"
    else:
        yield dumps(value)


def _default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
