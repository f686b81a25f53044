"""hutch.oci.config: config.json parsed into typed data; every error names the file and the JSON path."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hutch.errors import ConfigError
from hutch.oci import config
from hutch.oci.config import (
    CAPABILITIES,
    RLIMITS,
    Capabilities,
    ConsoleSize,
    Device,
    Hook,
    IDMapping,
    IOPriority,
    Mount,
    Namespace,
    Personality,
    Rlimit,
    Root,
    Scheduler,
    TimeOffset,
    User,
    load,
    load_process,
    parse,
    parse_process,
)
from hutch.oci.resources import (
    CPU,
    DeviceRule,
    HugepageLimit,
    InterfacePriority,
    Memory,
    Pids,
    ThrottleDevice,
    WeightDevice,
)
from hutch.oci.seccomp import SECCOMP_ACTIONS, SECCOMP_OPS, SeccompArg, SeccompSyscall

ACTIONS = (
    "(expected one of SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, "
    "SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY)"
)
CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

# What `runc spec` writes (runc 1.1), inlined so that the test does not need runc.
RUNC_SPEC: dict[str, Any] = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS, "ambient": CAPS},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [
            {"type": "pid"},
            {"type": "network"},
            {"type": "ipc"},
            {"type": "uts"},
            {"type": "mount"},
            {"type": "cgroup"},
        ],
        "maskedPaths": [
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
        ],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}

# Every section the parser knows, with a value in each field.
FULL_SPEC: dict[str, Any] = {
    "ociVersion": "1.2.0",
    "process": {
        "terminal": False,
        "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "umask": 0o022, "additionalGids": [5, 10], "username": "u"},
        "args": ["/bin/sh", "-c", "true"],
        "env": ["PATH=/bin"],
        "cwd": "/work",
        "capabilities": {
            "bounding": ["CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"],
            "effective": ["CAP_CHOWN"],
            "inheritable": [],
            "permitted": ["CAP_CHOWN"],
        },
        "rlimits": [
            {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
            {"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 0},
        ],
        "noNewPrivileges": True,
        "apparmorProfile": "hutch-default",
        "oomScoreAdj": -500,
        "selinuxLabel": "system_u:system_r:container_t:s0",
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "scheduler": {
            "policy": "SCHED_DEADLINE",
            "nice": -5,
            "priority": 0,
            "flags": ["SCHED_FLAG_RESET_ON_FORK"],
            "runtime": 10_000_000,
            "deadline": 30_000_000,
            "period": 30_000_000,
        },
        "execCPUAffinity": {"initial": "0", "final": "0-3"},
        "x-extension": {"ignored": True},
    },
    "root": {"path": "/var/lib/rootfs"},
    "hostname": "box",
    "domainname": "example.org",
    "mounts": [
        {
            "destination": "/data",
            "type": "bind",
            "source": "/srv/data",
            "options": ["rbind", "ro"],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        }
    ],
    "hooks": {
        "prestart": [{"path": "/usr/bin/old-hook"}],
        "createRuntime": [{"path": "/usr/bin/netns-hook", "args": ["netns-hook", "up"], "env": ["A=1"]}],
        "createContainer": [{"path": "/hook/cc", "timeout": 5}],
        "startContainer": [{"path": "/hook/sc"}],
        "poststart": [{"path": "/hook/ps1"}, {"path": "/hook/ps2"}],
        "poststop": [{"path": "/hook/stop", "timeout": 1}],
    },
    "annotations": {"org.example.key": "value"},
    "linux": {
        "namespaces": [
            {"type": "pid"},
            {"type": "network", "path": "/run/netns/x"},
            {"type": "mount"},
            {"type": "ipc"},
            {"type": "uts"},
            {"type": "user"},
            {"type": "cgroup"},
            {"type": "time"},
        ],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "timeOffsets": {"monotonic": {"secs": 86400, "nanosecs": 5}, "boottime": {"secs": -10}},
        "devices": [
            {
                "type": "c",
                "path": "/dev/fuse",
                "major": 10,
                "minor": 229,
                "fileMode": 0o666,
                "uid": 0,
                "gid": 0,
            },
            {"type": "p", "path": "/dev/fifo"},
        ],
        "cgroupsPath": "/hutch/box",
        "resources": {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
            ],
            "memory": {
                "limit": 536870912,
                "reservation": 268435456,
                "swap": -1,
                "kernel": 0,
                "kernelTCP": 0,
                "swappiness": 60,
                "disableOOMKiller": False,
                "useHierarchy": True,
                "checkBeforeUpdate": True,
            },
            "cpu": {
                "shares": 1024,
                "quota": 50000,
                "burst": 1000,
                "period": 100000,
                "realtimeRuntime": 950000,
                "realtimePeriod": 1000000,
                "cpus": "0-1",
                "mems": "0",
                "idle": 0,
            },
            "pids": {"limit": 100},
            "blockIO": {
                "weight": 500,
                "leafWeight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 200}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
            "unified": {"memory.high": "1073741824"},
        },
        "rootfsPropagation": "rslave",
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
        "mountLabel": "system_u:object_r:container_file_t:s0",
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "listenerPath": "/run/seccomp.sock",
            "listenerMetadata": "meta",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
                },
                {
                    "names": ["clone"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 38,
                    "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                },
                {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
            ],
        },
        "personality": {"domain": "LINUX32", "flags": []},
        "intelRdt": {"closID": "guaranteed_group", "l3CacheSchema": "L3:0=7f0"},
        "netDevices": {"eth1": {"name": "eth9"}},
    },
    "vm": {"hypervisor": {"path": "/ignored"}},
}


def test_runc_spec_parses() -> None:
    spec = parse(copy.deepcopy(RUNC_SPEC))
    assert spec.oci_version == "1.0.2-dev"
    process = spec.require_process()
    assert process.terminal is True
    assert process.user == User(uid=0, gid=0)
    assert process.args == ["sh"]
    assert process.cwd == "/"
    assert process.capabilities == Capabilities(bounding=CAPS, effective=CAPS, permitted=CAPS, ambient=CAPS)
    assert process.rlimits == [Rlimit("RLIMIT_NOFILE", 1024, 1024)]
    assert process.no_new_privileges is True
    assert process.oom_score_adj is None
    assert spec.root == Root("rootfs", readonly=True)
    assert spec.hostname == "runc"
    assert [m.destination for m in spec.mounts] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ]
    assert spec.mounts[0] == Mount("/proc", "proc", "proc")
    assert spec.mounts[2].options[-1] == "gid=5"
    assert spec.hooks.poststop == []
    assert spec.annotations == {}
    linux = spec.linux
    assert linux is not None
    assert [ns.type for ns in linux.namespaces] == ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    assert linux.namespace("network") == Namespace("network")
    assert linux.namespace("user") is None
    assert linux.resources is not None
    assert linux.resources.devices == [DeviceRule(allow=False, type="a", access="rwm")]
    assert linux.masked_paths[0] == "/proc/acpi"
    assert linux.readonly_paths[-1] == "/proc/sysrq-trigger"
    assert linux.seccomp is None
    assert spec.raw == RUNC_SPEC


def test_full_spec_parses_every_section() -> None:
    spec = parse(copy.deepcopy(FULL_SPEC))
    p = spec.require_process()
    assert p.console_size == ConsoleSize(24, 80)
    assert p.user == User(uid=1000, gid=1000, umask=0o022, additional_gids=[5, 10], username="u")
    assert p.capabilities is not None
    assert p.capabilities.bounding == ["CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]
    assert p.capabilities.inheritable == [] and p.capabilities.ambient == []
    assert p.rlimits[1] == Rlimit("RLIMIT_CORE", hard=2**64 - 1, soft=0)
    assert (p.apparmor_profile, p.oom_score_adj, p.selinux_label) == (
        "hutch-default",
        -500,
        "system_u:system_r:container_t:s0",
    )
    assert p.io_priority == IOPriority("IOPRIO_CLASS_BE", 4)
    assert p.scheduler == Scheduler(
        "SCHED_DEADLINE", -5, 0, ["SCHED_FLAG_RESET_ON_FORK"], 10**7, 3 * 10**7, 3 * 10**7
    )
    assert p.exec_cpu_affinity == {"initial": "0", "final": "0-3"}
    assert spec.root == Root("/var/lib/rootfs", readonly=False)
    assert (spec.hostname, spec.domainname) == ("box", "example.org")
    assert spec.mounts[0].uid_mappings == [IDMapping(0, 100000, 65536)]
    assert spec.mounts[0].gid_mappings == [IDMapping(0, 100000, 65536)]
    assert spec.hooks.prestart == [Hook("/usr/bin/old-hook")]
    assert spec.hooks.create_runtime == [Hook("/usr/bin/netns-hook", ["netns-hook", "up"], ["A=1"])]
    assert spec.hooks.create_container[0].timeout == 5
    assert spec.hooks.start_container[0].path == "/hook/sc"
    assert [h.path for h in spec.hooks.poststart] == ["/hook/ps1", "/hook/ps2"]
    assert spec.hooks.poststop == [Hook("/hook/stop", timeout=1)]
    assert spec.annotations == {"org.example.key": "value"}

    linux = spec.linux
    assert linux is not None
    assert len(linux.namespaces) == 8
    assert linux.namespace("network") == Namespace("network", "/run/netns/x")
    assert linux.namespace("pid") == Namespace("pid", None)
    assert linux.uid_mappings == [IDMapping(0, 1000, 1)]
    assert linux.time_offsets == {"monotonic": TimeOffset(86400, 5), "boottime": TimeOffset(-10, 0)}
    assert linux.devices == [
        Device("c", "/dev/fuse", 10, 229, 0o666, 0, 0),
        Device("p", "/dev/fifo", 0, 0, None, None, None),
    ]
    assert linux.cgroups_path == "/hutch/box"
    assert linux.rootfs_propagation == "rslave"
    assert linux.mount_label.startswith("system_u")
    assert linux.sysctl == {"net.ipv4.ip_forward": "1"}
    assert linux.personality == Personality("LINUX32", [])
    assert linux.intel_rdt == {"closID": "guaranteed_group", "l3CacheSchema": "L3:0=7f0"}
    assert linux.net_devices == {"eth1": {"name": "eth9"}}

    r = linux.resources
    assert r is not None
    assert r.devices[1] == DeviceRule(allow=True, type="c", major=10, minor=229, access="rw")
    assert r.memory == Memory(536870912, 268435456, -1, 0, 0, 60, False, True, True)
    assert r.cpu == CPU(1024, 50000, 1000, 100000, 950000, 1000000, "0-1", "0", 0)
    assert r.pids == Pids(100)
    assert r.block_io is not None
    assert (r.block_io.weight, r.block_io.leaf_weight) == (500, 300)
    assert r.block_io.weight_device == [WeightDevice(8, 0, 600, 200)]
    assert r.block_io.throttle_read_bps_device == [ThrottleDevice(8, 0, 1048576)]
    assert r.block_io.throttle_write_bps_device == [ThrottleDevice(8, 0, 2097152)]
    assert r.block_io.throttle_read_iops_device == [ThrottleDevice(8, 0, 100)]
    assert r.block_io.throttle_write_iops_device == [ThrottleDevice(8, 0, 200)]
    assert r.hugepage_limits == [HugepageLimit("2MB", 209715200)]
    assert r.network is not None
    assert r.network.class_id == 1048577
    assert r.network.priorities == [InterfacePriority("eth0", 500)]
    assert r.rdma == {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}
    assert r.unified == {"memory.high": "1073741824"}

    sc = linux.seccomp
    assert sc is not None
    assert (sc.default_action, sc.default_errno_ret) == ("SCMP_ACT_ERRNO", 1)
    assert sc.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert sc.flags == ["SECCOMP_FILTER_FLAG_LOG"]
    assert (sc.listener_path, sc.listener_metadata) == ("/run/seccomp.sock", "meta")
    assert sc.syscalls[0] == SeccompSyscall(["read", "write"], "SCMP_ACT_ALLOW")
    assert sc.syscalls[1].args == [SeccompArg(index=0, value=8, op="SCMP_CMP_EQ")]
    assert sc.syscalls[2].errno_ret == 38
    assert sc.syscalls[2].args[0].op == "SCMP_CMP_MASKED_EQ"
    assert sc.syscalls[3].action == "SCMP_ACT_NOTIFY"


def test_minimal_spec_has_empty_defaults() -> None:
    spec = parse({"ociVersion": "1.1.0"})
    assert spec.process is None and spec.root is None and spec.linux is None
    assert spec.mounts == [] and spec.annotations == {} and spec.hooks.create_runtime == []
    assert (spec.hostname, spec.domainname) == ("", "")


def test_require_process_names_the_source() -> None:
    with pytest.raises(ConfigError, match=r"^config\.json: process: required$"):
        parse({"ociVersion": "1.2.0"}).require_process()
    with pytest.raises(ConfigError, match=r"^/b/config\.json: process: required$"):
        parse({"ociVersion": "1.2.0"}, "/b/config.json").require_process()


def test_unknown_keys_are_ignored() -> None:
    doc = copy.deepcopy(RUNC_SPEC)
    doc["x-vendor"] = [1, 2]
    doc["process"]["user"]["x"] = "y"
    doc["linux"]["resources"]["x"] = None
    doc["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND"}
    assert parse(doc).raw["x-vendor"] == [1, 2]


def test_null_reads_as_absent() -> None:
    doc = copy.deepcopy(RUNC_SPEC)
    doc["hostname"] = None
    doc["process"]["rlimits"] = None
    spec = parse(doc)
    assert spec.hostname == "" and spec.require_process().rlimits == []


def test_tables() -> None:
    assert len(CAPABILITIES) == 41
    assert sorted(CAPABILITIES.values()) == list(range(41))
    assert CAPABILITIES["CAP_CHOWN"] == 0 and CAPABILITIES["CAP_SYS_ADMIN"] == 21
    assert CAPABILITIES["CAP_PERFMON"] == 38 and CAPABILITIES["CAP_BPF"] == 39
    assert CAPABILITIES["CAP_CHECKPOINT_RESTORE"] == 40
    import resource

    for name, number in RLIMITS.items():
        assert getattr(resource, name, number) == number, name
    assert RLIMITS["RLIMIT_NOFILE"] == 7 and len(RLIMITS) == 16


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets `value` at a dotted path (`process.rlimits.0.hard`); creates missing objects."""

    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return mutate


