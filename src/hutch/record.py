"""A fast stand-in for `dataclasses.dataclass` on the runtime's hot path.

`dataclasses` costs about 12 ms to import (it pulls in `inspect`) and then ~0.2 ms per class, because it
generates code with exec(); `hutch-runtime run` has ~40 such classes and must start faster than runc.
This decorator builds the same kind of class (init, repr, eq; positional or keyword construction; defaults
and default factories) from the annotations alone, with no code generation. Modules import it like this so
the type checker still sees real dataclasses:

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from dataclasses import dataclass, field
    else:
        from hutch.record import dataclass, field

Only the options the project uses are accepted (`slots` and `kw_only` are accepted and ignored).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_MISSING: Any = object()


class _Field:
    __slots__ = ("default", "factory")

    def __init__(self, default: Any, factory: Any) -> None:
        self.default = default
        self.factory = factory


def field(*, default: Any = _MISSING, default_factory: Any = _MISSING) -> Any:
    return _Field(default, default_factory)


def dataclass(cls: Any = None, /, **_options: Any) -> Any:
    def wrap(cls: type) -> Any:
        return _build(cls)

    return wrap if cls is None else wrap(cls)


def _build(cls: Any) -> Any:
    names: list[str] = []
    defaults: dict[str, tuple[Any, Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        for name in getattr(base, "__record_fields__", ()):
            if name not in names:
                names.append(name)
            defaults.update({k: v for k, v in base.__record_defaults__.items() if k == name})
    for name in cls.__dict__.get("__annotations__", {}):
        if name not in names:
            names.append(name)
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, _Field):
            defaults[name] = (value.default, value.factory)
            delattr(cls, name)
        elif value is not _MISSING:
            defaults[name] = (value, _MISSING)
    cls.__record_fields__ = tuple(names)
    cls.__record_defaults__ = defaults
    setattr(cls, "__match_args__", tuple(names))  # noqa: B010 - assigned on purpose, as dataclasses does
    cls.__init__ = _make_init(cls.__name__, tuple(names), defaults)
    cls.__repr__ = _repr
    cls.__eq__ = _eq
    cls.__hash__ = None
    return cls


def _make_init(
    cls_name: str, names: tuple[str, ...], defaults: dict[str, tuple[Any, Any]]
) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls_name}() takes {len(names)} arguments, {len(args)} given")
        for name, value in zip(names, args, strict=False):
            self.__dict__[name] = value
        for name in names[len(args) :]:
            if name in kwargs:
                self.__dict__[name] = kwargs.pop(name)
            elif name in defaults:
                default, factory = defaults[name]
                self.__dict__[name] = factory() if factory is not _MISSING else default
            else:
                raise TypeError(f"{cls_name}() missing argument {name!r}")
        if kwargs:
            raise TypeError(f"{cls_name}() got unexpected arguments {sorted(kwargs)}")

    return __init__


def _repr(self: Any) -> str:
    inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__record_fields__)
    return f"{type(self).__name__}({inner})"


def _eq(self: Any, other: Any) -> Any:
    if type(other) is not type(self):
        return NotImplemented
    return all(getattr(self, n) == getattr(other, n) for n in self.__record_fields__)
