"""The `hutch` command line through argparse, for every command line hutch.cli.fastargs leaves to it: the
parser class (errors raise UsageError, help as wide as the terminal) and the parser of one command or all."""

from __future__ import annotations

import os

from hutch.cli.main import UsageError, global_flags

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any


def parser_class() -> type[argparse.ArgumentParser]:
    """hutch's argparse parser."""
    import argparse

    class Formatter(argparse.HelpFormatter):
        """argparse's help formatter, told the terminal's width: left to find it, it imports shutil (~2 ms)
        for every parser it builds, `hutch ps` included."""

        def __init__(
            self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
        ) -> None:
            if width is None:
                try:
                    width = int(os.environ.get("COLUMNS") or os.get_terminal_size(1).columns)
                except (OSError, ValueError):
                    width = 80
                width -= 2  # as argparse does with shutil's answer
            super().__init__(prog, indent_increment, max_help_position, width)

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("formatter_class", Formatter)
            super().__init__(*args, **kwargs)

        def error(self, message: str) -> None:  # type: ignore[override]
            raise UsageError(f"{self.prog}: {message}")

    return Parser


class _Unused:
    """Stands in for the parser of a command this invocation does not run: it swallows add_argument and the
    rest, so that only the chosen command's parser is built (argparse costs milliseconds per command)."""

    def __getattr__(self, name: str) -> Callable[..., _Unused]:
        return lambda *args, **kwargs: self


# The top-level commands (and aliases) of hutch.cli.imageops.register and hutch.cli.containerops.register.
# A command missing from the lists below is taken for an unknown one: the full parser is built, and runs it.
_IMAGES = ("pull", "push", "images", "rmi", "tag", "history", "save", "load", "import")
_CONTAINERS = (
    "top", "stats", "pause", "unpause", "rename", "cp", "diff", "commit", "export",  # hutch.cli.manage
    "run", "create", "ps", "list", "ls",  # hutch.cli.containers, hutch.cli.psview
    "start", "stop", "restart", "kill", "wait", "exec", "inspect", "rm", "update", "container",
    "logs", "attach",  # hutch.cli.monitor
)  # fmt: skip


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `hutch` parser, in `hutch --help`'s order; given `command`, only that command's subparser is built
    (see _Unused), and only the module that declares it is imported."""
    cls = parser_class()
    p = cls(prog="hutch", description="a daemonless container engine")
    sub = global_flags(p, cls)
    built: list[str] = []

    def add(
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Callable[[argparse.Namespace], int],
        help: str,
        aliases: tuple[str, ...] = (),
    ) -> argparse.ArgumentParser:
        if isinstance(parent, _Unused) or (
            command is not None and parent is sub and command != name and command not in aliases
        ):
            return _Unused()  # type: ignore[return-value]
        built.append(name)
        c = parent.add_parser(name, help=help, aliases=list(aliases))
        c.set_defaults(handler=handler)
        return c

    def wanted(names: tuple[str, ...]) -> bool:
        return command is None or command in names

    if wanted(_IMAGES):
        from hutch.cli import imageops

        imageops.register(sub, add)
    if wanted(_CONTAINERS):
        from hutch.cli import containerops

        containerops.register(sub, add, command)
    if wanted(("version", "info", "system")):
        from hutch.cli import manage

        manage.register_system(sub, add)
    if wanted(("volume",)):
        from hutch.cli import volumes

        volumes.register(sub, add)
    if wanted(("healthcheck",)):
        from hutch.cli import health

        health.register(sub, add)
    if wanted(("network", "port")):
        from hutch.cli import networks

        networks.register(sub, add)
    if wanted(("pod",)):
        from hutch.cli import pods

        pods.register(sub, add)
    if wanted(("login", "logout", "image")):
        from hutch.cli import imageops

        imageops.register_group(sub, add)
    if command is not None and not built:
        return parser()  # an unknown command: the full parser names the known ones in its error
    return p
