"""hutch.oci.state: the state document, as hooks read it and as `runc state` prints it."""

from __future__ import annotations

import json

import pytest

from hutch import OCI_VERSION
from hutch.errors import ConfigError
from hutch.oci.state import STATUSES, State, rfc3339_nano


def test_hook_state_has_exactly_the_spec_keys() -> None:
    state = State(id="c1", status="created", pid=42, bundle="/b", annotations={"k": "v"})
    doc = json.loads(state.to_json())
    assert doc == {
        "ociVersion": OCI_VERSION,
        "id": "c1",
        "status": "created",
        "pid": 42,
        "bundle": "/b",
        "annotations": {"k": "v"},
    }


def test_empty_annotations_are_omitted_and_pid_is_kept() -> None:
    doc = State(id="c1", status="stopped", pid=0, bundle="/b").to_dict()
    assert "annotations" not in doc
    assert doc["pid"] == 0


def test_runc_state_key_set_and_order() -> None:
    state = State(
        id="c1",
        status="running",
        pid=7,
        bundle="/b",
        rootfs="/b/rootfs",
        created="2024-01-02T03:04:05.123456789Z",
        owner="",
        annotations={"a": "b"},
    )
    text = state.to_json(indent=2)
    # `runc state` prints its containerState struct with MarshalIndent(..., "", "  ").
    assert list(json.loads(text)) == [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "annotations",
        "owner",
    ]
    assert text.startswith('{\n  "ociVersion": ')
    assert json.loads(text)["owner"] == ""


def test_round_trip() -> None:
    state = State(
        id="c1", status="paused", pid=9, bundle="/b", rootfs="/r", created="2024-01-01T00:00:00Z", owner=""
    )
    assert State.from_json(state.to_json()) == state
    bare = State(oci_version="1.0.2-dev", id="c2", status="creating", bundle="/b")
    assert State.from_json(bare.to_json()) == bare


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"ociVersion": "1.2.0", "id": "c", "status": "gone", "bundle": "/b"},
            'state: status: unknown status "gone"',
        ),
        ({"ociVersion": "1.2.0", "status": "created", "bundle": "/b"}, "state: id: required"),
        (
            {"ociVersion": "1.2.0", "id": "c", "status": "created", "pid": "1", "bundle": "/b"},
            'state: pid: expected an integer, got "1"',
        ),
        (
            {"ociVersion": "1.2.0", "id": "c", "status": "created", "bundle": "/b", "annotations": {"a": 1}},
            'state: annotations["a"]: expected a string, got 1',
        ),
        ([], "state: expected a JSON object, got an array"),
    ],
)
def test_from_dict_errors(doc: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        State.from_dict(doc)
    assert str(info.value) == message


def test_from_json_invalid() -> None:
    with pytest.raises(ConfigError, match=r"^runc state: line 1 column 2: invalid JSON"):
        State.from_json("{", source="runc state")


def test_statuses() -> None:
    assert STATUSES == ("creating", "created", "running", "stopped", "paused")


def test_rfc3339_nano_matches_go() -> None:
    assert rfc3339_nano(0) == "1970-01-01T00:00:00Z"
    assert rfc3339_nano(1_704_164_645_123_456_789) == "2024-01-02T03:04:05.123456789Z"
    # Go's RFC3339Nano drops trailing zeros of the fraction.
    assert rfc3339_nano(1_704_164_645_120_000_000) == "2024-01-02T03:04:05.12Z"
    assert rfc3339_nano().endswith("Z")
