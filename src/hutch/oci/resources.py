"""`linux.resources` of the OCI runtime config (runtime-spec v1.2) as typed data.

Parsed by hutch.oci.config (through its Reader, so errors name the JSON path); the cgroup code reads these.
An absent optional value is None: "leave the kernel's setting alone", which is not the same as 0.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field
if TYPE_CHECKING:
    from typing import Any

    from hutch.oci.reader import Reader

# Integer ranges of the spec's Go types (as in hutch.oci.config, which imports this module).
_U16 = (0, 0xFFFF)
_U32 = (0, 0xFFFF_FFFF)
_U64 = (0, 0xFFFF_FFFF_FFFF_FFFF)
_I64 = (-(2**63), 2**63 - 1)


@dataclass(slots=True)
class DeviceRule:
    """A device cgroup rule. Parsing fills the spec's defaults: type "a" (all), access "rwm"."""

    allow: bool
    type: str = "a"
    major: int | None = None
    minor: int | None = None
    access: str = "rwm"


@dataclass(slots=True)
class Memory:
    """linux.resources.memory: bytes (-1 is unlimited), swappiness 0..100."""

    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None
    kernel: int | None = None
    kernel_tcp: int | None = None
    swappiness: int | None = None
    disable_oom_killer: bool | None = None
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None


@dataclass(slots=True)
class CPU:
    """linux.resources.cpu: shares, CFS quota/period/burst (microseconds), RT runtime/period, cpusets."""

    shares: int | None = None
    quota: int | None = None
    burst: int | None = None
    period: int | None = None
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str = ""
    mems: str = ""
    idle: int | None = None


@dataclass(slots=True)
class Pids:
    """linux.resources.pids: the task limit (-1 is unlimited)."""

    limit: int | None = None


@dataclass(slots=True)
class WeightDevice:
    """linux.resources.blockIO.weightDevice[]."""

    major: int
    minor: int
    weight: int | None = None
    leaf_weight: int | None = None


@dataclass(slots=True)
class ThrottleDevice:
    """linux.resources.blockIO.throttle*Device[]: `rate` in bytes or I/O operations per second."""

    major: int
    minor: int
    rate: int


@dataclass(slots=True)
class BlockIO:
    """linux.resources.blockIO."""

    weight: int | None = None
    leaf_weight: int | None = None
    weight_device: list[WeightDevice] = field(default_factory=list)
    throttle_read_bps_device: list[ThrottleDevice] = field(default_factory=list)
    throttle_write_bps_device: list[ThrottleDevice] = field(default_factory=list)
    throttle_read_iops_device: list[ThrottleDevice] = field(default_factory=list)
    throttle_write_iops_device: list[ThrottleDevice] = field(default_factory=list)


@dataclass(slots=True)
class HugepageLimit:
    """linux.resources.hugepageLimits[]: `page_size` as in the cgroup file name ("2MB", "1GB")."""

    page_size: str
    limit: int


@dataclass(slots=True)
class InterfacePriority:
    """linux.resources.network.priorities[]."""

    name: str
    priority: int


@dataclass(slots=True)
class Network:
    """linux.resources.network: net_cls class id and net_prio priorities."""

    class_id: int | None = None
    priorities: list[InterfacePriority] = field(default_factory=list)


@dataclass(slots=True)
class Resources:
    """linux.resources. `rdma` is kept as raw JSON; `unified` holds cgroup v2 files by name."""

    devices: list[DeviceRule] = field(default_factory=list)
    memory: Memory | None = None
    cpu: CPU | None = None
    pids: Pids | None = None
    block_io: BlockIO | None = None
    hugepage_limits: list[HugepageLimit] = field(default_factory=list)
    network: Network | None = None
    rdma: dict[str, Any] | None = None
    unified: dict[str, str] = field(default_factory=dict)


def _device_rule(r: Reader) -> DeviceRule:
    access = r.string("access") or "rwm"
    if access.strip("rwm") or len(set(access)) != len(access):
        raise r.error("access", f'"{access}": expected a combination of "r", "w" and "m"')
    return DeviceRule(
        allow=r.boolean("allow", required=True),
        type=r.choice("type", ("a", "c", "b"), "device type") or "a",
        major=r.opt_integer("major", _I64),
        minor=r.opt_integer("minor", _I64),
        access=access,
    )


def _throttle(r: Reader, key: str) -> list[ThrottleDevice]:
    return [
        ThrottleDevice(
            t.integer("major", _I64, True), t.integer("minor", _I64, True), t.integer("rate", _U64, True)
        )
        for t in r.children(key)
    ]


def parse_resources(r: Reader) -> Resources:
    """Validate `linux.resources`; `r` reads that object."""
    memory, cpu, pids = r.child("memory"), r.child("cpu"), r.child("pids")
    blkio, network = r.child("blockIO"), r.child("network")
    return Resources(
        devices=[_device_rule(d) for d in r.children("devices")],
        memory=None
        if memory is None
        else Memory(
            limit=memory.opt_integer("limit", _I64),
            reservation=memory.opt_integer("reservation", _I64),
            swap=memory.opt_integer("swap", _I64),
            kernel=memory.opt_integer("kernel", _I64),
            kernel_tcp=memory.opt_integer("kernelTCP", _I64),
            swappiness=memory.opt_integer("swappiness", _U64),
            disable_oom_killer=memory.opt_boolean("disableOOMKiller"),
            use_hierarchy=memory.opt_boolean("useHierarchy"),
            check_before_update=memory.opt_boolean("checkBeforeUpdate"),
        ),
        cpu=None
        if cpu is None
        else CPU(
            shares=cpu.opt_integer("shares", _U64),
            quota=cpu.opt_integer("quota", _I64),
            burst=cpu.opt_integer("burst", _U64),
            period=cpu.opt_integer("period", _U64),
            realtime_runtime=cpu.opt_integer("realtimeRuntime", _I64),
            realtime_period=cpu.opt_integer("realtimePeriod", _U64),
            cpus=cpu.string("cpus"),
            mems=cpu.string("mems"),
            idle=cpu.opt_integer("idle", _I64),
        ),
        pids=None if pids is None else Pids(pids.opt_integer("limit", _I64)),
        block_io=None
        if blkio is None
        else BlockIO(
            weight=blkio.opt_integer("weight", _U16),
            leaf_weight=blkio.opt_integer("leafWeight", _U16),
            weight_device=[
                WeightDevice(
                    w.integer("major", _I64, True),
                    w.integer("minor", _I64, True),
                    w.opt_integer("weight", _U16),
                    w.opt_integer("leafWeight", _U16),
                )
                for w in blkio.children("weightDevice")
            ],
            throttle_read_bps_device=_throttle(blkio, "throttleReadBpsDevice"),
            throttle_write_bps_device=_throttle(blkio, "throttleWriteBpsDevice"),
            throttle_read_iops_device=_throttle(blkio, "throttleReadIOPSDevice"),
            throttle_write_iops_device=_throttle(blkio, "throttleWriteIOPSDevice"),
        ),
        hugepage_limits=[
            HugepageLimit(h.string("pageSize", required=True), h.integer("limit", _U64, True))
            for h in r.children("hugepageLimits")
        ],
        network=None
        if network is None
        else Network(
            class_id=network.opt_integer("classID", _U32),
            priorities=[
                InterfacePriority(p.string("name", required=True), p.integer("priority", _U32, True))
                for p in network.children("priorities")
            ],
        ),
        rdma=r.raw("rdma"),
        unified=r.string_map("unified"),
    )