ERRORS = [
    (_set("ociVersion", "2.0.0"), 'ociVersion "2.0.0": unsupported major version (hutch supports 1.x)'),
    (_set("ociVersion", "latest"), 'ociVersion "latest": not a version'),
    (_set("ociVersion", 1), "ociVersion: expected a string, got 1"),
    (_del("ociVersion"), "ociVersion: required"),
    (_set("hostname", ["a"]), "hostname: expected a string, got an array"),
    (_set("process", "sh"), 'process: expected an object, got "sh"'),
    (_set("process.terminal", "yes"), 'process.terminal: expected a boolean, got "yes"'),
    (_set("process.args", []), "process.args: must have at least one entry"),
    (_del("process.args"), "process.args: required"),
    (_set("process.args", ["sh", 3]), "process.args[1]: expected a string, got 3"),
    (_del("process.cwd"), "process.cwd: required"),
    (_set("process.cwd", "work"), 'process.cwd: "work" is not an absolute path'),
    (_del("process.user"), "process.user: required"),
    (_del("process.user.uid"), "process.user.uid: required"),
    (_set("process.user.uid", -1), "process.user.uid: -1 is out of range (0..4294967295)"),
    (_set("process.user.gid", True), "process.user.gid: expected an integer, got true"),
    (_set("process.user.gid", 1.5), "process.user.gid: expected an integer, got 1.5"),
    (
        _set("process.user.additionalGids", [1, "2"]),
        'process.user.additionalGids[1]: expected an integer, got "2"',
    ),
    (_set("process.consoleSize", {"height": 1}), "process.consoleSize.width: required"),
    (_set("process.env", "A=1"), 'process.env: expected an array, got "A=1"'),
    (
        _set("process.capabilities.effective", ["CAP_FOO"]),
        'process.capabilities.effective[0]: unknown capability "CAP_FOO"',
    ),
    (
        _set("process.capabilities.bounding", ["chown"]),
        'process.capabilities.bounding[0]: unknown capability "chown"',
    ),
    (_set("process.rlimits.0.hard", "x"), 'process.rlimits[0].hard: expected an integer, got "x"'),
    (
        _set("process.rlimits.0.hard", 2**64),
        "process.rlimits[0].hard: 18446744073709551616 is out of range (0..18446744073709551615)",
    ),
    (_set("process.rlimits.0.type", "RLIMIT_FOO"), 'process.rlimits[0].type: unknown rlimit "RLIMIT_FOO"'),
    (_set("process.rlimits.0.soft", 2048), "process.rlimits[0].soft: 2048 is above the hard limit 1024"),
    (
        _set("process.rlimits.0", "RLIMIT_NOFILE"),
        'process.rlimits[0]: expected an object, got "RLIMIT_NOFILE"',
    ),
    (
        _set("process.rlimits", [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1}] * 2),
        'process.rlimits[1].type: duplicate rlimit "RLIMIT_NOFILE"',
    ),
    (_set("process.oomScoreAdj", 1001), "process.oomScoreAdj: 1001 is out of range (-1000..1000)"),
    (
        _set("process.ioPriority", {"class": "IOPRIO_CLASS_X", "priority": 0}),
        'process.ioPriority.class: unknown I/O priority class "IOPRIO_CLASS_X" '
        "(expected one of IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE)",
    ),
    (
        _set("process.ioPriority", {"class": "IOPRIO_CLASS_RT", "priority": 8}),
        "process.ioPriority.priority: 8 is out of range (0..7)",
    ),
    (_set("process.scheduler", {"nice": 1}), "process.scheduler.policy: required"),
    (
        _set("process.scheduler", {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_NOPE"]}),
        'process.scheduler.flags[0]: unknown scheduler flag "SCHED_FLAG_NOPE" (expected one of '
        "SCHED_FLAG_RESET_ON_FORK, SCHED_FLAG_RECLAIM, SCHED_FLAG_DL_OVERRUN, SCHED_FLAG_KEEP_POLICY, "
        "SCHED_FLAG_KEEP_PARAMS, SCHED_FLAG_UTIL_CLAMP_MIN, SCHED_FLAG_UTIL_CLAMP_MAX)",
    ),
    (_set("root", {"readonly": True}), "root.path: required"),
    (_set("root.path", ""), "root.path: must not be empty"),
    (_set("mounts.1.destination", "dev"), 'mounts[1].destination: "dev" is not an absolute path'),
    (_del("mounts.0.destination"), "mounts[0].destination: required"),
    (_set("mounts.2.options", "ro"), 'mounts[2].options: expected an array, got "ro"'),
    (
        _set("mounts.0.uidMappings", [{"containerID": 0, "hostID": 1}]),
        "mounts[0].uidMappings[0].size: required",
    ),
    (_set("hooks.poststop", [{"path": "hook"}]), 'hooks.poststop[0].path: "hook" is not an absolute path'),
    (
        _set("hooks.createRuntime", [{"path": "/h", "timeout": 0}]),
        "hooks.createRuntime[0].timeout: must be greater than zero, got 0",
    ),
    (_set("hooks.prestart", [{"args": []}]), "hooks.prestart[0].path: required"),
    (_set("annotations", {"a": 1}), 'annotations["a"]: expected a string, got 1'),
    (_set("annotations", {"": "x"}), "annotations: keys must not be empty"),
    (_set("linux.namespaces.2.type", "pid"), 'linux.namespaces[2].type: duplicate namespace "pid"'),
    (
        _set("linux.namespaces.0.type", "net"),
        'linux.namespaces[0].type: unknown namespace type "net" '
        "(expected one of pid, network, mount, ipc, uts, user, cgroup, time)",
    ),
    (
        _set("linux.namespaces.1", {"type": "network", "path": "netns"}),
        'linux.namespaces[1].path: "netns" is not an absolute path',
    ),
    (
        _set("linux.uidMappings", [{"containerID": 0, "hostID": "1000", "size": 1}]),
        'linux.uidMappings[0].hostID: expected an integer, got "1000"',
    ),
    (
        _set("linux.timeOffsets", {"realtime": {"secs": 1}}),
        'linux.timeOffsets["realtime"]: unknown clock "realtime" (expected one of monotonic, boottime)',
    ),
    (
        _set("linux.timeOffsets", {"boottime": {"nanosecs": 10**9}}),
        'linux.timeOffsets["boottime"].nanosecs: 1000000000 is out of range (0..999999999)',
    ),
    (
        _set("linux.devices", [{"type": "c", "path": "/dev/x", "major": 1}]),
        "linux.devices[0].minor: required",
    ),
    (
        _set("linux.devices", [{"type": "x", "path": "/dev/x"}]),
        'linux.devices[0].type: unknown device type "x" (expected one of c, b, u, p)',
    ),
    (
        _set("linux.devices", [{"type": "p", "path": "dev/x"}]),
        'linux.devices[0].path: "dev/x" is not an absolute path',
    ),
    (
        _set("linux.rootfsPropagation", "bogus"),
        'linux.rootfsPropagation: unknown propagation "bogus" '
        "(expected one of private, rprivate, slave, rslave, shared, rshared, unbindable, runbindable)",
    ),
    (
        _set("linux.maskedPaths", ["/proc/kcore", "sys"]),
        'linux.maskedPaths[1]: "sys" is not an absolute path',
    ),
    (
        _set("linux.sysctl", {"net.ipv4.ip_forward": 1}),
        'linux.sysctl["net.ipv4.ip_forward"]: expected a string, got 1',
    ),
    (
        _set("linux.personality", {"domain": "LINUX64"}),
        'linux.personality.domain: unknown personality domain "LINUX64" (expected one of LINUX, LINUX32)',
    ),
    (
        _set("linux.resources.devices.0.access", "rwx"),
        'linux.resources.devices[0].access: "rwx": expected a combination of "r", "w" and "m"',
    ),
    (
        _set("linux.resources.devices.0.type", "z"),
        'linux.resources.devices[0].type: unknown device type "z" (expected one of a, c, b)',
    ),
    (_del("linux.resources.devices.0.allow"), "linux.resources.devices[0].allow: required"),
    (
        _set("linux.resources.memory", {"limit": "1G"}),
        'linux.resources.memory.limit: expected an integer, got "1G"',
    ),
    (
        _set("linux.resources.memory", {"disableOOMKiller": 1}),
        "linux.resources.memory.disableOOMKiller: expected a boolean, got 1",
    ),
    (
        _set("linux.resources.cpu", {"shares": -2}),
        "linux.resources.cpu.shares: -2 is out of range (0..18446744073709551615)",
    ),
    (_set("linux.resources.cpu", {"cpus": 0}), "linux.resources.cpu.cpus: expected a string, got 0"),
    (
        _set("linux.resources.pids", {"limit": "max"}),
        'linux.resources.pids.limit: expected an integer, got "max"',
    ),
    (
        _set("linux.resources.blockIO", {"weight": 70000}),
        "linux.resources.blockIO.weight: 70000 is out of range (0..65535)",
    ),
    (
        _set("linux.resources.blockIO", {"weightDevice": [{"major": 8}]}),
        "linux.resources.blockIO.weightDevice[0].minor: required",
    ),
    (
        _set("linux.resources.blockIO", {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}),
        "linux.resources.blockIO.throttleReadBpsDevice[0].rate: required",
    ),
    (
        _set("linux.resources.hugepageLimits", [{"limit": 1}]),
        "linux.resources.hugepageLimits[0].pageSize: required",
    ),
    (
        _set("linux.resources.network", {"priorities": [{"name": "eth0", "priority": "1"}]}),
        'linux.resources.network.priorities[0].priority: expected an integer, got "1"',
    ),
    (
        _set("linux.resources.unified", {"memory.max": 5}),
        'linux.resources.unified["memory.max"]: expected a string, got 5',
    ),
    (_set("linux.seccomp", {"syscalls": []}), "linux.seccomp.defaultAction: required"),
    (
        _set("linux.seccomp", {"defaultAction": "SCMP_ACT_DENY"}),
        'linux.seccomp.defaultAction: unknown seccomp action "SCMP_ACT_DENY" ' + ACTIONS,
    ),
    (
        _set(
            "linux.seccomp",
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "ALLOW"}]},
        ),
        'linux.seccomp.syscalls[0].action: unknown seccomp action "ALLOW" ' + ACTIONS,
    ),
    (
        _set(
            "linux.seccomp",
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["x"], "action": "SCMP_ACT_ERRNO"},
                    {
                        "names": ["y"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_IN"}],
                    },
                ],
            },
        ),
        'linux.seccomp.syscalls[1].args[0].op: unknown seccomp operator "SCMP_CMP_IN" '
        "(expected one of SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, "
        "SCMP_CMP_MASKED_EQ)",
    ),
    (
        _set(
            "linux.seccomp",
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["x"],
                        "action": "SCMP_ACT_LOG",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
        ),
        "linux.seccomp.syscalls[0].args[0].index: 6 is out of range (0..5)",
    ),
    (
        _set(
            "linux.seccomp",
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_LOG"}]},
        ),
        "linux.seccomp.syscalls[0].names: must have at least one entry",
    ),
    (
        _set("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]}),
        'linux.seccomp.architectures[0]: unknown seccomp architecture "x86_64"',
    ),
    (
        _set(
            "linux.seccomp",
            {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]},
        ),
        'linux.seccomp.flags[0]: unknown seccomp flag "SECCOMP_FILTER_FLAG_NEW_LISTENER" (expected one of '
        "SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, "
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_error_names_source_and_json_path(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    doc = copy.deepcopy(RUNC_SPEC)
    mutate(doc)
    with pytest.raises(ConfigError) as info:
        parse(doc)
    assert str(info.value) == f"config.json: {message}"


def test_every_seccomp_action_and_op_is_accepted() -> None:
    syscalls = [
        {"names": ["x"], "action": action, "args": [{"index": 1, "value": 0, "op": op}]}
        for action in SECCOMP_ACTIONS
        for op in SECCOMP_OPS
    ]
    doc = {
        "ociVersion": "1.2.0",
        "linux": {"seccomp": {"defaultAction": "SCMP_ACT_KILL", "syscalls": syscalls}},
    }
    seccomp = parse(doc).linux.seccomp  # type: ignore[union-attr]
    assert seccomp is not None and len(seccomp.syscalls) == 9 * 7


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0+dev", "1.2.0", "1.3.0"])
def test_ociversion_1x_accepted(version: str) -> None:
    assert parse({"ociVersion": version}).oci_version == version


def test_parse_rejects_a_non_object() -> None:
    with pytest.raises(ConfigError, match=r"^config\.json: expected a JSON object, got an array$"):
        parse([])  # type: ignore[arg-type]


def test_load_reads_bundle_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(FULL_SPEC, indent=2))
    spec = load(str(tmp_path))
    assert spec.source == str(tmp_path / "config.json")
    assert spec.raw == FULL_SPEC


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/config\.json: no such file$"):
        load(str(tmp_path))


def test_load_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{\n  "ociVersion": "1.2.0",\n  "hostname": "x"\n  "root": {}\n}\n')
    with pytest.raises(ConfigError) as info:
        load(str(tmp_path))
    assert (
        str(info.value) == f"{tmp_path}/config.json: line 4 column 3: invalid JSON: Expecting ',' delimiter"
    )


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"ociVersion": "1.2.0", "process": {"args": ["sh"], "cwd": "/"}}')
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/config\.json: process\.user: required$"):
        load(str(tmp_path))


def test_load_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b'{"hostname": "\xff"}')
    with pytest.raises(ConfigError, match="invalid JSON: not UTF-8"):
        load(str(tmp_path))


def test_load_unreadable_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    with pytest.raises(ConfigError, match="config.json: cannot read: Is a directory"):
        load(str(tmp_path))


def test_process_file_for_exec(tmp_path: Path) -> None:
    doc = copy.deepcopy(FULL_SPEC["process"])
    path = tmp_path / "process.json"
    path.write_text(json.dumps(doc))
    process = load_process(str(path))
    assert process.args == ["/bin/sh", "-c", "true"] and process.cwd == "/work"
    del doc["cwd"]
    with pytest.raises(ConfigError, match=r"^process\.json: cwd: required$"):
        parse_process(doc)


def test_import_stays_light() -> None:
    """The hot path imports json and dataclasses, not typing (nor anything heavier)."""
    code = "import sys, hutch.oci.config, hutch.oci.state; print(' '.join(sorted(sys.modules)))"
    src = str(Path(config.__file__).parents[2])
    out = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, {src!r}); {code}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert "hutch.oci.config" in out
    assert not {"typing", "pydantic", "pathlib", "subprocess", "asyncio"} & set(out)
