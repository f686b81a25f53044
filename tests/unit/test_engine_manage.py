"""Pure logic of the management commands: top's descriptors and Go durations, cp's argument split, archive
names and container paths, stats' sizes, info's YAML."""

from __future__ import annotations

import pytest

from hutch.cli.manage import _human
from hutch.cli.system import _yaml
from hutch.engine import copy, top
from hutch.engine.db import Record
from hutch.errors import HutchError


def test_top_descriptors() -> None:
    assert top.descriptors([]) == ["user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args"]
    assert top.descriptors(["pid,hpid", "user"]) == ["pid", "hpid", "user"]
    assert top.descriptors(["%p", "%U", "%a"]) == ["pid", "user", "args"]
    with pytest.raises(HutchError, match="unknown descriptor: nope"):
        top.descriptors(["pid,nope"])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (1.5, "1.5s"), (2.25, "2.25s"), (61, "1m1s"), (3723.5, "1h2m3.5s"), (3600, "1h0m0s")],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert top.go_duration(seconds) == text


@pytest.mark.parametrize(
    ("arg", "parsed"),
    [
        ("c:/etc/passwd", ("c", "/etc/passwd")),
        ("c:", ("c", "/")),
        ("c:rel", ("c", "rel")),
        ("-", None),
        ("/abs/path", None),
        ("./with:colon", None),
        ("plain", None),
        (":x", None),
    ],
)
def test_cp_split_arg(arg: str, parsed: tuple[str, str] | None) -> None:
    assert copy.split_arg(arg) == parsed


def test_cp_archive_names_stay_below() -> None:
    assert copy._relative("./a/b/") == "a/b"
    assert copy._relative(".") == "."
    assert copy._relative("/abs") == "abs"
    with pytest.raises(copy.CopyError, match="must not contain"):
        copy._relative("a/../../etc")


def test_cp_container_path_is_below_the_workdir() -> None:
    rec = Record(
        "i",
        "n",
        "img",
        "img",
        "",
        0.0,
        None,
        None,
        "exited",
        0,
        None,
        False,
        "/d",
        "",
        '{"WorkingDir": "/w"}',
    )
    assert copy.container_path(rec, "f") == "/w/f"
    assert copy.container_path(rec, "sub/") == "/w/sub/"
    assert copy.container_path(rec, "/abs") == "/abs"
    assert copy.clean("//a/../b/") == "/b"


def test_stats_sizes_as_go_units() -> None:
    assert [_human(n) for n in (0, 999, 1208000, 33580000000)] == ["0B", "999B", "1.208MB", "33.58GB"]


def test_info_yaml() -> None:
    doc = {"host": {"arch": "amd64", "hybrid": True, "list": ["a", "b"], "empty": {}, "path": ""}, "n": 3}
    assert _yaml(doc) == (
        'host:\n  arch: amd64\n  hybrid: true\n  list:\n  - a\n  - b\n  empty: {}\n  path: ""\nn: 3\n'
    )
