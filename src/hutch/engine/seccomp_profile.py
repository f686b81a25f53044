"""The default seccomp profile: podman's (/usr/share/containers/seccomp.json, from containers-common), turned
into an OCI linux.seccomp for this host's architecture and a capability set, as podman turns it."""

from __future__ import annotations

import os

from hutch import jsonfast
from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PODMAN_PROFILE = "/usr/share/containers/seccomp.json"

# uname -m -> (the name the profile uses in includes.arches, the spec's native architecture)
MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
}


def load(path: str = PODMAN_PROFILE) -> dict[str, Any] | None:
    """The profile at `path` as JSON, or None when there is none."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        doc = jsonfast.loads(data.decode())
    except (jsonfast.DecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a seccomp profile: {e}") from None
    if not isinstance(doc, dict) or "defaultAction" not in doc:
        raise ConfigError(f"{path}: not a seccomp profile (no defaultAction)")
    return doc


def convert(doc: dict[str, Any], caps: set[str], machine: str | None = None) -> dict[str, Any]:
    """linux.seccomp as podman generates it from the profile `doc` for a container with `caps` on `machine`."""
    machine = machine or os.uname().machine
    goarch, native = MACHINES.get(machine, (machine, ""))
    out: dict[str, Any] = {"defaultAction": doc["defaultAction"], "architectures": [], "syscalls": []}
    if doc.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = doc["defaultErrnoRet"]
    for entry in doc.get("archMap") or []:
        if entry.get("architecture") == native:
            out["architectures"] = [entry["architecture"], *(entry.get("subArchitectures") or [])]
    if not out["architectures"] and doc.get("architectures"):
        out["architectures"] = list(doc["architectures"])
    for s in doc.get("syscalls") or []:
        includes, excludes = s.get("includes") or {}, s.get("excludes") or {}
        if includes.get("arches") and goarch not in includes["arches"]:
            continue
        if excludes.get("arches") and goarch in excludes["arches"]:
            continue
        if includes.get("caps") and not set(includes["caps"]) <= caps:
            continue
        if excludes.get("caps") and set(excludes["caps"]) & caps:
            continue
        names = s.get("names") or ([s["name"]] if s.get("name") else [])
        rule: dict[str, Any] = {"names": names, "action": s["action"]}
        if s.get("args"):
            rule["args"] = s["args"]
        if s.get("errnoRet") is not None:
            rule["errnoRet"] = s["errnoRet"]
        out["syscalls"].append(rule)
    return out


def default(caps: set[str], path: str = PODMAN_PROFILE) -> dict[str, Any] | None:
    """The default linux.seccomp for a container with `caps`, or None when the host has no profile."""
    doc = load(path)
    return None if doc is None else convert(doc, caps)
