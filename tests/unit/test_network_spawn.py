"""The plugins' runner: stdin in, stdout and stderr out, the exit status, without subprocess."""

from __future__ import annotations

import pytest

from hutch.engine.network import spawn


def test_input_output_error_and_status() -> None:
    code, out, err = spawn.run(["sh", "-c", "cat; echo oops >&2; exit 3"], stdin=b'{"a": 1}')
    assert (code, out, err) == (3, b'{"a": 1}', b"oops\n")


def test_a_chatty_stderr_does_not_stall_stdout() -> None:
    script = "head -c 300000 /dev/zero >&2; head -c 200000 /dev/zero"
    code, out, err = spawn.run(["sh", "-c", script])
    assert (code, len(out), len(err)) == (0, 200000, 300000)


def test_environment_is_the_given_one_and_a_signal_is_128_plus() -> None:
    code, out, _ = spawn.run(["/bin/sh", "-c", 'echo "$CNI_COMMAND"; kill -9 $$'], env={"CNI_COMMAND": "ADD"})
    assert (code, out) == (137, b"ADD\n")


def test_a_missing_program_is_an_oserror() -> None:
    with pytest.raises(FileNotFoundError):
        spawn.run(["/nonexistent/plugin"])


def test_started_now_collected_later() -> None:
    first = spawn.Started(["sh", "-c", "cat; echo one"], stdin=b"in:")
    second = spawn.Started(["sh", "-c", "echo two; exit 1"])
    assert second.wait() == (1, b"two\n", b"")
    assert first.wait() == (0, b"in:one\n", b"")
