"""podman's output conventions in hutch.cli.format, and how stored names split into REPOSITORY and TAG."""

from __future__ import annotations

import datetime

from hutch.cli import format as fmt
from hutch.image.storage import repository_and_tag


def test_human_size_is_decimal_with_three_digits() -> None:
    assert fmt.human_size(0) == "0 B"
    assert fmt.human_size(999) == "999 B"
    assert fmt.human_size(4260) == "4.26 kB"
    assert fmt.human_size(5_873_000) == "5.87 MB"
    assert fmt.human_size(123_400_000) == "123 MB"
    assert fmt.human_size(2_000_000_000) == "2 GB"


def test_human_duration_as_go_units() -> None:
    assert fmt.human_duration(0.5) == "Less than a second"
    assert fmt.human_duration(1) == "1 second"
    assert fmt.human_duration(59) == "59 seconds"
    assert fmt.human_duration(61) == "About a minute"
    assert fmt.human_duration(600) == "10 minutes"
    assert fmt.human_duration(3600) == "About an hour"
    assert fmt.human_duration(5 * 3600) == "5 hours"
    assert fmt.human_duration(3 * 86400) == "3 days"
    assert fmt.human_duration(21 * 86400) == "3 weeks"
    assert fmt.human_duration(90 * 86400) == "3 months"
    assert fmt.human_duration(800 * 86400) == "2 years"


def test_ago_reads_rfc3339_with_nanoseconds() -> None:
    now = datetime.datetime(2024, 1, 1, 1, 0, 30, tzinfo=datetime.UTC)
    assert fmt.ago("2024-01-01T00:00:00.123456789Z", now) == "About an hour ago"
    assert fmt.ago("2024-01-01T02:00:30+01:00", now) == "Less than a second ago"
    assert fmt.ago("2024-01-01T00:01:00.5Z", now) == "59 minutes ago"
    assert fmt.ago(None, now) == "N/A"
    assert fmt.ago("yesterday", now) == "N/A"


def test_table_pads_like_tabwriter() -> None:
    out = fmt.table([["REPOSITORY", "TAG", "SIZE"], ["docker.io/library/busybox", "latest", "4.26 MB"]])
    assert out.splitlines() == [
        "REPOSITORY                 TAG         SIZE",
        "docker.io/library/busybox  latest      4.26 MB",
    ]
    assert fmt.table([]) == ""


def test_repository_and_tag() -> None:
    assert repository_and_tag("127.0.0.1:5000/busybox:1") == ("127.0.0.1:5000/busybox", "1")
    assert repository_and_tag("localhost/a/b:latest") == ("localhost/a/b", "latest")
    digest = "sha256:" + "a" * 64
    assert repository_and_tag(f"127.0.0.1:5000/busybox@{digest}") == ("127.0.0.1:5000/busybox", "<none>")
