"""hutch.cli.fastargs: the command lines it reads (run, create, ps, start, stop, rm, restart, kill, wait, exec,
inspect, logs) give argparse's namespace; the others are argparse's."""

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
        ["run", "--rm", "--network", "none", "img", "true"],
        ["run", "img"],
        ["--root", "/r", "--db-path=/d", "run", "-it", "--rm", "img", "sh", "-c", "x --y"],
        [
            "run",
            "-e",
            "A=1",
            "-eB=2",
            "-e=C=3",
            "--env=D=4",
            "-v",
            "/a:/b",
            "--net=host",
            "--network",
            "x",
            "i",
        ],
        ["run", "--sig-proxy=false", "-d", "--name", "n", "img", "--rm", "-e", "X"],
        ["run", "--tls-verify", "--rm", "img"],
        ["run", "--stop-timeout", "5", "-m", "64m", "--pids-limit", "100", "--cpus=1.5", "img", "a", "b"],
        [
            "run",
            "--health-retries",
            "3",
            "--pull",
            "never",
            "--cap-add",
            "ALL",
            "--cap-add",
            "NET_ADMIN",
            "i",
        ],
        ["--log-level", "debug", "create", "--rm", "img"],
        ["create", "-t", "--entrypoint", "", "img"],
        ["ps", "-a"],
        ["ps", "-aq", "--no-trunc"],
        ["ps", "--format", "{{.ID}}", "-f", "status=exited", "--filter", "name=x", "-n", "3", "--sort=id"],
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
        ["run", "--rm"],  # no image: argparse's error
        ["run", "--netw", "none", "img"],  # an abbreviation
        ["run", "-h"],
        ["run", "--stop-timeout", "x", "img"],  # a bad value
        ["--log-level", "loud", "ps"],  # not a choice
        ["run", "--memory-swap", "-1", "img"],  # a value that looks like a flag
        ["run", "--", "img"],
        ["run", "--rm=yes", "img"],
        ["run", "--sig-proxy", "img"],  # argparse would take img as the flag's value
        ["run", "-ie", "A", "img"],
        ["ps", "extra"],
        ["ps", "--unknown"],
        ["ps", "-a", "-"],
        ["--version", "ps"],
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


def test_repeated_network_flags_are_joined() -> None:
    from hutch.cli import networks

    assert networks.network_mode(_fast(["run", "--network", "a", "--net=b", "img"])) == "a,b"
    assert networks.network_mode(_fast(["run", "img"])) == "bridge"


def test_the_other_commands_are_not_declared() -> None:
    recorder = fastargs.Recorder()
    main._parser("stop", recorder)
    assert set(recorder.subcommands) == {"stop"}
