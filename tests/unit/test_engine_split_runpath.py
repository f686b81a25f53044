"""What `run --rm --network none` does in the engine (the flags' engine helpers the cli calls, create, the
foreground monitor's modules, finish with --rm) imports none of the modules split off for bridge networks,
other commands, rare flags, healthchecks and detached runs, nor contextlib and what it imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.test_image_split_runpath import store_an_image

import hutch

COLD = [
    "hutch.engine.network.attach",
    "hutch.engine.network.bridgeplan",
    "hutch.engine.network.connect",
    "hutch.engine.network.joined",
    "hutch.engine.network.ports",
    "hutch.engine.network.config",
    "hutch.engine.network.cni",
    "hutch.engine.health",
    "hutch.engine.healthrun",
    "hutch.engine.mountflags",
    "hutch.engine.mountresolve",
    "hutch.engine.devices",
    "hutch.engine.blkioflags",
    "hutch.engine.ulimits",
    "hutch.engine.update",
    "hutch.engine.detached",
    "hutch.engine.conmon",
    "hutch.engine.cliruntime",
    "hutch.engine.groups",
    "hutch.engine.starting",
    "hutch.engine.stopping",
    "hutch.engine.volumedb",
    "hutch.runtime.cgroups.freezer",
    "hutch.runtime.cgroups.stats",
    # contextlib imports functools and collections (~3 ms); _sqlite3 loads without them (hutch.image.sqlite)
    "contextlib",
    "functools",
    "collections",
]

_RUN_PATH = """
import sys
sys.path.insert(0, sys.argv[3])
from hutch.engine import cgroupflags, resources, security, specflags
from hutch.engine.containers import Engine
from hutch.engine.spec import Options
from hutch.engine import monitor
from hutch.runtime import foreground, launch

# What cli/runflags.apply calls for a run without flags.
opts = Options(command=["true"], network="none")
security.security_opts([])
opts.resources = resources.resources(resources.ResourceFlags())
cgroupflags.merge(opts.resources, cgroupflags.resources(cgroupflags.CgroupFlags()))
cgroupflags.cgroups_mode("enabled")
opts.pid = specflags.namespace_mode("", "--pid", ("private", "host"))
with Engine(sys.argv[1], sys.argv[2]) as engine:
    rec = engine.create("localhost/t:1", opts, remove=True, pull="never")
    engine.finish(rec.id, 0, remove=True)
    assert engine.list(all=True) == []
print(" ".join(sorted(sys.modules)))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="create mounts the container's overlay")
def test_run_rm_network_none_imports_no_cold_module(tmp_path: Path) -> None:
    root, db_path = str(tmp_path / "storage"), str(tmp_path / "hutch.db")
    store_an_image(root, db_path)
    src = str(Path(hutch.__file__).parents[1])
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _RUN_PATH, root, db_path, src],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    imported = set(out.split())
    assert {"hutch.engine.containers", "hutch.engine.network.setup", "hutch.engine.mounts"} <= imported
    assert sorted(imported.intersection(COLD)) == []
