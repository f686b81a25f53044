"""The runc-style command-line parser: the forms callers of runc use must parse the same way."""

import pytest

from hutch.runtime.args import Command, UsageError


def _cli() -> Command:
    root = Command("hutch-runtime")
    root.flag("--root", default="/run/x")
    root.flag("--debug", kind="bool")
    run = root.command("run", "run", lambda a: 0)
    run.flag("-b", "--bundle", default=".")
    run.flag("-d", "--detach", kind="bool")
    run.flag("--preserve-fds", kind="int", default=0)
    run.arg("id")
    ex = root.command("exec", "exec", lambda a: 0)
    ex.flag("-e", "--env", kind="list", default=[])
    ex.flag("--log-format", choices=("text", "json"), default="text")
    ex.arg("id").arg("process_args", "rest")
    kill = root.command("kill", "kill", lambda a: 0)
    kill.arg("id").arg("signal", "optional")
    return root


def test_global_and_command_flags_in_every_spelling() -> None:
    ns = _cli().parse(["--root=/r", "--debug", "run", "-bundle", "/b", "--preserve-fds", "2", "-d", "c1"])
    assert (ns.root, ns.debug, ns.command, ns.bundle, ns.preserve_fds, ns.detach, ns.id) == (
        "/r",
        True,
        "run",
        "/b",
        2,
        True,
        "c1",
    )


def test_flags_after_the_id_still_parse() -> None:
    assert _cli().parse(["run", "c1", "--bundle=/b"]).bundle == "/b"


def test_exec_command_keeps_its_own_flags() -> None:
    ns = _cli().parse(["exec", "-e", "A=1", "--env", "B=2", "c1", "ls", "-la", "--", "x"])
    assert ns.env == ["A=1", "B=2"]
    assert (ns.command, ns.id, ns.process_args) == ("exec", "c1", ["ls", "-la", "--", "x"])


def test_rest_argument_holds_everything_after_the_id() -> None:
    ns = _cli().parse(["exec", "c1", "sh", "-c", "echo --root"])
    assert ns.process_args == ["sh", "-c", "echo --root"]
    assert ns.root == "/run/x"


def test_a_positional_cannot_shadow_the_command_name() -> None:
    with pytest.raises(AssertionError):
        Command("x").arg("command")


def test_optional_positional() -> None:
    assert _cli().parse(["kill", "c1"]).signal is None
    assert _cli().parse(["kill", "c1", "KILL"]).signal == "KILL"


def test_bool_flag_with_explicit_value() -> None:
    assert _cli().parse(["run", "--detach=false", "c1"]).detach is False


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run"], "missing argument ID"),
        (["run", "--bogus", "c1"], "unknown flag --bogus"),
        (["run", "--preserve-fds", "x", "c1"], "needs an integer"),
        (["exec", "--log-format", "xml", "c1", "ls"], "must be one of text, json"),
        (["nosuch"], "unknown command 'nosuch'"),
        (["run", "c1", "extra"], "unexpected argument 'extra'"),
        (["run", "--bundle"], "needs a value"),
    ],
)
def test_bad_command_lines_are_one_line_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _cli().parse(argv)
