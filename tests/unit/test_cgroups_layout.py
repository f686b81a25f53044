"""The cgroup layout of a host, read from mountinfo and /proc/self/cgroup: v1, v2 and hybrid."""

from __future__ import annotations

import pytest

from hutch.errors import ConfigError
from hutch.runtime.cgroups import layout

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = """\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
"""

V1_MOUNTINFO = """\
25 20 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:14 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:15 - cgroup cgroup rw,net_cls,net_prio
32 25 0:29 / /sys/fs/cgroup/hugetlb rw,nosuid shared:16 - cgroup cgroup rw,hugetlb
"""
V1_CGROUP = """\
6:hugetlb:/
5:net_cls,net_prio:/
4:memory:/user.slice
3:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/session-1.scope
"""

V2_MOUNTINFO = """\
22 21 0:20 / /sys rw - sysfs sysfs rw
26 22 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""
V2_CGROUP = "0::/user.slice/user-0.slice/session-3.scope\n"


def test_hybrid() -> None:
    lay = layout.parse(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    assert lay.mode == "hybrid"
    assert lay.v2 is not None and lay.v2.mountpoint == "/sys/fs/cgroup/unified"
    assert lay.where("memory") == "v1"
    assert lay.where("devices") == "v1"
    assert lay.v1["memory"].own_dir() == "/sys/fs/cgroup/memory/process_api/abc"
    assert {h.controllers for h in lay.hierarchies()} >= {("cpu",), ("memory",), ("name=systemd",)}


def test_hybrid_hugetlb_is_found_in_v2() -> None:
    lay = layout.parse(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    lay._v2_controllers = frozenset({"hugetlb"})  # what the unified root's cgroup.controllers lists
    assert lay.where("hugetlb") == "v2"
    assert lay.where("net_cls") is None
    assert lay.where("freezer") == "v1"


def test_v1_with_comounted_controllers() -> None:
    lay = layout.parse(V1_MOUNTINFO, V1_CGROUP)
    assert lay.mode == "v1"
    assert lay.v2 is None
    assert lay.v1["cpu"] is lay.v1["cpuacct"]
    assert lay.v1["cpu"].mountpoint == "/sys/fs/cgroup/cpu,cpuacct"
    assert lay.v1["net_prio"].controllers == ("net_cls", "net_prio")
    assert lay.where("devices") is None  # not mounted, and no v2 to fall back on
    assert lay.where("hugetlb") == "v1"
    assert len(lay.hierarchies()) == 5


def test_v2() -> None:
    lay = layout.parse(V2_MOUNTINFO, V2_CGROUP)
    lay._v2_controllers = frozenset({"cpu", "memory", "pids", "io"})
    assert lay.mode == "v2"
    assert lay.where("blkio") == "v2"  # io
    assert lay.where("devices") == "v2"  # the BPF program
    assert lay.where("freezer") == "v2"  # cgroup.freeze
    assert lay.where("hugetlb") is None
    assert lay.hierarchies() == []


def test_no_cgroups() -> None:
    assert layout.parse("22 21 0:20 / /sys rw - sysfs sysfs rw\n", "").mode == "none"


def test_escaped_mountpoint() -> None:
    info = "41 31 0:38 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\n"
    lay = layout.parse(info, "0::/\n")
    assert lay.v2 is not None and lay.v2.mountpoint == "/mnt/my cgroup"


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("", ""),
        ("/a/b", "/a/b"),
        ("/a/../b/", "/b"),
        ("a/b", "a/b"),
        ("../../a", "a"),
        ("a/../../../b", "b"),
        ("//x", "/x"),
    ],
)
def test_clean(raw: str, cleaned: str) -> None:
    assert layout.clean(raw) == cleaned


def test_absolute_path_is_under_each_mount() -> None:
    lay = layout.parse(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    assert layout.cgroup_dir(lay.v1["memory"], "/libpod_parent/libpod-x", v2=False) == (
        "/sys/fs/cgroup/memory/libpod_parent/libpod-x"
    )
    assert lay.v2 is not None
    assert layout.cgroup_dir(lay.v2, "/default/c1", v2=True) == "/sys/fs/cgroup/unified/default/c1"


def test_relative_path_is_under_our_cgroup_on_v1_and_its_parent_on_v2() -> None:
    lay = layout.parse(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    assert (
        layout.cgroup_dir(lay.v1["memory"], "hutch/c1", v2=False)
        == "/sys/fs/cgroup/memory/process_api/abc/hutch/c1"
    )
    assert layout.cgroup_dir(lay.v1["pids"], "hutch/c1", v2=False) == "/sys/fs/cgroup/pids/hutch/c1"
    v2 = layout.parse(V2_MOUNTINFO, V2_CGROUP).v2
    assert v2 is not None
    assert layout.cgroup_dir(v2, "c1", v2=True) == "/sys/fs/cgroup/user.slice/user-0.slice/c1"


def test_mount_root_is_taken_off_our_path() -> None:
    # Inside a container: the hierarchy is mounted from /kubepods/pod1, and /proc/self/cgroup says so.
    info = "41 31 0:38 /kubepods/pod1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    lay = layout.parse(info, "4:memory:/kubepods/pod1/ctr\n")
    assert lay.v1["memory"].own_dir() == "/sys/fs/cgroup/memory/ctr"
    assert layout.cgroup_dir(lay.v1["memory"], "sub", v2=False) == "/sys/fs/cgroup/memory/ctr/sub"


def test_the_root_cgroup_is_refused() -> None:
    lay = layout.parse(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    with pytest.raises(ConfigError, match="cgroupsPath"):
        layout.cgroup_dir(lay.v1["pids"], "/", v2=False)
