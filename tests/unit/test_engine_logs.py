"""The k8s-file log reader, --since/--until parsing and detach keys: pure logic."""

from __future__ import annotations

import pytest

from hutch.engine import attach, logs, restart
from hutch.errors import HutchError


def test_timestamps_durations_and_times() -> None:
    assert logs.parse_timestamp("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert logs.parse_timestamp("1970-01-01T01:00:00.000000001+01:00") == 1
    assert logs.parse_timestamp("1970-01-02") == 86400 * 10**9
    assert logs.parse_duration("1h30m") == 5400.0
    assert logs.parse_duration("1.5s") == 1.5
    assert logs.parse_duration("300ms") == pytest.approx(0.3)
    assert logs.parse_time("10m", "--since", now=1000.0) == 400 * 10**9
    assert logs.parse_time("12.5", "--since") == 12_500_000_000
    with pytest.raises(HutchError, match="--until 'soon'"):
        logs.parse_time("soon", "--until")
    assert logs.format_time(1_500_000_000) == "1970-01-01T00:00:01.5Z"
    assert logs.format_time(2 * 10**9) == "1970-01-01T00:00:02Z"


def test_partial_lines_are_joined_per_stream() -> None:
    reader = logs.Reader()
    data = (
        b"1970-01-01T00:00:01.000000000+00:00 stdout P ab\n"
        b"1970-01-01T00:00:01.100000000+00:00 stderr F err\n"
        b"1970-01-01T00:00:01.200000000+00:00 stdout F cd\n"
        b"1970-01-01T00:00:02.000000000+00:00 stdout P tail"
    )
    got = list(reader.feed(data[:70])) + list(reader.feed(data[70:]))
    assert [(x.stream, x.text, x.time_ns) for x in got] == [
        ("stderr", b"err", 1_100_000_000),
        ("stdout", b"abcd", 1_000_000_000),
    ]
    assert list(reader.feed(b"\n")) == []
    assert [(x.text, x.complete) for x in reader.pending()] == [(b"tail", False)]


def test_detach_keys_and_restart_policies() -> None:
    assert attach.parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert attach.parse_detach_keys("ctrl-@,ctrl-[,x") == b"\x00\x1bx"
    assert attach.parse_detach_keys("") == b""
    with pytest.raises(HutchError):
        attach.parse_detach_keys("ctrl-pq")
    assert restart.parse("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert restart.parse("no") == {"Name": "", "MaximumRetryCount": 0}
    for bad in ("always:2", "on-failure:x", "sometimes"):
        with pytest.raises(HutchError):
            restart.parse(bad)
