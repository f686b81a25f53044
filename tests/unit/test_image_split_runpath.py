"""What `run --rm` does with the image layer (open the storage, find the image by name, parse its config, list
its layers, import the overlay mounter) imports none of the modules that were split off for other commands,
nor the `sqlite3` package, functools or collections."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from hutch.image.storage import Storage
from hutch.oci import digest

if TYPE_CHECKING:
    from pathlib import Path

# Modules only writes, rmi/prune, inspect, pulls, imports, old kernels and platform choice need.
COLD = [
    "hutch.image.dbwrite",
    "hutch.image.dbmigrate",
    "hutch.image.removal",
    "hutch.image.inspection",
    "hutch.image.flock",
    "hutch.image.ingest",
    "hutch.image.snapshot_legacy",
    "hutch.image.reference",
    "hutch.oci.manifest",
    "hutch.oci.platforms",
    "hutch.oci.verifier",
    "sqlite3",
    "functools",  # _sqlite3 loads beside a stand-in (hutch.image.sqlite)
    "collections",
]

_RUN_PATH = """
import sys
from hutch.image.storage import Storage
from hutch.oci.image import parse_config
from hutch.image import snapshot

storage = Storage(sys.argv[1], sys.argv[2])
image = storage.find("localhost/t:1")
config = parse_config(storage.blobs.read(image.id), "image config")
layers = storage.db.image_layers(image.id)
assert config.config.cmd == ["true"] and len(layers) == 1
print(" ".join(sorted(sys.modules)))
"""


def store_an_image(root: str, db_path: str) -> None:
    """A stored image as a pull leaves it: a config blob, one unpacked layer, a tag."""
    from hutch.image.db import Image, LayerRef

    config = b'{"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]}}'
    config_digest = digest.of_bytes(config)
    diff_id = digest.of_bytes(b"layer")
    with Storage(root, db_path) as storage:
        storage.blobs.ingest_bytes(config, config_digest)
        os.mkdir(storage.layer_path(diff_id))
        storage.db.begin_layer(diff_id, storage.layer_path(diff_id))
        storage.db.finish_layer(diff_id, 0)
        image = Image(
            config_digest,
            digest.of_bytes(b"manifest"),
            "application/vnd.oci.image.manifest.v1+json",
            1,
            "linux",
            "amd64",
            layers=[diff_id],
        )
        storage.db.record_image(image, [LayerRef(diff_id)], [(config_digest, len(config))], ["localhost/t:1"])


def test_run_path_imports_no_cold_module(tmp_path: Path) -> None:
    root, db_path = str(tmp_path / "storage"), str(tmp_path / "hutch.db")
    store_an_image(root, db_path)
    out = subprocess.run(
        [sys.executable, "-c", _RUN_PATH, root, db_path], capture_output=True, text=True, check=True
    ).stdout
    imported = set(out.split())
    assert "hutch.image.storage" in imported
    assert sorted(imported.intersection(COLD)) == []
