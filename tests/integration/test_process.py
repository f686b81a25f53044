"""process: rlimits, oomScoreAdj, the five capability sets, noNewPrivileges, user (uid, gid, umask,
additionalGids), cwd, env and PATH lookup, linux.personality, ioPriority, scheduler.

Read back from /proc/self/{status,limits,stat,personality,oom_score_adj} in the container, or from the host.
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import RW_ROOT, run_ok, sh, status_field

from hutch.oci.config import CAPABILITIES


def _mask(names: list[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITIES[name]
    return mask


def _caps(status: str) -> dict[str, int]:
    return {
        name: int(status_field(status, name), 16)
        for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
    }


def _limits(text: str) -> dict[str, tuple[str, str]]:
    """/proc/PID/limits as {"Max open files": (soft, hard)}."""
    out = {}
    for line in text.splitlines()[1:]:
        name = line[:26].strip()
        soft, hard = line[26:].split()[:2]
        out[name] = (soft, hard)
    return out


# --- rlimits ---


def test_rlimits(bundle: Any, runtime: Any) -> None:
    rlimits = [
        {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 1048576},
        {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608},
        {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192},
        {"type": "RLIMIT_NICE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_CPU", "soft": 100, "hard": 200},
        {"type": "RLIMIT_FSIZE", "soft": 18446744073709551615, "hard": 18446744073709551615},
    ]
    out = run_ok(runtime, sh(bundle, "cat /proc/self/limits; echo; ulimit -n", rlimits=rlimits))
    text, _, ulimit = out.rpartition("\n\n")
    limits = _limits(text)
    assert limits["Max open files"] == ("1000", "2000")
    assert limits["Max processes"] == ("300", "400")
    assert limits["Max core file size"] == ("0", "1048576")
    assert limits["Max stack size"] == ("4194304", "8388608")
    assert limits["Max msgqueue size"] == ("4096", "8192")
    assert limits["Max nice priority"] == ("0", "0")
    assert limits["Max cpu time"] == ("100", "200")
    assert limits["Max file size"] == ("unlimited", "unlimited")
    assert ulimit.strip() == "1000"


def test_rlimit_nofile_is_enforced(bundle: Any, runtime: Any) -> None:
    b = sh(
        bundle,
        "exec 9</dev/null && echo fd9-ok; exec 12</dev/null",
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10}],
    )
    result = runtime.run("run", "--bundle", b, "c1", check=False)
    assert "fd9-ok" in result.stdout
    assert result.returncode != 0  # fd 12 is beyond the limit


def test_rlimit_up_to_the_hosts_hard_limit(bundle: Any, runtime: Any) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    b = sh(bundle, "ulimit -Hn", rlimits=[{"type": "RLIMIT_NOFILE", "soft": hard, "hard": hard}])
    assert run_ok(runtime, b).strip() == str(hard)


# --- oomScoreAdj ---


@pytest.mark.parametrize("value", [500, 1000, 0])
def test_oom_score_adj(bundle: Any, runtime: Any, value: int) -> None:
    assert run_ok(runtime, sh(bundle, "cat /proc/self/oom_score_adj", oomScoreAdj=value)).strip() == str(
        value
    )


def test_oom_score_adj_is_set_before_start(bundle: Any, runtime: Any) -> None:
    runtime.run("create", "--bundle", bundle(["true"], oomScoreAdj=321), "c1")
    pid = runtime.state("c1")["pid"]
    assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == "321"


def test_negative_oom_score_adj_without_cap_sys_resource_fails_clearly(bundle: Any, runtime: Any) -> None:
    # lowering the score needs CAP_SYS_RESOURCE, which this host's runtime does not have in its bounding set
    own = int(status_field(Path("/proc/self/status").read_text(), "CapBnd"), 16)
    if own & (1 << CAPABILITIES["CAP_SYS_RESOURCE"]):
        b = sh(bundle, "cat /proc/self/oom_score_adj", oomScoreAdj=-500)
        assert run_ok(runtime, b).strip() == "-500"
        return
    result = runtime.run("run", "--bundle", bundle(["true"], oomScoreAdj=-500), "c1", check=False)
    assert result.returncode != 0
    assert "oomScoreAdj" in result.stderr
    assert not (runtime.root / "c1").exists()


def test_oom_score_adj_unset_inherits(bundle: Any, runtime: Any) -> None:
    own = Path("/proc/self/oom_score_adj").read_text().strip()
    assert run_ok(runtime, sh(bundle, "cat /proc/self/oom_score_adj")).strip() == own


# --- capabilities ---


CAP_SETS = {
    "bounding": [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
        "CAP_SYS_TIME",
        "CAP_NET_RAW",
    ],
    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
    "effective": ["CAP_CHOWN", "CAP_KILL"],
    "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
    "ambient": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
}


def test_capabilities_of_a_non_root_user(bundle: Any, runtime: Any) -> None:
    # For a non-root user, exec of a plain file keeps the bounding and inheritable sets, and the ambient set
    # becomes permitted and effective: every set of the spec shows.
    b = sh(bundle, "cat /proc/self/status", capabilities=CAP_SETS, user={"uid": 1000, "gid": 1000})
    caps = _caps(run_ok(runtime, b))
    assert caps["CapBnd"] == _mask(CAP_SETS["bounding"])
    assert caps["CapInh"] == _mask(CAP_SETS["inheritable"])
    assert caps["CapAmb"] == _mask(CAP_SETS["ambient"])
    assert caps["CapPrm"] == _mask(CAP_SETS["ambient"])
    assert caps["CapEff"] == _mask(CAP_SETS["ambient"])


@pytest.mark.parametrize("no_new_privs", [True, False])
def test_capabilities_of_root(bundle: Any, runtime: Any, no_new_privs: bool) -> None:
    # root's exec gains its bounding set (a root process is treated as running a file with every
    # capability), unless no_new_privs keeps it to what it held: the spec's permitted set
    b = sh(bundle, "cat /proc/self/status", capabilities=CAP_SETS, noNewPrivileges=no_new_privs)
    caps = _caps(run_ok(runtime, b))
    gained = _mask(CAP_SETS["permitted"] if no_new_privs else CAP_SETS["bounding"])
    assert caps["CapBnd"] == _mask(CAP_SETS["bounding"])
    assert caps["CapInh"] == _mask(CAP_SETS["inheritable"])
    assert caps["CapAmb"] == _mask(CAP_SETS["ambient"])
    assert caps["CapPrm"] == gained
    assert caps["CapEff"] == gained


def test_capabilities_before_exec(bundle: Any, runtime: Any) -> None:
    # the created container's init holds exactly the spec's sets until it execs
    runtime.run("create", "--bundle", bundle(["true"], capabilities=CAP_SETS), "c1")
    caps = _caps(Path(f"/proc/{runtime.state('c1')['pid']}/status").read_text())
    for key, name in (
        ("bounding", "CapBnd"),
        ("permitted", "CapPrm"),
        ("effective", "CapEff"),
        ("inheritable", "CapInh"),
    ):
        assert caps[name] == _mask(CAP_SETS[key]), name
    assert caps["CapAmb"] == _mask(CAP_SETS["ambient"])


def test_no_capabilities(bundle: Any, runtime: Any) -> None:
    b = sh(bundle, "cat /proc/self/status; kill -0 1 && echo can-signal", capabilities={})
    caps = _caps(run_ok(runtime, b))
    assert caps == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}


def test_capability_is_effective(bundle: Any, runtime: Any) -> None:
    # CAP_CHOWN lets root chown; without it, chown fails
    with_chown = {k: ["CAP_CHOWN"] for k in ("bounding", "effective", "permitted")}
    script = "touch /tmp/f && chown 1000 /tmp/f && echo chowned"
    assert run_ok(runtime, sh(bundle, script, root=RW_ROOT, capabilities=with_chown)) == "chowned\n"
    result = runtime.run(
        "run", "--bundle", sh(bundle, script, root=RW_ROOT, capabilities={}), "c2", check=False
    )
    assert result.returncode != 0
    assert "Operation not permitted" in result.stderr


# --- noNewPrivileges ---


@pytest.mark.parametrize("value", [True, False])
def test_no_new_privileges(bundle: Any, runtime: Any, value: bool) -> None:
    out = run_ok(runtime, sh(bundle, "cat /proc/self/status", noNewPrivileges=value))
    assert status_field(out, "NoNewPrivs") == ("1" if value else "0")


# --- user ---


def test_user_uid_gid_and_additional_gids(bundle: Any, runtime: Any) -> None:
    user = {"uid": 1000, "gid": 1001, "additionalGids": [5, 65534, 4242]}
    out = run_ok(runtime, sh(bundle, "cat /proc/self/status; id -u; id -g", user=user))
    assert status_field(out, "Uid").split() == ["1000"] * 4
    assert status_field(out, "Gid").split() == ["1001"] * 4
    assert sorted(int(g) for g in status_field(out, "Groups").split()) == [5, 4242, 65534]
    assert out.split()[-2:] == ["1000", "1001"]


def test_user_without_additional_gids_has_no_groups(bundle: Any, runtime: Any) -> None:
    out = run_ok(runtime, sh(bundle, "cat /proc/self/status", user={"uid": 0, "gid": 0}))
    assert status_field(out, "Groups") == ""


def test_umask(bundle: Any, runtime: Any) -> None:
    b = sh(
        bundle,
        "umask; touch /tmp/f; mkdir /tmp/d; stat -c %a /tmp/f /tmp/d",
        root=RW_ROOT,
        user={"uid": 0, "gid": 0, "umask": 0o027},
    )
    assert run_ok(runtime, b).split() == ["0027", "640", "750"]


def test_default_umask(bundle: Any, runtime: Any) -> None:
    assert run_ok(runtime, sh(bundle, "umask")).strip() == "0022"


def test_user_file_access_is_the_users(bundle: Any, runtime: Any) -> None:
    b = sh(bundle, "cat /root/secret 2>&1; echo rc=$?", user={"uid": 1000, "gid": 1000})
    (b / "rootfs" / "root" / "secret").write_text("secret\n")
    out = run_ok(runtime, b)
    assert "Permission denied" in out
    assert "secret\n" not in out


# --- cwd ---


def test_cwd(bundle: Any, runtime: Any) -> None:
    assert run_ok(runtime, sh(bundle, "pwd", cwd="/etc")).strip() == "/etc"


def test_cwd_is_created_when_missing(bundle: Any, runtime: Any) -> None:
    b = sh(bundle, "pwd", cwd="/work/dir", root=RW_ROOT)
    assert run_ok(runtime, b).strip() == "/work/dir"
    assert (b / "rootfs" / "work" / "dir").is_dir()


def test_cwd_of_a_non_root_user(bundle: Any, runtime: Any) -> None:
    b = sh(
        bundle,
        "pwd; touch here && echo wrote",
        cwd="/home/user",
        user={"uid": 1000, "gid": 1000},
        root=RW_ROOT,
    )
    assert run_ok(runtime, b).split() == ["/home/user", "wrote"]


# --- env and PATH ---


def test_env(bundle: Any, runtime: Any) -> None:
    env = ["PATH=/bin", "FOO=bar baz", "EMPTY=", "WITH_EQUALS=a=b"]
    out = run_ok(runtime, sh(bundle, "env", env=env))
    lines = set(out.splitlines())
    assert {"PATH=/bin", "FOO=bar baz", "EMPTY=", "WITH_EQUALS=a=b"} <= lines
    # nothing of the runtime's own environment leaks in
    assert not any(line.startswith(("PYTEST_", "VIRTUAL_ENV=", "PWD=/work")) for line in lines), lines


def test_executable_found_in_the_containers_path(bundle: Any, runtime: Any) -> None:
    b = bundle(["mytool"], env=["PATH=/opt/tools:/bin"])
    tool = b / "rootfs" / "opt" / "tools" / "mytool"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\necho found in /opt/tools\n")
    tool.chmod(0o755)
    assert run_ok(runtime, b) == "found in /opt/tools\n"


def test_absolute_args0(bundle: Any, runtime: Any) -> None:
    assert run_ok(runtime, bundle(["/bin/echo", "absolute"])) == "absolute\n"


def test_args_are_passed_verbatim(bundle: Any, runtime: Any) -> None:
    args = ["printf", "%s|", "a b", "", "$HOME", "'q'", "\\n"]
    assert run_ok(runtime, bundle(args)) == "a b||$HOME|'q'|\\n|"


# --- personality, I/O priority, scheduler ---


def test_personality_linux32(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["personality"] = {"domain": "LINUX32"}

    out = run_ok(runtime, sh(bundle, "cat /proc/self/personality; uname -m", edit=edit))
    personality, machine = out.split()
    assert int(personality, 16) & 0xFF == 0x08
    if os.uname().machine == "x86_64":
        assert machine == "i686"


def test_personality_linux32_with_seccomp_and_no_new_privileges(bundle: Any, runtime: Any) -> None:
    # After personality(LINUX32) uname says i686, but the process is still a 64-bit one: the syscalls the
    # runtime makes next (seccomp among them) keep the host's numbers.
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["personality"] = {"domain": "LINUX32"}
        spec["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}
        spec["process"]["noNewPrivileges"] = True

    out = run_ok(runtime, sh(bundle, "grep Seccomp: /proc/self/status; uname -m", edit=edit))
    assert out.split()[:2] == ["Seccomp:", "2"]


def test_personality_linux(bundle: Any, runtime: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["personality"] = {"domain": "LINUX"}

    out = run_ok(runtime, sh(bundle, "cat /proc/self/personality; uname -m", edit=edit))
    assert int(out.split()[0], 16) == 0
    assert out.split()[1] == os.uname().machine


_IOPRIO_GET = {"x86_64": 252, "aarch64": 31}


def _ioprio(pid: int) -> tuple[int, int]:
    libc = ctypes.CDLL(None, use_errno=True)
    value = libc.syscall(_IOPRIO_GET[os.uname().machine], 1, pid)  # IOPRIO_WHO_PROCESS
    assert value >= 0, os.strerror(ctypes.get_errno())
    return value >> 13, value & 0x1FFF


@pytest.mark.parametrize(
    ("cls", "priority", "number"),
    [("IOPRIO_CLASS_IDLE", 0, 3), ("IOPRIO_CLASS_BE", 6, 2), ("IOPRIO_CLASS_RT", 1, 1)],
)
def test_io_priority(bundle: Any, runtime: Any, cls: str, priority: int, number: int) -> None:
    b = bundle(["sleep", "30"], ioPriority={"class": cls, "priority": priority})
    runtime.run("run", "--detach", "--bundle", b, "c1")
    pid = runtime.state("c1")["pid"]
    expected = (number, 0 if number == 3 else priority)
    assert _ioprio(pid) == expected
    out = runtime.run("exec", "c1", "ionice", "-p", "1").stdout  # busybox prints "class: prio N"
    assert out.split(":")[0].strip() in ("idle", "best-effort", "realtime")


def _sched(stat_text: str) -> tuple[int, int, int]:
    """(nice, rt priority, policy) from a /proc/PID/stat line."""
    fields = stat_text[stat_text.rindex(")") + 2 :].split()
    return int(fields[16]), int(fields[37]), int(fields[38])


@pytest.mark.parametrize(
    ("scheduler", "expected"),
    [
        ({"policy": "SCHED_BATCH", "nice": 7}, (7, 0, 3)),
        ({"policy": "SCHED_IDLE"}, (0, 0, 5)),
        ({"policy": "SCHED_OTHER", "nice": -3}, (-3, 0, 0)),
    ],
)
def test_scheduler(
    bundle: Any, runtime: Any, scheduler: dict[str, Any], expected: tuple[int, int, int]
) -> None:
    out = run_ok(runtime, sh(bundle, "cat /proc/self/stat", scheduler=scheduler))
    assert _sched(out) == expected


def test_scheduler_reset_on_fork_flag(bundle: Any, runtime: Any) -> None:
    scheduler = {"policy": "SCHED_OTHER", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    # the shell itself runs as asked; the shell it forks is back to nice 0 (a negative nice is reset)
    out = run_ok(
        runtime, sh(bundle, "cat /proc/$$/stat; sh -c 'cat /proc/$$/stat'; true", scheduler=scheduler)
    )
    shell, child = out.splitlines()
    assert _sched(shell) == (-5, 0, 0)
    assert _sched(child) == (0, 0, 0)


def test_init_runs_on_the_cpus_runc_gives_it(runtime: Any, runc: Any, bundle: Any) -> None:
    """create sends init to another CPU than its own while both work (prespawn.apart), and gives it the
    runtime's CPUs back before the cgroup move: the container sees the CPUs it sees under runc."""
    b = sh(bundle, "grep Cpus_allowed_list /proc/self/status")
    assert run_ok(runtime, b, "cpus-h") == run_ok(runc, b, "cpus-r")


def test_apart_and_restore_move_a_child_off_our_cpu_and_back() -> None:
    from hutch.runtime import launch, prespawn

    cpus = os.sched_getaffinity(0)
    if len(cpus) < 2:
        pytest.skip("one CPU: create leaves init on it")
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    try:
        prespawn.apart(pid, cpus)
        apart = os.sched_getaffinity(pid)
        assert apart and apart < cpus  # some other CPU of ours, not the one we ran on
        launch._restore_cpus(pid, cpus)
        assert os.sched_getaffinity(pid) == cpus
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
