"""hutch.record builds classes that behave as the dataclasses they stand in for."""

import dataclasses

import pytest

from hutch.record import dataclass, field


@dataclass(slots=True)
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


@dataclasses.dataclass
class RefPoint:
    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)


def test_construction_repr_and_equality_match_dataclasses() -> None:
    for args, kwargs in [((1,), {}), ((1, 2), {}), ((), {"x": 3, "tags": ["a"]})]:
        ours, ref = Point(*args, **kwargs), RefPoint(*args, **kwargs)
        assert repr(ours).replace("Point", "") == repr(ref).replace("RefPoint", "")
        assert ours == Point(*args, **kwargs)
    assert Point(1) != Point(2)


def test_default_factory_gives_each_instance_its_own_value() -> None:
    a, b = Point(1), Point(2)
    a.tags.append("x")
    assert b.tags == []


@pytest.mark.parametrize(
    "args, kwargs", [((), {}), ((1, 2, [], 4), {}), ((1,), {"nope": 1}), ((1,), {"x": 2})]
)
def test_wrong_arguments_are_type_errors(args: tuple, kwargs: dict) -> None:
    with pytest.raises(TypeError):
        Point(*args, **kwargs)


def test_instances_are_unhashable_and_matchable() -> None:
    with pytest.raises(TypeError):
        hash(Point(1))
    match Point(1, 2):
        case Point(x, y):
            assert (x, y) == (1, 2)
