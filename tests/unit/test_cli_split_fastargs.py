"""start, stop, rm, restart, kill, wait, exec, inspect and logs through hutch.cli.fastargs: their plain command
lines give argparse's namespace (the list of containers last); the others are argparse's."""

from __future__ import annotations

import pytest

from hutch.cli import fastargs, main


def _fast(argv: list[str]) -> fastargs.Namespace | None:
    recorder = fastargs.Recorder()
    main._parser(main.command_of(argv), recorder)
    return fastargs.parse(argv, recorder)


@pytest.mark.parametrize(
    "argv",
    [
        ["stop", "a"],
        ["stop", "-t", "5", "a", "b"],
        ["stop", "--time=0", "-a"],
        ["stop"],  # no container: the handler says so
        ["--root", "/r", "rm", "-f", "a", "b", "c"],
        ["rm", "-fv", "--depend", "-t", "3", "a"],
        ["rm", "-a", "-i"],
        ["rm", ""],
        ["start", "a"],
        ["start", "-ai", "--detach-keys", "ctrl-x", "a", "b"],
        ["exec", "c", "ls", "-l"],
        ["exec", "-it", "c", "sh"],
        ["exec", "-d", "-e", "A=1", "-u", "0", "-w", "/", "c", "sh", "-c", "x"],
        ["exec", "c", "-it", "sh"],  # words after the container are the command's
        ["restart", "-t", "0", "a", "b"],
        ["kill", "-s", "TERM", "a"],
        ["kill", "-a"],
        ["wait", "--condition", "running", "-i", "250ms", "a", "b"],
        ["inspect", "-f", "{{.Id}}", "a", "b"],
        ["logs", "-f", "-n", "--tail", "5", "--since", "10m", "-t", "a", "b"],
    ],
)
def test_plain_command_lines_give_argparses_namespace(argv: list[str]) -> None:
    fast = _fast(argv)
    assert fast is not None, argv
    assert vars(fast) == vars(main._parser(main.command_of(argv)).parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["start"],  # CONTAINER is required: argparse's error
        ["rm", "a", "-f", "b"],  # an option after the containers: argparse's error
        ["stop", "a", "-t", "5"],
        ["stop", "-t", "x", "a"],  # a bad value
        ["rm", "--forc", "a"],  # an abbreviation
        ["rm", "-h"],
        ["stop", "--", "a"],
        ["rm", "a", "-"],
        ["exec"],
        ["inspect"],
        ["kill", "a", "-s", "x"],
        ["logs", "--tail", "x", "a"],
    ],
)
def test_other_command_lines_are_left_to_argparse(argv: list[str]) -> None:
    assert _fast(argv) is None


def test_the_other_commands_are_not_declared() -> None:
    recorder = fastargs.Recorder()
    main._parser("stop", recorder)
    assert set(recorder.subcommands) == {"stop"}
