"""The command line of the commands run most often (`run`, `create`, `ps`, `start`, `stop`, `rm`, `exec`,
...: COMMANDS) without argparse.

argparse costs `run --rm` ~5 ms (it imports re, enum, gettext and locale, and builds run's hundred flags). The
flags stay declared once, through add_argument: `Recorder` stands in for the parser and keeps what is declared,
and `parse` reads a command line written in the plain forms (`--flag`, `--flag VALUE`, `--flag=VALUE`, `-f
VALUE`, `-fVALUE`, `-it`, then the positionals, the last of which may take all the words left) into the
namespace argparse would make. For anything else -- an abbreviated or unknown flag, -h, `--`, a value argparse
would refuse or one that looks like a flag, an option after a list of words -- it returns None, and argparse
parses the line (and words the error): what argparse accepts or refuses stays so.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# argparse's own values, so that the flags can be declared without importing argparse.
REMAINDER = "..."
SUPPRESS = "==SUPPRESS=="
# The commands that go through `parse` first (hutch.cli.main): run and create (declared by hutch.cli.containers),
# ps (hutch.cli.psview), and the container commands of hutch.cli.containerops that are run most.
COMMANDS = (
    "run", "create", "ps", "start", "stop", "rm", "restart", "kill", "wait", "exec", "inspect", "logs",
)  # fmt: skip


class Namespace:
    """What `parse` returns: the values as attributes, like argparse's Namespace (types.SimpleNamespace would
    import types, ~0.2 ms, for this alone)."""


class _Flag:
    __slots__ = ("action", "const", "default", "dest", "nargs", "type", "choices", "required")

    def __init__(self, names: tuple[str, ...], kw: dict[str, Any]) -> None:
        action = kw.get("action", "store")
        self.action = action if action in ("store", "store_true", "append") else None  # None: argparse's
        if action == "store_true":
            kw.setdefault("default", False)
        elif action in ("help", "version"):
            kw["default"] = SUPPRESS
        self.const = kw.get("const")
        self.default = kw.get("default")
        long = [n for n in names if n.startswith("--")]
        self.dest = kw.get("dest") or (long or names)[0].lstrip("-").replace("-", "_")
        self.nargs = kw.get("nargs")
        self.type: Callable[[str], Any] | None = kw.get("type")
        self.choices = kw.get("choices")
        self.required = bool(kw.get("required"))


class Recorder:
    """Stands in for an argparse parser: keeps the flags and positionals declared on it, and the defaults.
    A declaration it cannot follow makes `parse` leave the line to argparse."""

    def __init__(self) -> None:
        self.options: dict[str, _Flag] = {}
        self.positionals: list[_Flag] = []
        self.defaults: dict[str, Any] = {}
        self.subcommands: dict[str, Recorder] = {}
        self.subcommand_dest = ""
        self.followable = True
        for name in ("-h", "--help"):
            self.options[name] = _Flag((name,), {"action": "help"})

    def add_argument(self, *names: str, **kw: Any) -> None:
        flag = _Flag(names, kw)
        if names[0].startswith("-"):
            for name in names:
                self.options[name] = flag
        else:
            flag.dest = kw.get("dest") or names[0]
            if flag.nargs not in (None, REMAINDER, "*", "+") or flag.action != "store":
                self.followable = False
            if self.positionals and self.positionals[-1].nargs in ("*", "+"):
                self.followable = False  # a list of words is read only as the last positional
            if flag.nargs in ("*", "+") and flag.choices:
                self.followable = False
            self.positionals.append(flag)

    def set_defaults(self, **kw: Any) -> None:
        self.defaults.update(kw)

    def add_subparsers(self, *, dest: str = "", **_kw: Any) -> Recorder:
        self.subcommand_dest = dest
        return self

    def add_parser(self, name: str, *, aliases: list[str] | tuple[str, ...] = (), **_kw: Any) -> Recorder:
        sub = Recorder()
        for word in (name, *aliases):
            self.subcommands[word] = sub
        return sub

    def __getattr__(self, name: str) -> Callable[..., Recorder]:
        """Any other parser method (a group, a mutually exclusive set): left to argparse."""
        self.followable = False
        return lambda *args, **kwargs: self


class _Refused(Exception):
    """The line is not in the plain forms `parse` reads: argparse's."""


def parse(argv: list[str], top: Recorder) -> Namespace | None:
    """The namespace argparse would make of `argv` with the parser `top` recorded, or None (see above)."""
    ns = Namespace()
    try:
        rest = _parse(top, argv, ns, commands=True)
    except _Refused:
        return None
    return ns if not rest else None


