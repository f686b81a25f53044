"""The `hutch` parser builds only the subparser of the command it runs; the others must still parse."""

from __future__ import annotations

import pytest

from hutch.cli import main


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["ps", "-a"], "ps"),
        (["--root", "/r", "--db-path", "/d", "run", "-v", "x"], "run"),
        (["--root=/r", "--log-level", "debug", "image", "ls"], "image"),
        (["--help"], None),
        (["-v"], None),
        ([], None),
    ],
)
def test_command_of(argv: list[str], command: str | None) -> None:
    assert main.command_of(argv) == command


def test_only_the_chosen_command_is_built_and_parses() -> None:
    args = main._parser("images").parse_args(["images", "-q"])
    assert args.handler is main.cmd_images and args.quiet
    with pytest.raises(main.UsageError, match="invalid choice: 'pull'"):
        main._parser("images").parse_args(["pull", "x"])


def test_an_unknown_command_gets_the_full_list() -> None:
    with pytest.raises(main.UsageError, match="invalid choice: 'nope'.*'pull'.*'images'"):
        main._parser("nope").parse_args(["nope"])


def test_image_subcommands_parse_through_the_group() -> None:
    args = main._parser("image").parse_args(["image", "ls", "-q"])
    assert args.handler is main.cmd_images and args.quiet


def test_an_unexpected_error_is_one_line_and_125(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise KeyError("oops")

    monkeypatch.setattr(main, "cmd_images", broken)
    assert main.main(["images"]) == main.EXIT_ENGINE
    err = capsys.readouterr().err
    assert err == "Error: internal error: KeyError: 'oops' (--log-level debug shows where)\n"
    assert main.main(["--log-level", "debug", "images"]) == main.EXIT_ENGINE
    assert "Traceback" in capsys.readouterr().err


def test_help_is_as_wide_as_the_terminal_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    formatter = main._parser_class()(prog="hutch")._get_formatter()
    assert formatter._width == 38  # as argparse narrows shutil's answer
