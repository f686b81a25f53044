"""Parsing of the run/create flags: -v/--mount/--tmpfs specs, sizes and resources, --ulimit, capabilities,
--security-opt and --sysctl; each bad value is a ConfigError naming the flag."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from hutch.engine import mountflags, mounts, security
from hutch.engine.devices import device
from hutch.engine.resources import ResourceFlags, parse_bytes, resources, shm_size
from hutch.engine.spec import DEFAULT_CAPS
from hutch.engine.ulimits import ulimit
from hutch.errors import ConfigError


def test_volume_specs() -> None:
    bind = mountflags.parse_volume("/src:/dst:ro,rslave,noexec,Z")
    assert (bind.type, bind.source, bind.destination) == ("bind", "/src", "/dst")
    assert bind.options == ["ro", "rslave", "noexec"] and not bind.chown
    named = mountflags.parse_volume("data:/d:U")
    assert (named.type, named.source, named.chown) == ("volume", "data", True)
    anon = mountflags.parse_volume("/only")
    assert (anon.type, anon.source, anon.destination) == ("volume", "", "/only")
    assert mountflags.parse_volume("/only:ro").options == ["ro"]
    assert mountflags.parse_volume("./rel:/d").source.startswith("/")
    for bad in ("", "/a:/b:c:d", "/a:rel", "/a:/b:bogus", "/a:/b:ro,rw", "bad name:/d", ":/d"):
        with pytest.raises(ConfigError, match="--volume"):
            mountflags.parse_volume(bad)


def test_mount_specs() -> None:
    m = mountflags.parse_mount("type=bind,src=/s,dst=/d,ro,bind-propagation=shared")
    assert (m.type, m.source, m.destination, m.options) == ("bind", "/s", "/d", ["rbind", "ro", "shared"])
    m = mountflags.parse_mount("type=volume,source=v,target=/d,readonly=false")
    assert (m.type, m.source, m.options) == ("volume", "v", [])
    m = mountflags.parse_mount("type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1777")
    assert m.type == "tmpfs" and "size=1048576" in m.options and "mode=1777" in m.options
    assert {"noexec", "nosuid", "nodev"} <= set(m.options)
    for bad in (
        "type=nfs,target=/d", "type=bind,target=/d", "type=tmpfs", "type=bind,src=/s,dst=rel",
        "type=bind,src=/s,dst=/d,color=red", "type=bind,src=/s,dst=/d,bind-propagation=sideways",
        "type=tmpfs,dst=/d,tmpfs-mode=abc", "type=tmpfs,dst=/d,tmpfs-size=huge", "type=bind,src=/s,dst=/d,ro=maybe",
    ):  # fmt: skip
        with pytest.raises(ConfigError, match="--mount"):
            mountflags.parse_mount(bad)


def test_tmpfs_specs() -> None:
    t = mountflags.parse_tmpfs("/t:size=64m,exec,mode=1777")
    assert t.destination == "/t" and "noexec" not in t.options and "size=64m" in t.options
    assert mountflags.parse_tmpfs("/t").options == ["rw", "noexec", "nosuid", "nodev", "tmpcopyup"]
    for bad in ("t", "/t:nonsense"):
        with pytest.raises(ConfigError, match="--tmpfs"):
            mountflags.parse_tmpfs(bad)
    with pytest.raises(ConfigError, match="duplicate mount destination /d"):
        mounts.check_unique([mountflags.parse_tmpfs("/d"), mountflags.parse_volume("/x:/d")])


def test_sizes_and_resources() -> None:
    assert parse_bytes("512", "--memory") == 512
    assert parse_bytes("1.5g", "--memory") == 3 << 29
    assert parse_bytes("64MiB", "--memory") == 64 << 20
    for bad in ("10x", "", "m", "1.2.3k"):
        with pytest.raises(ConfigError, match="--memory"):
            parse_bytes(bad, "--memory")
    doc = resources(ResourceFlags(memory="64m", cpus="1.5", cpu_shares="512", cpuset_cpus="0-1"))
    assert doc["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert doc["cpu"] == {"period": 100000, "quota": 150000, "shares": 512, "cpus": "0-1"}
    assert "pids" not in doc  # the default limit is the engine's (Options), not the flags'
    assert "pids" not in resources(ResourceFlags(pids_limit="0"))
    assert resources(ResourceFlags(pids_limit="-1"), create=False) == {"pids": {"limit": -1}}
    assert resources(ResourceFlags(memory="64m", memory_swap="-1"))["memory"]["swap"] == -1
    assert resources(ResourceFlags(), create=False) == {}
    bad = [
        (ResourceFlags(memory="1k"), "--memory"), (ResourceFlags(memory_swap="1g"), "--memory-swap"),
        (ResourceFlags(memory="1g", memory_swap="512m"), "--memory-swap"), (ResourceFlags(cpus="0"), "--cpus"),
        (ResourceFlags(cpus="1", cpu_period="1000"), "--cpus"), (ResourceFlags(cpu_shares="x"), "--cpu-shares"),
        (ResourceFlags(cpuset_mems="a"), "--cpuset-mems"), (ResourceFlags(pids_limit="-5"), "--pids-limit"),
    ]  # fmt: skip
    for flags, flag in bad:
        with pytest.raises(ConfigError, match=flag):
            resources(flags)
    assert shm_size("10m") == "size=10240k"


def test_ulimits() -> None:
    assert ulimit("nofile=100:200") == {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}
    assert ulimit("core=-1") == {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY:
        with pytest.raises(ConfigError, match="above the host's"):
            ulimit(f"nofile={hard + 1}")
    for bad in ("nofile", "bogus=1", "nofile=a", "nofile=20:10", "nofile=-3"):
        with pytest.raises(ConfigError, match="--ulimit"):
            ulimit(bad)


def test_capabilities() -> None:
    assert security.cap_name("sys_admin", "--cap-add") == "CAP_SYS_ADMIN"
    assert security.cap_name("CAP_KILL", "--cap-add") == "CAP_KILL"
    with pytest.raises(ConfigError, match="--cap-drop 'CAP_NOPE': unknown capability"):
        security.cap_name("CAP_NOPE", "--cap-drop")
    caps = security.capabilities(DEFAULT_CAPS, ["NET_ADMIN"], ["chown"], False)
    assert "CAP_NET_ADMIN" in caps and "CAP_CHOWN" not in caps and "CAP_KILL" in caps
    assert security.capabilities(DEFAULT_CAPS, ["kill"], ["ALL"], False) == ["CAP_KILL"]
    everything = security.capabilities(DEFAULT_CAPS, ["ALL"], ["CAP_SYS_ADMIN"], False)
    assert "CAP_SYS_ADMIN" not in everything and "CAP_NET_ADMIN" in everything
    assert "CAP_SYS_ADMIN" in security.capabilities(DEFAULT_CAPS, [], [], True)


def test_security_opts_and_sysctls() -> None:
    sec = security.security_opts(
        ["no-new-privileges", "seccomp=unconfined", "mask=/a:/b", "unmask=/proc/keys", "label=disable"]
    )
    assert (sec.no_new_privileges, sec.seccomp, sec.mask, sec.unmask) == (
        True,
        "unconfined",
        ["/a", "/b"],
        ["/proc/keys"],
    )
    assert security.masked_paths(("/proc/keys", "/proc/kcore"), sec, False) == ["/proc/kcore", "/a", "/b"]
    assert security.masked_paths(("/proc/keys",), security.security_opts(["unmask=ALL"]), False) == []
    for bad in ("bogus", "mask=rel", "seccomp=", "no-new-privileges=maybe"):
        with pytest.raises(ConfigError, match="--security-opt"):
            security.security_opts([bad])
    assert security.sysctls(["net.ipv4.ip_forward=1", "kernel.shmmax=1", "fs.mqueue.msg_max=9"], "private", "private") == {
        "net.ipv4.ip_forward": "1", "kernel.shmmax": "1", "fs.mqueue.msg_max": "9",
    }  # fmt: skip
    for bad, net, ipc in (("vm.swappiness=1", "private", "private"), ("net.x=1", "host", "private"),
                          ("kernel.sem=1", "private", "host"), ("noequals", "private", "private")):  # fmt: skip
        with pytest.raises(ConfigError, match="--sysctl"):
            security.sysctls([bad], net, ipc)


def test_device_specs(tmp_path: Path) -> None:
    devices, rules = device("/dev/null:/dev/n:rw")
    assert devices[0]["path"] == "/dev/n" and (devices[0]["major"], devices[0]["minor"]) == (1, 3)
    assert rules == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    assert device("/dev/null")[0][0]["path"] == "/dev/null"
    (tmp_path / "f").write_text("")
    for bad in ("/dev/no-such", str(tmp_path / "f"), "rel", "/dev/null:rel"):
        with pytest.raises(ConfigError, match="--device"):
            device(bad)
