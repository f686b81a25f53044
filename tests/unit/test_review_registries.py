"""Regressions found in review of registries.conf matching."""

from __future__ import annotations

from hutch.image.registries import Entry


def test_a_wildcard_prefix_matches_a_subdomain_with_a_port() -> None:
    # containers/image: after the matched domain suffix may come ':' (a port), '/' or '@'.
    entry = Entry(prefix="*.example.com", location="")
    assert entry.matches("reg.example.com:5000/team/app")
    assert entry.matches("reg.example.com/team/app")
    assert not entry.matches("reg.example.com.evil:5000/app")
    assert not entry.matches("example.org/reg.example.com/app")
