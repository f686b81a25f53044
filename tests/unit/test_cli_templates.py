"""Go templates of `inspect -f` and `ps --format`, and the times inspect writes as Go does."""

from __future__ import annotations

import pytest

from hutch.cli.format import render
from hutch.cli.psview import parse as _ps_filters
from hutch.engine.inspect import _go_time
from hutch.errors import HutchError

DOC = {
    "Id": "abc",
    "State": {"Status": "exited", "Running": False, "ExitCode": 137, "Pid": 0},
    "Config": {"Cmd": ["sh", "-c", "x"], "Labels": {"b": "2", "a": "1"}, "Env": ["A=b"], "Volumes": None},
}


def test_dotted_paths_print_as_go_does() -> None:
    assert render("{{.State.Status}}", DOC) == "exited"
    assert render("{{ .State.Running }} {{.State.ExitCode}}", DOC) == "false 137"
    assert render("{{.Config.Cmd}}", DOC) == "[sh -c x]"
    assert render("{{.Config.Labels}}", DOC) == "map[a:1 b:2]"
    assert render("{{.Config.Volumes}}", DOC) == "<nil>"
    assert render("id={{.Id}}\\t{{.state.status}}", DOC) == "id=abc\texited"  # case-insensitive fallback


def test_json_function() -> None:
    assert render("{{json .Config.Env}}", DOC) == '["A=b"]'
    assert render("{{json .State.Running}}", DOC) == "false"


def test_unknown_field_is_an_error() -> None:
    with pytest.raises(HutchError, match="can't evaluate field Nope"):
        render("{{.State.Nope}}", DOC)
    with pytest.raises(HutchError, match="only .Field paths"):
        render("{{range .Config.Cmd}}", DOC)


def test_go_time() -> None:
    assert _go_time(None) == "0001-01-01T00:00:00Z"
    assert _go_time(0.0) == "0001-01-01T00:00:00Z"
    assert _go_time(1700000000.5) == "2023-11-14T22:13:20.5Z"
    assert _go_time(1700000000.0) == "2023-11-14T22:13:20Z"


def test_ps_filters() -> None:
    assert _ps_filters(["status=exited", "status=created", "name=web"]) == {
        "status": ["exited", "created"],
        "name": ["web"],
    }
    with pytest.raises(HutchError, match="invalid status"):
        _ps_filters(["status=gone"])
    with pytest.raises(HutchError, match="expected one of status=, name=, id=, label="):
        _ps_filters(["label"])
