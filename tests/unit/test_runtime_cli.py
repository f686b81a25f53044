"""hutch-runtime's command line: an unexpected exception (a bug) is still one error line and exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from hutch.runtime import cli


def test_an_unexpected_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def broken(args: object) -> object:
        raise KeyError("oops")

    monkeypatch.setattr(cli, "_load", broken)
    assert cli.main(["--root", str(tmp_path), "state", "c1"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "state: internal error: KeyError: 'oops'\n"
    assert captured.out == ""
