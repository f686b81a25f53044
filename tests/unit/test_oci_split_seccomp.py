"""linux.seccomp's types and parser (hutch.oci.seccomp) are imported only for a config.json that has one:
`hutch-runtime run` of a container without a filter stays off them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hutch

_PARSE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from hutch.oci import config
spec = config.parse(json.loads(sys.argv[2]))
assert (spec.linux is not None and spec.linux.seccomp is not None) == (sys.argv[3] == "1")
print(" ".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize("with_seccomp", [False, True])
def test_seccomp_module_only_for_a_config_with_seccomp(with_seccomp: bool) -> None:
    linux: dict[str, object] = {"namespaces": [{"type": "mount"}]}
    if with_seccomp:
        linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW"}
    doc = {"ociVersion": "1.2.0", "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}}}
    doc["linux"] = linux
    src = str(Path(hutch.__file__).parents[1])
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _PARSE, src, json.dumps(doc), "1" if with_seccomp else "0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ("hutch.oci.seccomp" in out.split()) == with_seccomp
