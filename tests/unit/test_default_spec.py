"""default_spec() carries the same facts as `runc spec`: a bundle made by either behaves the same."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hutch import OCI_VERSION
from hutch.runtime.default_spec import default_spec

# Fields that are each runtime's own: its name as hostname, and the spec version it implements.
OWN_FIELDS = ("hostname", "ociVersion")


def runc_spec(tmp_path: Path, *flags: str) -> dict[str, Any]:
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed (make deps): nothing to compare with")
    subprocess.run([runc, "spec", *flags], cwd=tmp_path, check=True, capture_output=True)
    spec: dict[str, Any] = json.loads((tmp_path / "config.json").read_text())
    return spec


def without_own_fields(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if key not in OWN_FIELDS}


@pytest.mark.parametrize("rootless", [False, True], ids=["root", "rootless"])
def test_matches_runc_spec(tmp_path: Path, rootless: bool) -> None:
    reference = runc_spec(tmp_path, *(["--rootless"] if rootless else []))
    assert without_own_fields(default_spec(rootless=rootless)) == without_own_fields(reference)


def test_own_fields() -> None:
    spec = default_spec()
    assert spec["hostname"] == "hutch"
    assert spec["ociVersion"] == OCI_VERSION


def test_default_shape() -> None:
    spec = default_spec()
    assert spec["process"]["terminal"] is True
    assert spec["process"]["args"] == ["sh"]
    assert spec["root"] == {"path": "rootfs", "readonly": True}
    assert "user" not in {ns["type"] for ns in spec["linux"]["namespaces"]}
    assert "uidMappings" not in spec["linux"]
    devpts = next(m for m in spec["mounts"] if m["destination"] == "/dev/pts")
    assert "gid=5" in devpts["options"]


def test_rootless_shape() -> None:
    spec = default_spec(rootless=True)
    namespaces = [ns["type"] for ns in spec["linux"]["namespaces"]]
    assert "user" in namespaces
    assert "network" not in namespaces
    assert spec["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert spec["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert "resources" not in spec["linux"]
    devpts = next(m for m in spec["mounts"] if m["destination"] == "/dev/pts")
    assert not any(option.startswith("gid=") for option in devpts["options"])
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert sys_mount["type"] == "none"
    assert "rbind" in sys_mount["options"]


def test_each_call_is_fresh() -> None:
    first = default_spec()
    first["process"]["env"].append("X=1")
    first["mounts"].clear()
    first["linux"]["maskedPaths"].clear()
    second = default_spec()
    assert "X=1" not in second["process"]["env"]
    assert second["mounts"]
    assert second["linux"]["maskedPaths"]


def test_is_json_ready() -> None:
    for rootless in (False, True):
        spec = default_spec(rootless=rootless)
        assert json.loads(json.dumps(spec)) == spec
