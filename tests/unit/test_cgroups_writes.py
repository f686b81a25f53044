"""What the v1 and v2 drivers write for linux.resources, on a directory of plain files standing in for cgroupfs.

Every write is recorded in order, so the tests see the values, the conversions (v2) and the ordering the
kernel needs (v1 memory and swap), and that a field the host cannot honour is an error naming it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hutch.errors import HostError
from hutch.oci.config import Reader
from hutch.oci.resources import (
    CPU,
    BlockIO,
    HugepageLimit,
    Memory,
    ThrottleDevice,
    WeightDevice,
    parse_resources,
)
from hutch.runtime import cgroups
from hutch.runtime.cgroups import files, v1, v2

V1_FILES = {
    "memory": [
        "memory.limit_in_bytes=9223372036854771712",
        "memory.memsw.limit_in_bytes=9223372036854771712",
        "memory.soft_limit_in_bytes",
        "memory.swappiness",
        "memory.oom_control",
        "memory.usage_in_bytes=1000",
    ],
    "cpu": [
        "cpu.shares=1024",
        "cpu.cfs_period_us",
        "cpu.cfs_quota_us",
        "cpu.cfs_burst_us",
        "cpu.rt_period_us",
        "cpu.rt_runtime_us",
        "cpu.idle",
    ],
    "cpuset": ["cpuset.cpus", "cpuset.mems"],
    "pids": ["pids.max"],
    "blkio": [
        "blkio.bfq.weight",
        "blkio.bfq.weight_device",
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_iops_device",
    ],
    "hugetlb": ["hugetlb.2MB.limit_in_bytes"],
}
V2_FILES = [
    "cgroup.controllers=cpu io memory pids hugetlb cpuset",
    "memory.max=max",
    "memory.swap.max",
    "memory.low",
    "memory.current=5000",
    "cpu.weight",
    "cpu.max=max 100000",
    "cpu.max.burst",
    "cpu.idle",
    "cpuset.cpus",
    "pids.max",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
    "hugetlb.2MB.rsvd.max",
]


class Writes(list[tuple[str, str, str]]):
    """(file name, value, field) of each write, in order."""

    def values(self) -> dict[str, str]:
        return {name: value for name, value, _ in self}


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Writes:
    log = Writes()
    real = files.write

    def record(directory: str, name: str, value: str, field: str) -> None:
        log.append((name, value, field))
        real(directory, name, value, field)

    for module in (files, v1, v2):
        monkeypatch.setattr(module, "write", record)
    return log


def make(directory: Path, entries: list[str]) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        name, _, value = entry.partition("=")
        (directory / name).write_text(value + "\n" if value else "")
    return str(directory)


@pytest.fixture
def v1dirs(tmp_path: Path) -> dict[str, str]:
    return {c: make(tmp_path / "v1" / c / "c1", entries) for c, entries in V1_FILES.items()}


@pytest.fixture
def v2dir(tmp_path: Path) -> str:
    return make(tmp_path / "v2" / "c1", V2_FILES)


def resources(doc: dict[str, object]) -> object:
    return parse_resources(Reader(doc, "linux.resources", "config.json"))


# --- v1 ---


def test_v1_memory_raises_swap_before_the_limit(v1dirs: dict[str, str], writes: Writes) -> None:
    # Now limited to 50M with memsw 50M: a limit of 100M would not fit under the old memsw.
    Path(v1dirs["memory"], "memory.limit_in_bytes").write_text(str(50 << 20))
    Path(v1dirs["memory"], "memory.memsw.limit_in_bytes").write_text(str(50 << 20))
    v1.memory(
        v1dirs["memory"], Memory(limit=100 << 20, swap=200 << 20, reservation=50 << 20, swappiness=10), False
    )
    assert [w[0] for w in writes[:2]] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    assert writes.values() == {
        "memory.memsw.limit_in_bytes": str(200 << 20),
        "memory.limit_in_bytes": str(100 << 20),
        "memory.soft_limit_in_bytes": str(50 << 20),
        "memory.swappiness": "10",
    }


def test_v1_memory_lowers_the_limit_before_swap(v1dirs: dict[str, str], writes: Writes) -> None:
    Path(v1dirs["memory"], "memory.limit_in_bytes").write_text(str(500 << 20))
    v1.memory(v1dirs["memory"], Memory(limit=100 << 20, swap=200 << 20), True)
    assert [w[0] for w in writes] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def test_v1_unlimited_memory_means_unlimited_swap(v1dirs: dict[str, str], writes: Writes) -> None:
    v1.memory(v1dirs["memory"], Memory(limit=-1), False)
    assert writes.values() == {"memory.memsw.limit_in_bytes": "-1", "memory.limit_in_bytes": "-1"}


def test_v1_oom_killer_and_checks(v1dirs: dict[str, str], writes: Writes) -> None:
    v1.memory(v1dirs["memory"], Memory(disable_oom_killer=True), False)
    assert writes.values() == {"memory.oom_control": "1"}
    with pytest.raises(HostError, match=r"linux\.resources\.memory\.swappiness: 101 is out of range"):
        v1.memory(v1dirs["memory"], Memory(swappiness=101), False)
    with pytest.raises(HostError, match=r"memory\.limit: 500 is below the current usage 1000"):
        v1.memory(v1dirs["memory"], Memory(limit=500, check_before_update=True), True)
    with pytest.raises(HostError, match=r"memory\.swap: .* is below memory\.limit"):
        v1.memory(v1dirs["memory"], Memory(limit=200, swap=100), False)


def test_v1_swap_without_accounting(v1dirs: dict[str, str]) -> None:
    Path(v1dirs["memory"], "memory.memsw.limit_in_bytes").unlink()
    with pytest.raises(HostError, match=r"memory\.swap: swap accounting is off"):
        v1.memory(v1dirs["memory"], Memory(limit=100, swap=200), False)


def test_v1_cpu(v1dirs: dict[str, str], writes: Writes) -> None:
    v1.cpu(v1dirs["cpu"], CPU(shares=1024, quota=50000, period=100000, burst=1000, idle=0), False)
    assert writes.values() == {
        "cpu.shares": "1024",
        "cpu.cfs_period_us": "100000",
        "cpu.cfs_quota_us": "50000",
        "cpu.cfs_burst_us": "1000",
        "cpu.idle": "0",
    }


def test_v1_cpu_shares_the_kernel_clamps(v1dirs: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "read_int", lambda *_a, **_k: 262144)  # what the kernel would read back
    with pytest.raises(HostError, match=r"cpu\.shares: 1000000 is out of the range"):
        v1.cpu(v1dirs["cpu"], CPU(shares=1_000_000), False)


def test_v1_realtime(v1dirs: dict[str, str], writes: Writes) -> None:
    v1.cpu(v1dirs["cpu"], CPU(realtime_period=1_000_000, realtime_runtime=5000), False)
    assert [w[0] for w in writes] == ["cpu.rt_period_us", "cpu.rt_runtime_us"]


def test_v1_blkio_uses_bfq_files_when_there(v1dirs: dict[str, str], writes: Writes) -> None:
    b = BlockIO(
        weight=300,
        weight_device=[WeightDevice(8, 0, weight=500)],
        throttle_read_bps_device=[ThrottleDevice(8, 0, 1 << 20)],
        throttle_write_iops_device=[ThrottleDevice(8, 0, 100)],
    )
    v1.blkio(v1dirs["blkio"], b, False)
    assert writes.values() == {
        "blkio.bfq.weight": "300",
        "blkio.bfq.weight_device": "8:0 500",
        "blkio.throttle.read_bps_device": f"8:0 {1 << 20}",
        "blkio.throttle.write_iops_device": "8:0 100",
    }


def test_v1_blkio_leaf_weight_without_cfq(v1dirs: dict[str, str]) -> None:
    with pytest.raises(HostError, match=r"linux\.resources\.blockIO\.leafWeight: this kernel has no"):
        v1.blkio(v1dirs["blkio"], BlockIO(leaf_weight=300), False)


def test_v1_hugetlb_page_size(v1dirs: dict[str, str], writes: Writes) -> None:
    v1.hugetlb(v1dirs["hugetlb"], [HugepageLimit("2MB", 4 << 20)], False)
    assert writes.values() == {"hugetlb.2MB.limit_in_bytes": str(4 << 20)}
    with pytest.raises(HostError, match=r"hugepageLimits\[0\]\.pageSize: '3MB' is not a huge page size"):
        v1.hugetlb(v1dirs["hugetlb"], [HugepageLimit("3MB", 1)], False)


def test_v1_pids(v1dirs: dict[str, str], writes: Writes) -> None:
    v1.pids(v1dirs["pids"], 10, False)
    v1.pids(v1dirs["pids"], -1, False)
    assert [w[1] for w in writes] == ["10", "max"]


# --- v2 ---


@pytest.mark.parametrize(("shares", "weight"), [(0, 0), (2, 1), (1024, 39), (262144, 10000)])
def test_cpu_weight(shares: int, weight: int) -> None:
    assert v2.cpu_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(10, 1), (500, 4950), (1000, 10000)])
def test_io_weight(blkio: int, io: int) -> None:
    assert v2.io_weight(blkio) == io


@pytest.mark.parametrize(
    ("swap", "limit", "expected"),
    [(0, -1, -1), (-1, 100, -1), (0, 100, 0), (300, 100, 200), (100, 100, 0)],
)
def test_swap_value(swap: int, limit: int, expected: int) -> None:
    assert v2.swap_value(swap, limit) == expected


def test_swap_value_errors() -> None:
    with pytest.raises(HostError, match="needs a memory limit"):
        v2.swap_value(100, 0)
    with pytest.raises(HostError, match="below memory.limit"):
        v2.swap_value(50, 100)


def test_v2_memory(v2dir: str, writes: Writes) -> None:
    v2.memory(v2dir, Memory(limit=100, swap=300, reservation=50), False)
    assert writes.values() == {"memory.swap.max": "200", "memory.max": "100", "memory.low": "50"}


def test_v2_memory_swap_equal_to_limit_means_no_swap(v2dir: str, writes: Writes) -> None:
    v2.memory(v2dir, Memory(limit=100, swap=100), False)
    assert writes.values() == {"memory.swap.max": "0", "memory.max": "100"}


def test_v2_memory_v1_only_knobs_warn(v2dir: str, writes: Writes, capsys: pytest.CaptureFixture[str]) -> None:
    v2.memory(v2dir, Memory(swappiness=10, disable_oom_killer=True), False)
    assert writes == []
    err = capsys.readouterr().err
    assert "memory.swappiness: cgroup v2 has no per-cgroup swappiness" in err
    assert "memory.disableOOMKiller" in err


def test_v2_cpu(v2dir: str, writes: Writes) -> None:
    v2.cpu(v2dir, CPU(shares=1024, quota=20000, period=50000, burst=100), False)
    assert writes.values() == {"cpu.weight": "39", "cpu.max": "20000 50000", "cpu.max.burst": "100"}


def test_v2_cpu_period_alone_keeps_the_quota(v2dir: str, writes: Writes) -> None:
    Path(v2dir, "cpu.max").write_text("30000 100000\n")
    v2.cpu(v2dir, CPU(period=200000), True)
    assert writes.values() == {"cpu.max": "30000 200000"}


def test_v2_cpu_realtime_is_an_error(v2dir: str) -> None:
    with pytest.raises(
        HostError, match=r"linux\.resources\.cpu\.realtimeRuntime: cgroup v2 has no real-time"
    ):
        v2.cpu(v2dir, CPU(realtime_runtime=1000), False)


def test_v2_io(v2dir: str, writes: Writes) -> None:
    b = BlockIO(
        weight=500,
        throttle_read_bps_device=[ThrottleDevice(8, 0, 1000)],
        throttle_write_iops_device=[ThrottleDevice(8, 0, 0)],
    )
    v2.io(v2dir, b, False)
    assert writes == [
        ("io.weight", "default 4950", "blockIO.weight"),
        ("io.max", "8:0 rbps=1000", "blockIO.throttleReadBpsDevice[0]"),
        ("io.max", "8:0 wiops=max", "blockIO.throttleWriteIOPSDevice[0]"),
    ]


def test_v2_hugetlb_writes_the_reservation_too(v2dir: str, writes: Writes) -> None:
    v2.hugetlb(v2dir, [HugepageLimit("2MB", 2 << 20)], False)
    assert writes.values() == {"hugetlb.2MB.max": str(2 << 20), "hugetlb.2MB.rsvd.max": str(2 << 20)}


def test_v2_unified(v2dir: str, writes: Writes) -> None:
    v2.unified(v2dir, {"pids.max": "7"}, set())
    assert writes.values() == {"pids.max": "7"}
    with pytest.raises(HostError, match=r"unified\['memory\.max'\]: the memory controller is on cgroup v1"):
        v2.unified(v2dir, {"memory.max": "1"}, {"memory"})
    with pytest.raises(HostError, match="must be a file name"):
        v2.unified(v2dir, {"../escape": "1"}, set())
    with pytest.raises(HostError, match="the rdma controller is not available"):
        v2.unified(v2dir, {"rdma.max": "x"}, set())


# --- the facade: where each part goes ---


def test_apply_dispatches_hybrid(v1dirs: dict[str, str], v2dir: str, writes: Writes) -> None:
    record = {"v1": {k: d for k, d in v1dirs.items() if k != "hugetlb"}, "v2": v2dir, "owned": []}
    r = resources(
        {
            "memory": {"limit": 1000},
            "cpu": {"shares": 512, "cpus": "0"},
            "pids": {"limit": 5},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
        }
    )
    cgroups.apply(record, r, update=False, devices=False)  # type: ignore[arg-type]
    values = writes.values()
    assert values["memory.limit_in_bytes"] == "1000"  # v1
    assert values["cpu.shares"] == "512"
    assert values["cpuset.cpus"] == "0"
    assert values["hugetlb.2MB.max"] == "2097152"  # v2, where hugetlb is on this kind of host


def test_apply_names_the_field_a_host_lacks(v1dirs: dict[str, str]) -> None:
    record = {"v1": {"memory": v1dirs["memory"]}, "v2": "", "owned": []}
    with pytest.raises(
        HostError, match=r"linux\.resources\.pids\.limit: the pids controller is not available"
    ):
        cgroups.apply(record, resources({"pids": {"limit": 5}}), update=False, devices=False)  # type: ignore[arg-type]
    with pytest.raises(HostError, match=r"network\.classID: needs the v1 net_cls controller"):
        cgroups.apply(record, resources({"network": {"classID": 1}}), update=False, devices=False)  # type: ignore[arg-type]
    with pytest.raises(HostError, match=r"linux\.resources\.unified: this host has no cgroup v2"):
        cgroups.apply(record, resources({"unified": {"pids.max": "1"}}), update=False, devices=False)  # type: ignore[arg-type]
