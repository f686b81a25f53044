"""The OCI runtime state document: what `hutch-runtime state` prints and what hooks read on stdin.

The runtime-spec keys are ociVersion, id, status, pid, bundle and annotations. `runc state` adds rootfs,
created and owner; State carries them as optional fields and emits each one that is set, so the state command
prints runc's key set while hooks get the plain spec document. As runc does, pid is always emitted and
annotations only when there are some.

Imports json, time and dataclasses only: `hutch ps` and the runtime's state command are on the hot path, and
this module does not import hutch.oci.config.
"""

from __future__ import annotations

import time

from hutch import OCI_VERSION, jsonfast
from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field
if TYPE_CHECKING:
    from typing import Any, Literal

    Status = Literal["creating", "created", "running", "stopped", "paused"]

# The spec's four, and runc's "paused" (a frozen cgroup), which `runc state` and `runc list` print.
STATUSES = ("creating", "created", "running", "stopped", "paused")


@dataclass(slots=True, kw_only=True)
class State:
    """One container's state. `created` is RFC 3339 with nanoseconds in UTC, see `rfc3339_nano`."""

    oci_version: str = OCI_VERSION
    id: str
    status: Status
    pid: int = 0
    bundle: str
    annotations: dict[str, str] = field(default_factory=dict)
    rootfs: str | None = None
    created: str | None = None
    owner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The state document, keys in `runc state`'s order."""
        doc: dict[str, Any] = {
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.pid,
            "status": self.status,
            "bundle": self.bundle,
        }
        if self.rootfs is not None:
            doc["rootfs"] = self.rootfs
        if self.created is not None:
            doc["created"] = self.created
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        if self.owner is not None:
            doc["owner"] = self.owner
        return doc

    def to_json(self, indent: int | None = None) -> str:
        """The state document as JSON: compact for hooks, `indent=2` for `state` (as runc prints it)."""
        return jsonfast.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, doc: object, source: str = "state") -> State:
        """Validate a state document (another runtime's `state` output, or a hook's stdin)."""
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {_show(doc)}")

        def get(key: str, kind: type, required: bool = True) -> Any:
            value = doc.get(key)
            if value is None and not required:
                return None
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                what = "required" if value is None else f"expected {_KINDS[kind]}, got {_show(value)}"
                raise ConfigError(f"{source}: {key}: {what}")
            return value

        status = get("status", str)
        if status not in STATUSES:
            raise ConfigError(f"{source}: status: unknown status {jsonfast.dumps(status)}")
        annotations = get("annotations", dict, required=False) or {}
        for key, value in annotations.items():
            if not isinstance(value, str):
                where = f"annotations[{jsonfast.dumps(key)}]"
                raise ConfigError(f"{source}: {where}: expected a string, got {_show(value)}")
        return cls(
            oci_version=get("ociVersion", str),
            id=get("id", str),
            status=status,
            pid=get("pid", int, required=False) or 0,
            bundle=get("bundle", str),
            annotations=annotations,
            rootfs=get("rootfs", str, required=False),
            created=get("created", str, required=False),
            owner=get("owner", str, required=False),
        )

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "state") -> State:
        """Parse and validate a state document from JSON text."""
        try:
            doc = jsonfast.loads(text if isinstance(text, str) else text.decode())
        except jsonfast.DecodeError as e:
            raise ConfigError(f"{source}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from None
        return cls.from_dict(doc, source)


_KINDS = {str: "a string", int: "an integer", dict: "an object"}


def _show(value: object) -> str:
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "an array"
    text = jsonfast.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def rfc3339_nano(ns: int | None = None) -> str:
    """A time (nanoseconds since the epoch, default now) as Go's RFC3339Nano in UTC, as runc's `created`."""
    if ns is None:
        ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{stamp}.{frac:09d}".rstrip("0") + "Z" if frac else stamp + "Z"
