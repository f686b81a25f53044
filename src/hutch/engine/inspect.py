"""podman's container inspect document (its main fields) for an engine container."""

from __future__ import annotations

import contextlib
import os
import time

from hutch.engine.containers import STOP_TIMEOUT
from hutch.errors import HutchError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hutch.engine.containers import Engine
    from hutch.engine.db import Record


def inspect(engine: Engine, rec: Record) -> dict[str, object]:
    """podman's container inspect document (its main fields)."""
    from hutch import jsonfast

    cfg = jsonfast.loads(rec.config or "{}")
    entrypoint, cmd = list(cfg.get("Entrypoint") or []), list(cfg.get("Cmd") or [])
    args = entrypoint + cmd if (entrypoint or cmd) else rec.command.split(" ")
    pid = 0
    if rec.state in ("running", "paused"):
        from hutch.runtime import container

        with contextlib.suppress(NotFoundError, HutchError):
            pid = container.load(engine.runtime_root, rec.id).pid
    userdata = engine.path(rec, "userdata")
    return {
        "Id": rec.id,
        "Created": _go_time(rec.created),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {
            "OciVersion": "1.2.0",
            "Status": rec.state,
            "Running": rec.state in ("running", "paused"),
            "Paused": rec.state == "paused",
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": pid,
            "ExitCode": rec.exit_code if rec.exit_code is not None and rec.exit_code >= 0 else 0,
            "Error": "",
            "StartedAt": _go_time(rec.started),
            "FinishedAt": _go_time(rec.finished),
        },
        "Image": rec.image_id,
        "ImageName": rec.image_name,
        "Rootfs": "",
        "Pod": "",
        "ResolvConfPath": os.path.join(userdata, "resolv.conf"),
        "HostnamePath": os.path.join(userdata, "hostname"),
        "HostsPath": os.path.join(userdata, "hosts"),
        "Name": rec.name,
        "RestartCount": 0,
        "Driver": "overlay",
        "OCIRuntime": "hutch",
        "Mounts": [],
        "Config": {
            "Hostname": cfg.get("Hostname", rec.id[:12]),
            "Domainname": "",
            "User": cfg.get("User", ""),
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
            "Tty": bool(cfg.get("Tty")),
            "OpenStdin": bool(cfg.get("OpenStdin")),
            "StdinOnce": False,
            "Env": list(cfg.get("Env") or []),
            "Cmd": cmd,
            "Image": cfg.get("Image", rec.image_name),
            "Volumes": None,
            "WorkingDir": cfg.get("WorkingDir", "/"),
            "Entrypoint": entrypoint,
            "Labels": dict(cfg.get("Labels") or {}),
            "Annotations": {},
            "StopSignal": rec.stop_signal or "SIGTERM",
            "StopTimeout": STOP_TIMEOUT,
        },
        "HostConfig": {
            "Binds": [],
            "NetworkMode": cfg.get("NetworkMode", "none"),
            "PortBindings": {},
            "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
            "AutoRemove": rec.remove,
            "CapAdd": [],
            "CapDrop": [],
            "IpcMode": "private",
            "PidMode": "private",
            "UTSMode": "private",
            "Privileged": False,
            "ReadonlyRootfs": bool(cfg.get("ReadonlyRootfs")),
            "SecurityOpt": ["seccomp=unconfined"] if cfg.get("Seccomp") == "unconfined" else [],
        },
    }


def _go_time(t: float | None) -> str:
    """A time as Go's encoding/json writes a time.Time in UTC (RFC 3339, nanoseconds); zero when unset."""
    if not t:
        return "0001-01-01T00:00:00Z"
    whole = int(t)
    nanos = round((t - whole) * 1e9)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{text}.{nanos:09d}".rstrip("0").rstrip(".") + "Z"
