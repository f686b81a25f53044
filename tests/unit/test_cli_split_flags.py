"""run's flag parsing imports the engine's flag modules only for flags that are given: its lists of those
flags must stay those of the engine."""

from __future__ import annotations

from hutch.cli import runflags
from hutch.engine import cgroupflags
from hutch.engine.resources import ResourceFlags


def test_the_cgroup_flags_checked_are_the_engines() -> None:
    assert set(runflags._CGROUP_DESTS) == set(cgroupflags.FLAGS)


def test_the_resource_flags_checked_are_the_engines() -> None:
    assert set(runflags._RESOURCE_DESTS) == set(ResourceFlags.__match_args__)
