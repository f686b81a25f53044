"""Integration tests drive real kernel features (namespaces, mounts, cgroups) and so need root.

They use the shared fixtures of tests/conftest.py: `bundle(...)` to make a bundle, `runtime.run(...)` to run
hutch-runtime on it and `runc.run(...)` to see what the reference runtime does with the same bundle.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _require_root() -> None:
    # Skipping would hide every integration test behind a green run: stop the whole session instead.
    if os.geteuid() != 0:
        pytest.exit(
            "tests/integration needs root (namespaces, mounts, cgroups): run the suite as root (make test)",
            returncode=1,
        )


@pytest.fixture(autouse=True)
def _leftover_baseline() -> None:
    """What leftovers() must not blame on the test that begins (see BASELINE there)."""
    from tests.integration import test_engine_run

    test_engine_run.BASELINE.clear()
    test_engine_run.BASELINE.update(test_engine_run.host_state())
