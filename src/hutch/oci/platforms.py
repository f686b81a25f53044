"""Platforms: the host's, containerd's normalised names, and the pick of an index's manifest for one."""

from __future__ import annotations

import os

from hutch.errors import NotFoundError
from hutch.oci.image import INDEX_TYPES, MANIFEST_TYPES, Platform

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.oci.manifest import Descriptor, Index

# --- platforms ----------------------------------------------------------------------------------------------

# uname -m to GOARCH (and arm variant).
_MACHINES = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv8l": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
    "mips64": ("mips64", ""),
    "loongarch64": ("loong64", ""),
}


def host_platform() -> Platform:
    """The platform this machine runs natively."""
    machine = os.uname().machine
    arch, variant = _MACHINES.get(machine, (machine, ""))
    return Platform("linux", arch, variant)


def normalize(p: Platform) -> Platform:
    """Platform names as containerd normalises them: arm64's variant defaults to v8, arm's to v7."""
    arch, variant = p.architecture.lower(), p.variant.lower()
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}.get(
        arch, arch
    )
    if p.architecture.lower() == "armel" and not variant:
        variant = "v6"
    if arch == "arm64" and variant in ("", "8"):
        variant = "v8"
    elif arch == "arm" and not variant:
        variant = "v7"
    elif arch == "arm" and variant in ("5", "6", "7", "8"):
        variant = "v" + variant
    elif arch == "amd64" and variant == "v1":
        variant = ""
    return Platform(p.os.lower(), arch, variant, p.os_version, list(p.os_features))


def _candidates(wanted: Platform) -> list[tuple[str, str]]:
    """(architecture, variant) pairs that run on `wanted`, best first: arm v7 also runs v6 and v5 images."""
    w = normalize(wanted)
    pairs = [(w.architecture, w.variant)]
    for arch, ladder in (("arm", ("v8", "v7", "v6", "v5")), ("amd64", ("v4", "v3", "v2", ""))):
        if w.architecture == arch and w.variant in ladder:
            pairs += [(arch, v) for v in ladder[ladder.index(w.variant) + 1 :]]
    return pairs


def select_platform(index: Index, wanted: Platform | None = None) -> Descriptor:
    """The manifest of `index` for `wanted` (default: the host's), by os, architecture and variant.

    A manifest without a platform is taken only if it is the sole image manifest of the index. Raises
    NotFoundError naming the platforms the index has.
    """
    wanted = host_platform() if wanted is None else wanted
    w = normalize(wanted)
    images = [d for d in index.manifests if d.media_type in MANIFEST_TYPES or d.media_type in INDEX_TYPES]
    for arch, variant in _candidates(wanted):
        for d in images:
            if d.platform is None:
                continue
            p = normalize(d.platform)
            if p.os == w.os and p.architecture == arch and p.variant == variant:
                return d
    bare = [d for d in images if d.platform is None]
    if len(bare) == 1 and len(images) == 1:
        return bare[0]
    have = sorted({str(d.platform) for d in images if d.platform is not None})
    raise NotFoundError(
        f"no image for platform {wanted} in the index (it has: {', '.join(have) if have else 'none'})"
    )
