"""hutch-runtime's launcher reads the command from the command line before the CLI is imported
(prespawn.command), to start the cgroup warm-up and the init ahead only for the commands that use them: it
must find the command cli's parser finds, whatever the global flags and the container's name."""

import pytest

from hutch.runtime import cli, prespawn

LINES = [
    ["run", "-b", "/b", "c1"],
    ["--root", "/r", "create", "--bundle", "/b", "c1"],
    ["--root=/r", "state", "run"],
    ["--root", "run", "list"],  # a state root called "run"
    ["--log", "create", "--log-format", "json", "delete", "create"],
    ["--debug", "--systemd-cgroup", "exec", "c1", "true"],
    ["--rootless", "false", "kill", "run", "9"],
    ["--criu", "x", "start", "create"],
    ["-v"],
    [],
]


@pytest.mark.parametrize("argv", LINES, ids=[" ".join(a) or "nothing" for a in LINES])
def test_the_command_is_the_one_the_cli_parser_finds(argv: list[str]) -> None:
    parsed = cli._parser(argv).parse(argv)
    assert prespawn.command(["hutch-runtime", *argv]) == (parsed.command or "")


def test_the_flags_skipped_are_the_global_flags_that_take_a_value() -> None:
    root = cli._parser([])
    valued = {name for f in root.flags if f.kind != "bool" for name in f.names}
    assert valued == set(prespawn._VALUED)
