"""`hutch-runtime features`: what this runtime supports, in the runtime-spec features document."""

from typing import Any

from hutch import OCI_VERSION
from hutch.oci.config import CAPABILITIES, SECCOMP_ACTIONS, SECCOMP_ARCHES, SECCOMP_FLAGS, SECCOMP_OPS
from hutch.runtime import mountopts
from hutch.runtime.namespaces import FLAGS


def features() -> dict[str, Any]:
    options = sorted([*mountopts._FLAGS, *mountopts.PROPAGATION, *mountopts._RECURSIVE, "idmap", "ridmap"])
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": options,
        "linux": {
            "namespaces": sorted(FLAGS),
            "capabilities": sorted(CAPABILITIES, key=CAPABILITIES.__getitem__),
            "cgroup": {"v1": False, "v2": False, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {
                "enabled": True,
                "actions": sorted(SECCOMP_ACTIONS),
                "operators": sorted(SECCOMP_OPS),
                "archs": sorted(SECCOMP_ARCHES),
                "knownFlags": sorted(SECCOMP_FLAGS),
                "supportedFlags": sorted(SECCOMP_FLAGS),
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {"io.github.hutch.runtime.version": __import__("hutch").__version__},
    }
