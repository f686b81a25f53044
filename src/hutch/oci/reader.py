"""A validating reader of JSON documents: typed getters that raise ConfigError naming the source and the JSON
path of the offending value (`config.json: process.rlimits[2].hard: expected an integer, got "x"`).

hutch.oci.config reads config.json with it, and hutch.oci.resources, seccomp, image and manifest their parts.
"""

from __future__ import annotations

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection
    from typing import Any, TypeVar

    _T = TypeVar("_T")

_KINDS = {str: "a string", bool: "a boolean", int: "an integer", dict: "an object", list: "an array"}


def quote(value: object) -> str:
    """`value` in JSON, as messages quote it. hutch.jsonfast is imported here, when a message needs it: an
    init started ahead parses the config it is sent with this module and loads no shared object for JSON."""
    from hutch import jsonfast

    return jsonfast.dumps(value)


def show(value: object) -> str:
    """A value as an error message quotes it: JSON, cut at 40 characters; objects and arrays by kind."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = quote(value)
    return text if len(text) <= 40 else text[:37] + "..."


def unknown(noun: str, value: str, known: Collection[str]) -> str:
    """The message for a value not among `known` (listed when there are at most ten)."""
    message = f"unknown {noun} {quote(value)}"
    return f"{message} (expected one of {', '.join(known)})" if len(known) <= 10 else message


class Reader:
    """One JSON object of a document at a JSON path, with typed getters that raise ConfigError.

    A missing key and a JSON null both read as absent.
    """

    __slots__ = ("doc", "path", "source")

    def __init__(self, doc: dict[str, Any], path: str, source: str) -> None:
        self.doc = doc
        self.path = path
        self.source = source

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, message: str) -> ConfigError:
        where = self.path if key is None else self.at(key)
        return ConfigError(f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}")

    def typed(self, key: str, value: object, kind: type[_T]) -> _T:
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        raise self.error(key, f"expected {_KINDS[kind]}, got {show(value)}")

    def get(self, key: str, kind: type[_T], required: bool = False) -> _T | None:
        value = self.doc.get(key)
        if value is None:
            if required:
                raise self.error(key, "required")
            return None
        return self.typed(key, value, kind)

    def bounded(self, key: str, value: int, bounds: tuple[int, int]) -> int:
        if not bounds[0] <= value <= bounds[1]:
            raise self.error(key, f"{value} is out of range ({bounds[0]}..{bounds[1]})")
        return value

    def string(self, key: str, required: bool = False, default: str = "") -> str:
        value = self.get(key, str, required)
        if value == "" and required:
            raise self.error(key, "must not be empty")
        return default if value is None else value

    def opt_string(self, key: str) -> str | None:
        return self.get(key, str)

    def boolean(self, key: str, required: bool = False) -> bool:
        return self.get(key, bool, required) or False

    def opt_boolean(self, key: str) -> bool | None:
        return self.get(key, bool)

    def opt_integer(self, key: str, bounds: tuple[int, int], required: bool = False) -> int | None:
        value = self.get(key, int, required)
        return None if value is None else self.bounded(key, value, bounds)

    def integer(self, key: str, bounds: tuple[int, int], required: bool = False) -> int:
        return self.opt_integer(key, bounds, required) or 0

    def strings(self, key: str) -> list[str]:
        return [self.typed(f"{key}[{i}]", v, str) for i, v in enumerate(self.get(key, list) or ())]

    def integers(self, key: str, bounds: tuple[int, int]) -> list[int]:
        items = enumerate(self.get(key, list) or ())
        return [self.bounded(f"{key}[{i}]", self.typed(f"{key}[{i}]", v, int), bounds) for i, v in items]

    def string_map(self, key: str) -> dict[str, str]:
        items = (self.get(key, dict) or {}).items()
        return {k: v if isinstance(v, str) else self.typed(f"{key}[{quote(k)}]", v, str) for k, v in items}

    def child(self, key: str) -> Reader | None:
        value = self.get(key, dict)
        return None if value is None else Reader(value, self.at(key), self.source)

    def need(self, key: str) -> Reader:
        return Reader(self.get(key, dict, required=True) or {}, self.at(key), self.source)

    def children(self, key: str) -> list[Reader]:
        items = enumerate(self.get(key, list) or ())
        return [
            Reader(self.typed(f"{key}[{i}]", v, dict), self.at(f"{key}[{i}]"), self.source) for i, v in items
        ]

    def raw(self, key: str) -> dict[str, Any] | None:
        return self.get(key, dict)

    def choice(self, key: str, known: Collection[str], noun: str, required: bool = False) -> str:
        value = self.string(key, required)
        if value and value not in known:
            raise self.error(key, unknown(noun, value, known))
        return value

    def names(self, key: str, known: Collection[str], noun: str) -> list[str]:
        values = self.strings(key)
        for i, value in enumerate(values):
            if value not in known:
                raise self.error(f"{key}[{i}]", unknown(noun, value, known))
        return values

    def abspath(self, key: str, required: bool = False) -> str:
        value = self.string(key, required)
        if value and not value.startswith("/"):
            raise self.error(key, f"{quote(value)} is not an absolute path")
        return value

    def abspaths(self, key: str) -> list[str]:
        values = self.strings(key)
        for i, value in enumerate(values):
            if not value.startswith("/"):
                raise self.error(f"{key}[{i}]", f"{quote(value)} is not an absolute path")
        return values