def _parse(p: Recorder, argv: list[str], ns: Namespace, commands: bool = False) -> list[str]:
    """Fill `ns` from `argv` as `p` reads it; returns what is left (argparse: unrecognized arguments)."""
    if not p.followable:
        raise _Refused
    seen: dict[str, Any] = {}
    positionals = list(p.positionals)
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--" or word == "-":
            raise _Refused
        if word.startswith("-"):
            i = _option(p, word, argv, i, seen)
            continue
        if commands and p.subcommands:
            sub = p.subcommands.get(word)
            if sub is None:
                raise _Refused
            _defaults(p, seen, ns)
            setattr(ns, p.subcommand_dest, word)
            subns = Namespace()
            left = _parse(sub, argv[i:], subns)
            ns.__dict__.update(subns.__dict__)  # argparse: the subcommand's values and defaults win
            return left
        if not positionals:
            return argv[i - 1 :]
        flag = positionals.pop(0)
        if flag.nargs in ("*", "+"):  # the words left; an option after them argparse would not parse
            if any(w.startswith("-") for w in argv[i:]):
                raise _Refused
            seen[flag.dest] = [_value(flag, w) for w in argv[i - 1 :]]
            i = len(argv)
            continue
        seen[flag.dest] = _value(flag, word)
        if positionals and positionals[0].nargs == REMAINDER:  # argparse takes it with the one before it
            seen[positionals.pop(0).dest] = argv[i:]
            i = len(argv)
    if commands and p.subcommands:
        raise _Refused  # no command: argparse prints the help
    for flag in positionals:
        if flag.nargs not in (REMAINDER, "*"):
            raise _Refused  # a required positional missing
        seen[flag.dest] = flag.default if flag.nargs == "*" and flag.default is not None else []
    _defaults(p, seen, ns)
    return []


def _option(p: Recorder, word: str, argv: list[str], i: int, seen: dict[str, Any]) -> int:
    """Take the option `word` (and its value from argv[i] if it needs one); returns the next index."""
    explicit: str | None = None
    if word.startswith("--"):
        name, eq, value = word.partition("=")
        if eq:
            explicit = value
    else:
        name, value = (word, "") if word in p.options else (word[:2], word[2:])
        flag = p.options.get(name)
        if value and flag is not None and flag.action == "store_true":  # -it: flags without values
            for letter in value:
                more = p.options.get("-" + letter)
                if more is None or more.action != "store_true":
                    raise _Refused
                seen[more.dest] = True
        elif value:
            explicit = value[1:] if value.startswith("=") else value
    flag = p.options.get(name)
    if flag is None or flag.action is None:
        raise _Refused  # unknown, abbreviated, or an action argparse must run (help, version, custom)
    if flag.action == "store_true":
        if explicit is not None and word.startswith("--"):
            raise _Refused
        seen[flag.dest] = True
        return i
    if flag.nargs == "?":
        if explicit is None:
            if i < len(argv) and not argv[i].startswith("-"):
                raise _Refused  # argparse would take the next word as the value
            seen[flag.dest] = flag.const
            return i
    elif flag.nargs is not None:
        raise _Refused
    elif explicit is None:
        if i >= len(argv) or argv[i].startswith("-"):
            raise _Refused
        explicit = argv[i]
        i += 1
    value = _value(flag, explicit)
    if flag.action == "append":
        seen[flag.dest] = [*seen.get(flag.dest, flag.default or []), value]
    else:
        seen[flag.dest] = value
    return i


def _value(flag: _Flag, text: str, check: bool = True) -> Any:
    try:
        value = flag.type(text) if flag.type is not None else text
    except Exception:
        raise _Refused from None  # argparse words the error
    if check and flag.choices is not None and value not in flag.choices:
        raise _Refused
    return value


def _defaults(p: Recorder, seen: dict[str, Any], ns: Namespace) -> None:
    """`ns` as argparse leaves it: every destination, given or its default (a string one through its type)."""
    flags = {id(f): f for f in p.options.values()}
    for flag in flags.values():
        if flag.dest in seen or flag.default == SUPPRESS:
            continue
        if flag.required:
            raise _Refused
        default = flag.default
        if isinstance(default, str) and flag.type is not None:
            default = _value(flag, default, check=False)  # argparse checks no default against choices
        setattr(ns, flag.dest, default)
    for dest, value in seen.items():
        setattr(ns, dest, value)
    for dest, value in p.defaults.items():
        if not hasattr(ns, dest):
            setattr(ns, dest, value)
