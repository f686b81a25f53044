"""Regressions found in review of the run/create flag parsing."""

from __future__ import annotations

import pytest

from hutch.engine.resources import ResourceFlags, resources
from hutch.errors import ConfigError


def test_memory_reservation_above_the_limit_is_refused() -> None:
    # podman: "minimum memory limit cannot be less than memory reservation limit"
    with pytest.raises(ConfigError, match="--memory-reservation '128m'.*--memory"):
        resources(ResourceFlags(memory="64m", memory_reservation="128m"))
    doc = resources(ResourceFlags(memory="128m", memory_reservation="64m"))
    assert doc["memory"]["reservation"] == 64 << 20 and doc["memory"]["limit"] == 128 << 20
