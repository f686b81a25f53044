"""podman's container inspect document (its main fields) for an engine container."""

from __future__ import annotations

import contextlib
import os
import time

from hutch.engine.network.manage import network_settings
from hutch.engine.stopping import STOP_TIMEOUT
from hutch.errors import HutchError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
        from hutch.engine.monitor import runtime_of

        with contextlib.suppress(NotFoundError, HutchError):
            pid = runtime_of(rec).pid(rec.id)
    userdata = engine.path(rec, "userdata")
    return {
        "Id": rec.id,
        "Created": _go_time(rec.created),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {
            "OciVersion": "1.2.0",
            "Status": rec.state,
            "Running": rec.state == "running",  # podman's: false while paused
            "Paused": rec.state == "paused",
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": pid,
            "ExitCode": rec.exit_code if rec.exit_code is not None and rec.exit_code >= 0 else 0,
            "Error": "",
            "StartedAt": _go_time(rec.started),
            "FinishedAt": _go_time(rec.finished),
            **_health(rec),
        },
        "Image": rec.image_id,
        "ImageName": rec.image_name,
        "Rootfs": "",
        "Pod": "",
        "ResolvConfPath": os.path.join(userdata, "resolv.conf"),
        "HostnamePath": os.path.join(userdata, "hostname"),
        "HostsPath": os.path.join(userdata, "hosts"),
        "Name": rec.name,
        "RestartCount": _restart_count(userdata),
        "Driver": "overlay",
        "OCIRuntime": cfg.get("OCIRuntime") or "hutch",
        "ConmonPidFile": os.path.join(userdata, "conmon.pid"),
        "LogPath": os.path.join(userdata, "ctr.log"),
        # podman lists binds and volumes here; tmpfs mounts are in HostConfig.Tmpfs
        "Mounts": [
            {k: v for k, v in m.items() if k != "Anonymous"}
            for m in cfg.get("Mounts") or []
            if m["Type"] != "tmpfs"
        ],
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
            "Volumes": cfg.get("Volumes"),
            "WorkingDir": cfg.get("WorkingDir", "/"),
            "Entrypoint": entrypoint,
            "Labels": dict(cfg.get("Labels") or {}),
            "Annotations": _annotations(engine, rec),
            **({"Healthcheck": cfg["Healthcheck"]} if cfg.get("Healthcheck") else {}),
            "StopSignal": rec.stop_signal or "SIGTERM",
            "StopTimeout": cfg.get("StopTimeout") if cfg.get("StopTimeout") is not None else STOP_TIMEOUT,
        },
        "NetworkSettings": network_settings(engine, rec),
        "HostConfig": {
            "NetworkMode": cfg.get("NetworkMode", "none"),
            "PortBindings": {},
            "RestartPolicy": cfg.get("RestartPolicy") or {"Name": "", "MaximumRetryCount": 0},
            "LogConfig": {
                "Type": cfg.get("LogDriver") or "k8s-file",  # --log-driver
                "Path": os.path.join(userdata, "ctr.log"),
            },
            "AutoRemove": rec.remove,
            "ReadonlyRootfs": bool(cfg.get("ReadonlyRootfs")),
            **host_config(engine, rec, cfg),  # the run flags' fields
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


def _health(rec: Record) -> dict[str, object]:
    """State.Health (and podman's older name for it, State.Healthcheck) when the container has a check."""
    from hutch.engine import health

    doc = health.state(rec)
    return {"Health": doc, "Healthcheck": doc} if doc is not None else {}


def _restart_count(userdata: str) -> int:
    from hutch.engine import restart

    return restart.count(userdata)


def _spec(engine: Engine, rec: Record) -> dict[str, Any]:
    from hutch import jsonfast

    try:
        with open(os.path.join(engine.path(rec, "userdata"), "config.json")) as f:
            doc = jsonfast.loads(f.read())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _annotations(engine: Engine, rec: Record) -> dict[str, str]:
    notes = dict(_spec(engine, rec).get("annotations") or {})
    notes.pop("io.hutch.container.id", None)
    return notes


def host_config(engine: Engine, rec: Record, cfg: dict[str, Any]) -> dict[str, Any]:
    """HostConfig's run-flag fields as podman shows them: from the record and the container's config.json
    (which `update` changes)."""
    from hutch.engine.mountresolve import binds

    spec = _spec(engine, rec)
    linux = spec.get("linux") or {}
    res = linux.get("resources") or {}
    mem, cpu = res.get("memory") or {}, res.get("cpu") or {}
    shm: dict[str, Any] = next(
        (m for m in spec.get("mounts") or [] if m.get("destination") == "/dev/shm"), {}
    )
    size = next((o[5:] for o in shm.get("options") or [] if o.startswith("size=")), "65536k")
    secopt = ["seccomp=unconfined"] if cfg.get("Seccomp") == "unconfined" else []
    secopt += ["no-new-privileges"] if cfg.get("NoNewPrivileges") else []
    secopt += [f"mask={':'.join(cfg['Mask'])}"] if cfg.get("Mask") else []
    secopt += [f"unmask={':'.join(cfg['Unmask'])}"] if cfg.get("Unmask") else []
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    rlimits = (spec.get("process") or {}).get("rlimits") or []
    shown = cfg.get("Mounts") or []
    return {
        "Binds": binds(shown),
        "CapAdd": list(cfg.get("CapAdd") or []),
        "CapDrop": list(cfg.get("CapDrop") or []),
        "Privileged": bool(cfg.get("Privileged")),
        "Init": bool(cfg.get("Init")),
        "GroupAdd": list(cfg.get("GroupAdd") or []),
        "SecurityOpt": secopt,
        "IpcMode": cfg.get("IpcMode", "private"),
        "PidMode": cfg.get("PidMode", "private"),
        "UTSMode": cfg.get("UTSMode", "private"),
        "CgroupnsMode": cfg.get("CgroupnsMode", "private"),
        "Devices": list(cfg.get("Devices") or []),
        "Memory": mem.get("limit", 0),
        "MemoryReservation": mem.get("reservation", 0),
        "MemorySwap": mem.get("swap", 0),
        "NanoCpus": quota * 1_000_000_000 // period if quota > 0 and period else 0,
        "CpuShares": cpu.get("shares", 0),
        "CpuQuota": quota,
        "CpuPeriod": period,
        "CpusetCpus": cpu.get("cpus", ""),
        "CpusetMems": cpu.get("mems", ""),
        "PidsLimit": (res.get("pids") or {}).get("limit", 0),
        "OomScoreAdj": (spec.get("process") or {}).get("oomScoreAdj", 0),
        "Ulimits": [{"Name": r["type"], "Soft": r["soft"], "Hard": r["hard"]} for r in rlimits],
        "Sysctls": dict(linux.get("sysctl") or {}),
        "ShmSize": _bytes(size),
        "Tmpfs": {m["Destination"]: ",".join(m["Options"]) for m in shown if m["Type"] == "tmpfs"},
    }


def _bytes(size: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    if size and size[-1].lower() in units:
        return int(size[:-1]) * units[size[-1].lower()]
    return int(size) if size.isdigit() else 0
