"""A small command-line parser with runc's conventions, for a CLI that must start fast.

argparse costs ~8 ms on every start (it pulls in re, gettext, shutil and locale); hutch-runtime is called
many times per container by podman and containerd. Flags are `--name value`, `--name=value`, `-n value`;
a long flag may also be written with one dash (`-bundle`), as Go's flag package allows; `--` ends flags.
"""

from __future__ import annotations

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import SimpleNamespace
else:

    class SimpleNamespace:
        """Attributes from keywords: types.SimpleNamespace's part that parse needs, without `types` (~0.2 ms)."""

        def __init__(self, **values: object) -> None:
            self.__dict__.update(values)


_KINDS = ("bool", "str", "int", "list", "intlist")


class UsageError(HutchError):
    """A command line that does not parse."""


class _Flag:
    __slots__ = ("names", "dest", "kind", "default", "help", "choices")

    def __init__(
        self, names: tuple[str, ...], kind: str, default: object, help: str, choices: tuple[str, ...]
    ):
        self.names = names
        self.dest = max(names, key=len).lstrip("-").replace("-", "_")
        self.kind = kind
        self.default = default
        self.help = help
        self.choices = choices


class Command:
    """A set of flags and positional arguments; the root command also holds subcommands."""

    def __init__(self, name: str, help: str = "", handler: Callable[[SimpleNamespace], int] | None = None):
        self.name = name
        self.help = help
        self.handler = handler
        self.flags: list[_Flag] = []
        self.positionals: list[tuple[str, str]] = []  # (dest, "required" | "optional" | "rest")
        self.subcommands: dict[str, Command] = {}

    def flag(
        self,
        *names: str,
        kind: str = "str",
        default: object = None,
        help: str = "",
        choices: tuple[str, ...] = (),
    ) -> Command:
        assert kind in _KINDS
        if kind == "bool" and default is None:
            default = False
        self.flags.append(_Flag(names, kind, default, help, choices))
        return self

    def arg(self, dest: str, how: str = "required") -> Command:
        assert dest not in ("command", "handler", "help"), f"{dest!r} is taken by the parser itself"
        self.positionals.append((dest, how))
        return self

    def command(self, name: str, help: str, handler: Callable[[SimpleNamespace], int]) -> Command:
        sub = Command(name, help, handler)
        self.subcommands[name] = sub
        return sub

    def parse(self, argv: list[str]) -> SimpleNamespace:
        """Parse `argv`; the result has every flag's dest, `command` and `handler` (None when no command)."""
        ns = SimpleNamespace(command=None, handler=None, help=False)
        rest = self._parse_into(ns, argv, allow_sub=True)
        if rest:
            raise UsageError(f"{self.name}: unexpected argument {rest[0]!r}")
        return ns

    def _parse_into(self, ns: SimpleNamespace, argv: list[str], allow_sub: bool) -> list[str]:
        for f in self.flags:
            setattr(ns, f.dest, list(f.default) if isinstance(f.default, list) else f.default)
        byname = {n: f for f in self.flags for n in f.names}
        positional: list[str] = []
        i = 0
        while i < len(argv):
            word = argv[i]
            i += 1
            rest_started = any(how == "rest" for _, how in self.positionals[: len(positional)])
            if word == "--" or rest_started:
                positional.extend(argv[i - 1 if word != "--" else i :])
                break
            if word in ("-h", "--help"):
                ns.help = True
                continue
            if word.startswith("-") and word != "-":
                name, eq, value = word.partition("=")
                flag = (
                    byname.get(name) or byname.get("-" + name)
                    if not name.startswith("--")
                    else byname.get(name)
                )
                if flag is None:
                    raise UsageError(f"{self._where()}: unknown flag {name}")
                if flag.kind == "bool":
                    setattr(ns, flag.dest, _bool(value, name) if eq else True)
                    continue
                if not eq:
                    if i >= len(argv):
                        raise UsageError(f"{self._where()}: flag {name} needs a value")
                    value = argv[i]
                    i += 1
                self._set(ns, flag, name, value)
                continue
            if allow_sub and self.subcommands and ns.command is None:
                sub = self.subcommands.get(word)
                if sub is None:
                    raise UsageError(f"{self.name}: unknown command {word!r}")
                ns.command, ns.handler = word, sub.handler
                return sub._parse_into(ns, argv[i:], allow_sub=False)
            positional.append(word)
        self._assign(ns, positional)
        return []

    def _set(self, ns: SimpleNamespace, flag: _Flag, name: str, value: str) -> None:
        if flag.choices and value not in flag.choices:
            raise UsageError(
                f"{self._where()}: {name} must be one of {', '.join(flag.choices)}, not {value!r}"
            )
        if flag.kind in ("int", "intlist"):
            try:
                parsed: object = int(value)
            except ValueError:
                raise UsageError(f"{self._where()}: {name} needs an integer, not {value!r}") from None
        else:
            parsed = value
        if flag.kind in ("list", "intlist"):
            getattr(ns, flag.dest).append(parsed)
        else:
            setattr(ns, flag.dest, parsed)

    def _assign(self, ns: SimpleNamespace, words: list[str]) -> None:
        if ns.help:
            return
        for dest, how in self.positionals:
            if how == "rest":
                setattr(ns, dest, words)
                words = []
            elif words:
                setattr(ns, dest, words.pop(0))
            elif how == "required":
                raise UsageError(f"{self._where()}: missing argument {dest.upper()}")
            else:
                setattr(ns, dest, None)
        if words:
            raise UsageError(f"{self._where()}: unexpected argument {words[0]!r}")

    def _where(self) -> str:
        return f"hutch-runtime {self.name}" if self.name != "hutch-runtime" else self.name

    def usage(self) -> str:
        lines = [f"usage: {self._where()} [flags]" + "".join(f" {d.upper()}" for d, _ in self.positionals)]
        if self.help:
            lines.append(f"\n{self.help}")
        if self.subcommands:
            lines.append("\ncommands:")
            lines += [f"  {name:<10} {sub.help}" for name, sub in self.subcommands.items()]
        if self.flags:
            lines.append("\nflags:")
            for f in self.flags:
                lines.append(f"  {', '.join(f.names):<26} {f.help}".rstrip())
        return "\n".join(lines)


def _bool(value: str, name: str) -> bool:
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise UsageError(f"flag {name}: expected true or false, not {value!r}")
