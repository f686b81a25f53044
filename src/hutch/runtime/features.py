"""`hutch-runtime features`: what this runtime supports, in the runtime-spec features document."""

from typing import Any

from hutch import OCI_VERSION
from hutch.oci.config import CAPABILITIES
from hutch.runtime import mountopts, seccomp, seccomp_build
from hutch.runtime.namespaces import FLAGS


def features() -> dict[str, Any]:
    annotations = {"io.github.hutch.runtime.version": __import__("hutch").__version__}
    if seccomp.libseccomp_version():
        annotations["io.github.seccomp.libseccomp.version"] = seccomp.libseccomp_version()
    options = sorted(
        [*mountopts._FLAGS, *mountopts.PROPAGATION, *mountopts._RECURSIVE, "idmap", "ridmap", "tmpcopyup"]
    )
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": options,
        "linux": {
            "namespaces": sorted(FLAGS),
            "capabilities": sorted(CAPABILITIES, key=CAPABILITIES.__getitem__),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": True},
            # Probed: the actions this kernel has, the architectures this libseccomp knows, the flags this
            # kernel takes (runc lists the same).
            "seccomp": seccomp_build.features(),
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": annotations,
    }
