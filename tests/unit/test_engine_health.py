"""Healthcheck settings: durations as Go writes them, flags over the image's fields, NONE and --no-healthcheck."""

from __future__ import annotations

import pytest

from hutch.engine import health
from hutch.errors import HutchError

S = health.SECOND


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("30s", 30 * S),
        ("1m30s", 90 * S),
        ("500ms", S // 2),
        ("1h", 3600 * S),
        ("0", 0),
        ("1.5s", 3 * S // 2),
    ],
)
def test_durations(text: str, ns: int) -> None:
    assert health.parse_duration(text, "--health-interval") == ns


@pytest.mark.parametrize("text", ["5x", "s", "", "1m5", "2"])
def test_bad_durations_name_the_flag(text: str) -> None:
    with pytest.raises(HutchError, match="--health-timeout"):
        health.parse_duration(text, "--health-timeout")


def test_flags_replace_the_images_fields_one_by_one() -> None:
    image = {"Test": ["CMD", "true"], "Interval": 5 * S, "Retries": 7}
    check = health.resolve(image, interval="2s")
    assert check == {
        "Test": ["CMD", "true"],
        "Interval": 2 * S,
        "Timeout": 30 * S,
        "StartPeriod": 0,
        "Retries": 7,
    }
    check = health.resolve(image, cmd="curl -f localhost || exit 1", retries=1)
    assert check is not None and check["Test"] == ["CMD-SHELL", "curl -f localhost || exit 1"]
    assert check["Retries"] == 1 and check["Interval"] == 5 * S


def test_json_array_is_cmd_and_none_disables() -> None:
    check = health.resolve(None, cmd='["/bin/check", "--quick"]')
    assert check is not None and check["Test"] == ["CMD", "/bin/check", "--quick"]
    assert health.command(check) == ["/bin/check", "--quick"]
    assert health.command({"Test": ["CMD-SHELL", "exit 3"]}) == ["/bin/sh", "-c", "exit 3"]
    assert health.resolve({"Test": ["NONE"]}) is None
    assert health.resolve(None, cmd="none") is None
    assert health.resolve({"Test": ["CMD", "true"]}, disabled=True) is None
    assert health.resolve(None) is None


def test_bad_settings() -> None:
    with pytest.raises(HutchError, match="--health-retries 0"):
        health.resolve(None, cmd="true", retries=0)
    with pytest.raises(HutchError, match="expected CMD or CMD-SHELL"):
        health.resolve({"Test": ["SHELL", "true"]})
