"""Generated container names: adjective_noun while one is free, then with a number, and a clear error rather
than a loop once nothing more can be found."""

from __future__ import annotations

from pathlib import Path

import pytest

from hutch.engine import containers
from hutch.engine.containers import Engine
from hutch.engine.db import Record
from hutch.errors import HutchError

BASE = [f"{a}_{n}" for a in containers._ADJECTIVES for n in containers._NOUNS]


def _engine_with(tmp_path: Path, names: list[str]) -> Engine:
    engine = Engine(str(tmp_path))
    for i, name in enumerate(names):
        engine.db.add(
            Record(f"{i:064x}", name, "img", "img", "", 0.0, None, None, "exited", 0, None, False, "/d")
        )
    return engine


def test_the_last_free_name_is_found(tmp_path: Path) -> None:
    last = BASE[1234]
    with _engine_with(tmp_path, [n for n in BASE if n != last]) as engine:
        assert engine._name() == last


def test_once_every_name_is_taken_a_number_follows(tmp_path: Path) -> None:
    with _engine_with(tmp_path, BASE) as engine:
        names = {engine._name() for _ in range(20)}
    for name in names:
        base = name.rstrip("0123456789")
        assert base in BASE and name != base
    assert len(names) > 1


def test_no_free_name_is_an_error_not_a_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Everything(set[str]):
        def __contains__(self, name: object) -> bool:
            return True

    with Engine(str(tmp_path)) as engine:
        monkeypatch.setattr(engine.db, "names", lambda: Everything(["x"]))
        with pytest.raises(HutchError) as raised:
            engine._name()
    assert str(raised.value) == "cannot generate a container name: 1 are taken; give one with --name"
