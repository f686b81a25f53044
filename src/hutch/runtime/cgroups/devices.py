"""Device access rules: the spec's list reduced to what the kernel enforces, with cgroup v1 semantics.

A rule list is applied in order as writes to v1's devices.allow/devices.deny would be: a rule for all devices
("a") resets the cgroup to allow-all or deny-all and drops every exception; any other rule adds an exception
to the default or takes one away (only an exception with the same type, major and minor, and only the
access it names). The result, a default and a list of exceptions, is written to v1 files as is, or compiled
into the BPF program v2 uses (devices_bpf), so both versions behave alike.

As runc does, the devices every container needs are appended after the spec's rules, and the starting point
is deny-all: a spec without rules gets only those.
"""

from __future__ import annotations

from hutch.oci.config import Device
from hutch.oci.resources import DeviceRule
from hutch.runtime.cgroups import files

# runc's AllowedDevices (1.1): mknod of anything, the standard character devices, ptys, and tun.
# (type, major, minor, access, path); a spec device with the same path replaces the default.
DEFAULTS: tuple[tuple[str, int | None, int | None, str, str], ...] = (
    ("c", None, None, "m", ""),
    ("b", None, None, "m", ""),
    ("c", 1, 3, "rwm", "/dev/null"),
    ("c", 1, 8, "rwm", "/dev/random"),
    ("c", 1, 7, "rwm", "/dev/full"),
    ("c", 5, 0, "rwm", "/dev/tty"),
    ("c", 1, 5, "rwm", "/dev/zero"),
    ("c", 1, 9, "rwm", "/dev/urandom"),
    ("c", 136, None, "rwm", ""),
    ("c", 5, 2, "rwm", ""),
    ("c", 10, 200, "rwm", ""),
)

_ORDER = "rwm"


class Entry:
    """An exception to the default: a device (None is any major or minor) and the access it concerns."""

    __slots__ = ("type", "major", "minor", "access")

    def __init__(self, type: str, major: int | None, minor: int | None, access: str) -> None:
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access

    def key(self) -> tuple[str, int | None, int | None]:
        return (self.type, self.major, self.minor)

    def v1(self) -> str:
        """As devices.allow/devices.deny and devices.list spell it: "c 1:3 rwm"."""
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"

    def __repr__(self) -> str:
        return f"<{self.v1()}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and self.v1() == other.v1()

    def __hash__(self) -> int:
        return hash(self.v1())


def _norm(access: str) -> str:
    return "".join(ch for ch in _ORDER if ch in access)


class Emulator:
    """The state of a v1 devices cgroup: allow-all or deny-all, and exceptions to it, in order."""

    __slots__ = ("allow", "exceptions")

    def __init__(self, allow: bool = False) -> None:
        self.allow = allow
        self.exceptions: list[Entry] = []

    def apply(self, rule: DeviceRule) -> None:
        if rule.type == "a":
            self.allow = rule.allow
            self.exceptions = []
            return
        access = _norm(rule.access)
        if rule.allow != self.allow:
            self._add(Entry(rule.type, rule.major, rule.minor, access))
        else:
            self._remove(rule.type, rule.major, rule.minor, access)

    def _add(self, new: Entry) -> None:
        for ex in self.exceptions:
            if ex.key() == new.key():
                ex.access = _norm(ex.access + new.access)
                return
        self.exceptions.append(new)

    def _remove(self, type: str, major: int | None, minor: int | None, access: str) -> None:
        kept = []
        for ex in self.exceptions:
            if ex.key() == (type, major, minor):
                ex.access = "".join(ch for ch in ex.access if ch not in access)
                if not ex.access:
                    continue
            kept.append(ex)
        self.exceptions = kept

    def permits(self, type: str, major: int, minor: int, access: str) -> bool:
        """What the kernel would answer for one request (used by tests, and to explain)."""
        for ex in self.exceptions:
            if (
                ex.type == type
                and (ex.major is None or ex.major == major)
                and (ex.minor is None or ex.minor == minor)
                and not set(access) - set(ex.access)
            ):
                return not self.allow
        return self.allow


def _rule(type: str, major: int | None, minor: int | None, access: str, allow: bool = True) -> DeviceRule:
    return DeviceRule(allow=allow, type=type, major=major, minor=minor, access=access)


def effective(rules: list[DeviceRule], spec_devices: list[Device] | None = None) -> Emulator:
    """The spec's rules, then the defaults (those whose path the spec does not redefine), from deny-all."""
    redefined = {d.path for d in spec_devices or ()}
    emu = Emulator(allow=False)
    for rule in rules:
        if rule.type not in ("a", "c", "b"):
            raise files.field_error("devices", f"unknown device type {rule.type!r}")
        emu.apply(rule)
    for type, major, minor, access, path in DEFAULTS:
        if not path or path not in redefined:
            emu.apply(_rule(type, major, minor, access))
    return emu


def write_v1(directory: str, emu: Emulator) -> None:
    """Make a v1 devices cgroup enforce `emu`: reset it to the default, then add the exceptions.

    Only safe while nothing in the cgroup runs user code (create), since the reset briefly widens or narrows
    access; update does not change devices, as with runc.
    """
    if emu.allow:
        files.write(directory, "devices.allow", "a", "devices")
        target = "devices.deny"
    else:
        files.write(directory, "devices.deny", "a", "devices")
        target = "devices.allow"
    for ex in emu.exceptions:
        files.write(directory, target, ex.v1(), "devices")
