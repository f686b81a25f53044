"""hutch.jsonfast must read and write JSON exactly as the json module does, and fail where it fails."""

import json

import pytest

from hutch import jsonfast

DOCS = [
    '{"a": [1, 2.5, "x\\u00e9", null, true, false, {"b": {}}]}',
    "  [ ] ",
    '"s"',
    "12",
    '{"nested": {"deep": [[], [{}], [1, [2, [3]]]]}}',
]


@pytest.mark.parametrize("doc", DOCS)
def test_same_values_as_json(doc: str) -> None:
    assert jsonfast.loads(doc) == json.loads(doc)
    assert jsonfast.dumps(json.loads(doc)) == json.dumps(json.loads(doc))


@pytest.mark.parametrize("indent", [2, 4, "\t"])
def test_pretty_printing_as_json(indent: int | str) -> None:
    value = {"a": [1, {"b": []}, {}], "c": {"d": "é", "e": None}, "f": [[1, 2]]}
    assert jsonfast.dumps(value, indent=indent) == json.dumps(value, indent=indent)


@pytest.mark.parametrize("doc", ['{"a": }', '{"a": 1} x', "", '{"a": 1,}', '{"a": 1', "{", "[1,", '"abc'])
def test_invalid_json_is_a_decode_error_with_a_position(doc: str) -> None:
    with pytest.raises(jsonfast.DecodeError) as err:
        jsonfast.loads(doc)
    with pytest.raises(json.JSONDecodeError) as ref:
        json.loads(doc)
    assert (err.value.lineno, err.value.colno) == (ref.value.lineno, ref.value.colno)
