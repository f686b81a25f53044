"""linux.seccomp, observed from inside the container: errnos, signals, argument conditions, the audit log, a
NOTIFY agent answering syscalls, and exec getting the same filter.

Most tests run `sh -c SCRIPT` in a busybox container whose filter targets one syscall the shell makes on request
(`mkdir`, `chmod`, `kill`, `umask`), with the default action ALLOW, so that everything else works. Busybox is
static and makes the syscalls named here (mkdir(2), chmod(2), ...), not their *at variants.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import RW_ROOT, sh, status_field, traversable, userns

from hutch.linux import libseccomp
from hutch.linux import seccomp as kernel

SIGSYS_EXIT = 128 + signal.SIGSYS  # 159: how `run` reports a container killed by SIGSYS

ENOSYS_MSG = "Function not implemented"
EPERM_MSG = "Operation not permitted"
EACCES_MSG = "Permission denied"

# What busybox sh needs to start, run applets and exit, on x86_64 and aarch64 (names the host lacks are
# skipped, as for any profile). An allow-list filter with default ERRNO must let all of these through.
SHELL_SYSCALLS = [
    "access",
    "arch_prctl",
    "brk",
    "clock_gettime",
    "clone",
    "clone3",
    "close",
    "dup",
    "dup2",
    "dup3",
    "execve",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fcntl",
    "fork",
    "fstat",
    "fstatat64",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getrandom",
    "getrlimit",
    "gettid",
    "getuid",
    "ioctl",
    "lseek",
    "lstat",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "newfstatat",
    "open",
    "openat",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "prlimit64",
    "read",
    "readlink",
    "readlinkat",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigsuspend",
    "set_robust_list",
    "set_tid_address",
    "setpgid",
    "stat",
    "statx",
    "sysinfo",
    "uname",
    "vfork",
    "wait4",
    "waitid",
    "write",
    "writev",
    "kill",
    "tgkill",
    "setsid",
    "getsid",
    "sigaltstack",
    "nanosleep",
    "clock_nanosleep",
]


def seccomp(default: str = "SCMP_ACT_ALLOW", *rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {"defaultAction": default, "syscalls": list(rules), **extra}
    return profile


def rule(names: str | list[str], action: str, **extra: Any) -> dict[str, Any]:
    return {"names": [names] if isinstance(names, str) else names, "action": action, **extra}


def arg(index: int, op: str, value: int, value_two: int | None = None) -> dict[str, Any]:
    a: dict[str, Any] = {"index": index, "op": op, "value": value}
    if value_two is not None:
        a["valueTwo"] = value_two
    return a


def with_seccomp(profile: dict[str, Any], nnp: bool = True) -> Any:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"]["seccomp"] = profile
        spec["process"]["noNewPrivileges"] = nnp

    return edit


def run(runtime: Any, bundle: Path, cid: str = "c1") -> Any:
    return runtime.run("run", "--bundle", bundle, cid, check=False)


# --- errno, the default action, and exec ---------------------------------------------------------------


@pytest.mark.parametrize("nnp", [True, False], ids=["no_new_privs", "privileged"])
def test_denied_syscall_returns_the_errno_asked_for(bundle, runtime, nnp: bool) -> None:
    profile = seccomp("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_ERRNO", errnoRet=38))
    b = sh(
        bundle,
        "mkdir /tmp/d; echo rc=$?; cat /proc/self/status",
        root=RW_ROOT,
        edit=with_seccomp(profile, nnp),
    )
    result = run(runtime, b)
    assert result.returncode == 0, result.stderr
    assert f"can't create directory '/tmp/d': {ENOSYS_MSG}" in result.stdout + result.stderr
    assert "rc=1" in result.stdout
    # One filter, loaded once, with or without no_new_privs (without it, before the capabilities went).
    assert status_field(result.stdout, "Seccomp") == "2"
    assert status_field(result.stdout, "Seccomp_filters") == "1"
    assert status_field(result.stdout, "NoNewPrivs") == ("1" if nnp else "0")


def test_errno_without_errno_ret_is_eperm(bundle, runtime) -> None:
    profile = seccomp("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_ERRNO"))
    b = sh(bundle, "mkdir /tmp/d", root=RW_ROOT, edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 1
    assert EPERM_MSG in result.stderr


def test_default_errno_with_an_allow_list(bundle, runtime) -> None:
    """defaultAction ERRNO (EACCES) and an allow-list the shell lives on: what is not listed is denied."""
    profile = seccomp(
        "SCMP_ACT_ERRNO",
        rule(SHELL_SYSCALLS, "SCMP_ACT_ALLOW"),
        defaultErrnoRet=13,
    )
    b = sh(bundle, "echo alive; mkdir /tmp/d; echo rc=$?", root=RW_ROOT, edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "alive"
    assert "rc=1" in result.stdout
    assert f"can't create directory '/tmp/d': {EACCES_MSG}" in result.stderr


@pytest.mark.parametrize("nnp", [True, False], ids=["no_new_privs", "privileged"])
def test_exec_gets_the_filter(bundle, runtime, nnp: bool) -> None:
    profile = seccomp("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_ERRNO", errnoRet=38))
    b = bundle(["sleep", "30"], root=RW_ROOT, edit=with_seccomp(profile, nnp))
    runtime.run("run", "--detach", "--bundle", b, "c1")
    args = ["exec", "c1", "sh", "-c", "mkdir /tmp/d; echo rc=$?; grep -E '^Seccomp' /proc/self/status"]
    if nnp:
        args.insert(1, "--no-new-privs")
    result = runtime.run(*args, check=False)
    assert result.returncode == 0, result.stderr
    assert ENOSYS_MSG in result.stderr
    assert "rc=1" in result.stdout
    assert status_field(result.stdout, "Seccomp_filters") == "1"


@pytest.mark.parametrize("nnp", [True, False], ids=["no_new_privs", "privileged"])
def test_in_a_user_namespace(bundle, runtime, tmp_path: Path, nnp: bool) -> None:
    """Init is root of its own user namespace only: loading without no_new_privs needs CAP_SYS_ADMIN there."""
    profile = seccomp("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_ERRNO", errnoRet=38))

    def edit(spec: dict[str, Any]) -> None:
        userns(spec)
        with_seccomp(profile, nnp)(spec)

    with traversable(tmp_path):
        b = sh(bundle, "mkdir /tmp/d; grep Seccomp_filters /proc/self/status", edit=edit)
        result = run(runtime, b)
    assert result.returncode == 0, result.stderr
    assert f"can't create directory '/tmp/d': {ENOSYS_MSG}" in result.stderr
    assert status_field(result.stdout, "Seccomp_filters") == "1"


# --- signals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"]
)
def test_killing_actions_end_the_process_by_sigsys(bundle, runtime, action: str) -> None:
    profile = seccomp("SCMP_ACT_ALLOW", rule("mkdir", action))
    b = bundle(["mkdir", "/tmp/d"], root=RW_ROOT, edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == SIGSYS_EXIT, result.stderr
    assert not (b / "rootfs" / "tmp" / "d").exists()


def test_trap_is_a_signal_the_process_can_catch(bundle, runtime) -> None:
    """TRAP sends a catchable SIGSYS (the shell runs its trap and goes on); KILL_PROCESS does not."""
    script = 'trap "echo caught SIGSYS" SYS; umask 077; echo still here'
    trap = bundle(
        ["sh", "-c", script], edit=with_seccomp(seccomp("SCMP_ACT_ALLOW", rule("umask", "SCMP_ACT_TRAP")))
    )
    result = run(runtime, trap, "trap")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["caught SIGSYS", "still here"]
    kill = bundle(
        ["sh", "-c", script],
        edit=with_seccomp(seccomp("SCMP_ACT_ALLOW", rule("umask", "SCMP_ACT_KILL_PROCESS"))),
    )
    result = run(runtime, kill, "kill")
    assert result.returncode == SIGSYS_EXIT
    assert result.stdout == ""


def test_trace_without_a_tracer_is_enosys(bundle, runtime) -> None:
    profile = seccomp("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_TRACE", errnoRet=7))
    b = sh(bundle, "mkdir /tmp/d", root=RW_ROOT, edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 1
    assert ENOSYS_MSG in result.stderr


# --- argument conditions --------------------------------------------------------------------------------


def test_masked_eq_compares_the_masked_argument(bundle, runtime) -> None:
    """value is the mask, valueTwo the value: deny chmod that sets the setuid bit, allow the others."""
    setuid = 0o4000
    profile = seccomp(
        "SCMP_ACT_ALLOW",
        rule("chmod", "SCMP_ACT_ERRNO", errnoRet=13, args=[arg(1, "SCMP_CMP_MASKED_EQ", setuid, setuid)]),
        rule("fchmodat", "SCMP_ACT_ERRNO", errnoRet=13, args=[arg(2, "SCMP_CMP_MASKED_EQ", setuid, setuid)]),
    )
    script = "touch /tmp/f; chmod 755 /tmp/f && echo 755 ok; chmod 4755 /tmp/f || echo 4755 denied; stat -c %a /tmp/f"
    b = sh(bundle, script, root=RW_ROOT, edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["755", "ok", "4755", "denied", "755"]
    assert EACCES_MSG in result.stderr


def test_conditions_on_one_argument_are_ored(bundle, runtime) -> None:
    """Two conditions on the same argument cannot both hold: runc (and hutch) make each one its own rule."""
    profile = seccomp(
        "SCMP_ACT_ALLOW",
        rule(
            "chmod",
            "SCMP_ACT_ERRNO",
            errnoRet=13,
            args=[arg(1, "SCMP_CMP_EQ", 0o700), arg(1, "SCMP_CMP_EQ", 0o600)],
        ),
    )
    script = "touch /tmp/f; for m in 700 600 644; do chmod $m /tmp/f && echo $m ok || echo $m denied; done"
    b = sh(bundle, script, root=RW_ROOT, edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["700 denied", "600 denied", "644 ok"]


def test_conditions_on_different_arguments_are_anded(bundle, runtime) -> None:
    """kill(pid > 0, SIGUSR1) is denied; kill(0, SIGUSR1) and kill(pid, SIGUSR2) are not."""
    profile = seccomp(
        "SCMP_ACT_ALLOW",
        rule(
            "kill",
            "SCMP_ACT_ERRNO",
            errnoRet=13,
            args=[arg(0, "SCMP_CMP_GT", 0), arg(1, "SCMP_CMP_EQ", signal.SIGUSR1)],
        ),
    )
    script = (
        'trap "" USR1 USR2; '
        "kill -USR1 0 && echo group ok; kill -USR2 $$ && echo usr2 ok; kill -USR1 $$ || echo usr1 denied"
    )
    b = bundle(["sh", "-c", script], edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["group ok", "usr2 ok", "usr1 denied"]
    assert EACCES_MSG in result.stderr


@pytest.mark.parametrize(
    ("op", "value", "denied"),
    [
        ("SCMP_CMP_NE", 0o644, ["600", "700"]),
        ("SCMP_CMP_LT", 0o644, ["600"]),
        ("SCMP_CMP_LE", 0o644, ["600", "644"]),
        ("SCMP_CMP_GE", 0o644, ["644", "700"]),
        ("SCMP_CMP_GT", 0o644, ["700"]),
        ("SCMP_CMP_EQ", 0o644, ["644"]),
    ],
)
def test_every_comparison(bundle, runtime, op: str, value: int, denied: list[str]) -> None:
    profile = seccomp(
        "SCMP_ACT_ALLOW", rule("chmod", "SCMP_ACT_ERRNO", errnoRet=13, args=[arg(1, op, value)])
    )
    script = "touch /tmp/f; for m in 600 644 700; do chmod $m /tmp/f 2>/dev/null || echo $m; done"
    b = sh(bundle, script, root=RW_ROOT, edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == denied


# --- the audit log --------------------------------------------------------------------------------------


class Kmsg:
    """The kernel log from now on (seccomp's audit records land there when no auditd listens)."""

    def __init__(self) -> None:
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def lines(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(os.read(self.fd, 8192).decode(errors="replace"))
            except BlockingIOError:
                return out
            except OSError:  # EPIPE: a record was overwritten before we read it; go on
                continue

    def wait_for(self, *needles: str, timeout: float = 5) -> str:
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            seen += self.lines()
            for line in seen:
                if all(n in line for n in needles):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no kernel log line with {needles}; saw {seen[-5:]}")

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def kmsg() -> Iterator[Kmsg]:
    if not os.path.exists("/dev/kmsg"):
        pytest.skip("no /dev/kmsg")
    k = Kmsg()
    yield k
    k.close()


def test_log_action_allows_and_logs(bundle, runtime, kmsg: Kmsg) -> None:
    nr = libseccomp.syscall_resolve("mkdir")
    profile = seccomp("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_LOG"))
    b = sh(bundle, "mkdir /tmp/logged && echo made", root=RW_ROOT, edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "made\n"
    assert (b / "rootfs" / "tmp" / "logged").is_dir()
    kmsg.wait_for("type=1326", f"syscall={nr} ", "code=0x7ffc0000")


def test_log_flag_logs_what_the_filter_denies(bundle, runtime, kmsg: Kmsg) -> None:
    nr = libseccomp.syscall_resolve("rmdir")
    profile = seccomp(
        "SCMP_ACT_ALLOW", rule("rmdir", "SCMP_ACT_ERRNO", errnoRet=39), flags=["SECCOMP_FILTER_FLAG_LOG"]
    )
    b = sh(bundle, "rmdir /tmp", edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 1
    assert "Directory not empty" in result.stderr
    kmsg.wait_for("type=1326", f"syscall={nr} ", "code=0x50000")  # the audit record masks the errno out


# --- flags and architectures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ["SECCOMP_FILTER_FLAG_TSYNC"],
        ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],  # without a NOTIFY rule: ignored, as libseccomp does
    ],
)
def test_flags_load(bundle, runtime, flags: list[str]) -> None:
    profile = seccomp("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_ERRNO", errnoRet=38), flags=flags)
    b = sh(bundle, "mkdir /tmp/d", root=RW_ROOT, edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 1
    assert ENOSYS_MSG in result.stderr


def test_architectures_are_added(bundle, runtime) -> None:
    """podman's profile lists the native architecture and its 32-bit ones; the rules cover all of them."""
    arches = {"x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]}.get(
        os.uname().machine, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    )
    profile = seccomp("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_ERRNO", errnoRet=38), architectures=arches)
    b = sh(bundle, "mkdir /tmp/d", root=RW_ROOT, edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 1
    assert ENOSYS_MSG in result.stderr


def test_unknown_syscall_names_are_skipped_with_a_debug_line(bundle, runtime, tmp_path: Path) -> None:
    profile = seccomp("SCMP_ACT_ALLOW", rule(["no_such_syscall", "mkdir"], "SCMP_ACT_ERRNO", errnoRet=38))
    b = sh(bundle, "mkdir /tmp/d", root=RW_ROOT, edit=with_seccomp(profile))
    log = tmp_path / "runtime.log"
    result = runtime.run(
        "--debug", "--log", log, "--log-format", "json", "run", "--bundle", b, "c1", check=False
    )
    assert result.returncode == 1
    assert ENOSYS_MSG in result.stderr
    debug = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(d["level"] == "debug" and "no_such_syscall" in d["msg"] for d in debug), debug


def test_a_rule_with_the_default_action_is_skipped(bundle, runtime) -> None:
    """libseccomp refuses a rule whose action is the default one; runc drops it, and so does hutch."""
    profile = seccomp(
        "SCMP_ACT_ERRNO",
        rule(SHELL_SYSCALLS, "SCMP_ACT_ALLOW"),
        rule("mkdir", "SCMP_ACT_ERRNO"),
        rule("mkdir", "SCMP_ACT_ERRNO", errnoRet=1),  # EPERM is the default errno: the same action
    )
    b = sh(bundle, "mkdir /tmp/d", root=RW_ROOT, edit=with_seccomp(profile))
    result = run(runtime, b)
    assert result.returncode == 1
    assert EPERM_MSG in result.stderr


# --- errors before anything starts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (seccomp("SCMP_ACT_NOTIFY"), "SCMP_ACT_NOTIFY cannot be the default action"),
        (seccomp("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_NOTIFY")), "listenerPath: required"),
        (
            seccomp("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_KILL", errnoRet=1)),
            "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL returns no errno",
        ),
        (
            seccomp(
                "SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_NOTIFY"), listenerPath="/nonexistent/agent.sock"
            ),
            "cannot connect to /nonexistent/agent.sock",
        ),
    ],
    ids=["notify-default", "no-listener-path", "errno-on-kill", "agent-unreachable"],
)
def test_a_bad_profile_fails_create_and_leaves_nothing(bundle, runtime, profile, message: str) -> None:
    b = bundle(["true"], edit=with_seccomp(profile))
    result = runtime.run("create", "--bundle", b, "c1", check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert runtime.run("list", "-q").stdout.strip() == ""


def test_an_architecture_libseccomp_lacks_is_a_clear_error(bundle, runtime) -> None:
    from hutch.oci.seccomp import SECCOMP_ARCHES
    from hutch.runtime.seccomp_build import arch_name

    missing = [a for a in SECCOMP_ARCHES if not libseccomp.arch_resolve(arch_name(a))]
    if not missing:
        pytest.skip("this libseccomp knows every architecture of the spec")
    b = bundle(["true"], edit=with_seccomp(seccomp("SCMP_ACT_ALLOW", architectures=[missing[0]])))
    result = runtime.run("create", "--bundle", b, "c1", check=False)
    assert result.returncode != 0
    assert f"{missing[0]} is not supported by libseccomp" in result.stderr
    assert runtime.run("list", "-q").stdout.strip() == ""


# --- NOTIFY: an agent answers syscalls ------------------------------------------------------------------


class Agent:
    """A seccomp agent on a unix socket: receives the container process state and the listener fd per
    connection, and answers every notification with `answer(notification) -> (val, error, flags)`."""

    def __init__(self, directory: Path, answer: Any) -> None:
        self.path = directory / "agent.sock"
        self.answer = answer
        self.states: list[dict[str, Any]] = []
        self.notifications: list[kernel.Notification] = []
        self.errors: list[BaseException] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(4)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)

    def _accept(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 4)
                while True:  # the whole message (runc leaves the connection open: no EOF to wait for)
                    try:
                        self.states.append(json.loads(data))
                        break
                    except ValueError:
                        more = conn.recv(1 << 20)
                        if not more:
                            raise
                        data += more
            assert len(fds) == 1, fds
            listener = fds[0]
            try:
                poller = select.poll()
                poller.register(listener, select.POLLIN)
                while not self._stop.is_set():
                    events = poller.poll(100)
                    if not events:
                        continue
                    if events[0][1] & select.POLLIN:
                        n = kernel.notif_recv(listener)
                        self.notifications.append(n)
                        val, error, flags = self.answer(n)
                        with contextlib.suppress(OSError):  # ENOENT: the process went away meanwhile
                            kernel.notif_send(listener, n.id, val, error, flags)
                    elif events[0][1] & (select.POLLHUP | select.POLLERR):
                        return  # no process is left under the filter
            finally:
                os.close(listener)
        except BaseException as e:
            self.errors.append(e)

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for t in self._threads:
            t.join(5)
        assert not self.errors, self.errors


@contextlib.contextmanager
def agent(directory: Path, answer: Any) -> Iterator[Agent]:
    a = Agent(directory, answer)
    try:
        yield a
    finally:
        a.close()


def notify_profile(path: Path, *extra_rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return seccomp(
        "SCMP_ACT_ALLOW",
        rule("mkdir", "SCMP_ACT_NOTIFY"),
        *extra_rules,
        listenerPath=str(path),
        listenerMetadata="hutch-test-metadata",
        **extra,
    )


@pytest.mark.parametrize("nnp", [True, False], ids=["no_new_privs", "privileged"])
def test_notify_agent_gets_the_state_and_answers_for_the_kernel(bundle, runtime, tmp_path: Path, nnp) -> None:
    """The agent says mkdir succeeded without running it: the shell sees success, and no directory exists."""
    mkdir_nr = libseccomp.syscall_resolve("mkdir")
    with agent(tmp_path, lambda n: (0, 0, 0)) as a:
        b = sh(
            bundle,
            "mkdir /tmp/d && echo mkdir says ok; test -d /tmp/d || echo but no directory",
            root=RW_ROOT,
            annotations={"org.example.key": "value"},
            edit=with_seccomp(notify_profile(a.path), nnp),
        )
        result = run(runtime, b, "notified")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["mkdir says ok", "but no directory"]
    assert [n.nr for n in a.notifications] == [mkdir_nr]
    (message,) = a.states
    assert message["fds"] == ["seccompFd"]
    assert message["metadata"] == "hutch-test-metadata"
    assert message["ociVersion"]
    state = message["state"]
    assert state["id"] == "notified"
    assert state["status"] == "creating"
    assert state["bundle"] == str(b)
    assert state["annotations"] == {"org.example.key": "value"}
    assert message["pid"] == state["pid"] > 0
    # the notification's pid is the process that made the syscall, as the agent's pid namespace sees it
    assert a.notifications[0].pid > 0


def test_notify_in_a_user_namespace(bundle, runtime, tmp_path: Path) -> None:
    """The runtime connects to the agent, not init: init's user namespace may not reach the socket."""
    with agent(tmp_path, lambda n: (0, 42, 0)) as a:
        a.path.chmod(0o700)  # only the host's root may connect

        def edit(spec: dict[str, Any]) -> None:
            userns(spec)
            with_seccomp(notify_profile(a.path), nnp=False)(spec)

        with traversable(tmp_path):
            b = sh(bundle, "mkdir /tmp/d", edit=edit)
            result = run(runtime, b)
    assert result.returncode == 1
    assert "No message of desired type" in result.stderr
    assert len(a.notifications) == 1


def test_notify_agent_answers_an_errno(bundle, runtime, tmp_path: Path) -> None:
    with agent(tmp_path, lambda n: (0, 42, 0)) as a:  # ENOMSG
        b = sh(bundle, "mkdir /tmp/d", root=RW_ROOT, edit=with_seccomp(notify_profile(a.path)))
        result = run(runtime, b)
    assert result.returncode == 1
    assert "No message of desired type" in result.stderr
    assert len(a.notifications) == 1


def test_notify_agent_lets_the_syscall_run(bundle, runtime, tmp_path: Path) -> None:
    with agent(tmp_path, lambda n: (0, 0, kernel.USER_NOTIF_FLAG_CONTINUE)) as a:
        b = sh(bundle, "mkdir /tmp/d && echo made", root=RW_ROOT, edit=with_seccomp(notify_profile(a.path)))
        result = run(runtime, b)
    assert result.returncode == 0, result.stderr
    assert (b / "rootfs" / "tmp" / "d").is_dir()


def test_notify_with_wait_killable_recv(bundle, runtime, tmp_path: Path) -> None:
    supported = json.loads(runtime.run("features").stdout)["linux"]["seccomp"].get("supportedFlags", [])
    if "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" not in supported:
        pytest.skip("the kernel lacks SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19+)")
    with agent(tmp_path, lambda n: (0, 42, 0)) as a:
        profile = notify_profile(
            a.path, flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"]
        )
        b = sh(bundle, "mkdir /tmp/d", root=RW_ROOT, edit=with_seccomp(profile))
        result = run(runtime, b)
    assert result.returncode == 1
    assert "No message of desired type" in result.stderr


def test_notify_for_exec(bundle, runtime, tmp_path: Path) -> None:
    """An exec'd process gets its own filter, and the agent its own listener and state."""
    with agent(tmp_path, lambda n: (0, 42, 0)) as a:
        b = bundle(["sleep", "30"], root=RW_ROOT, edit=with_seccomp(notify_profile(a.path)))
        runtime.run("run", "--detach", "--bundle", b, "c1")
        init_pid = runtime.state("c1")["pid"]
        pid_file = tmp_path / "exec.pid"
        result = runtime.run(
            "exec", "--pid-file", pid_file, "c1", "sh", "-c", "mkdir /tmp/d; echo rc=$?", check=False
        )
        assert result.returncode == 0, result.stderr
        assert "rc=1" in result.stdout
        assert "No message of desired type" in result.stderr
        assert len(a.states) == 2
    create_msg, exec_msg = a.states
    assert create_msg["pid"] == init_pid
    assert exec_msg["state"]["pid"] == init_pid
    assert exec_msg["state"]["status"] == "running"
    assert exec_msg["pid"] == int(pid_file.read_text())
    assert len(a.notifications) == 1


def test_notify_cannot_be_used_for_the_handoff_syscall(bundle, runtime, tmp_path: Path) -> None:
    profile = notify_profile(tmp_path / "agent.sock", rule("sendmsg", "SCMP_ACT_NOTIFY"))
    b = bundle(["true"], edit=with_seccomp(profile))
    result = runtime.run("create", "--bundle", b, "c1", check=False)
    assert result.returncode != 0
    assert "SCMP_ACT_NOTIFY cannot be used for sendmsg" in result.stderr


# --- features -------------------------------------------------------------------------------------------


def test_features_report_what_works(runtime, runc) -> None:
    ours = json.loads(runtime.run("features").stdout)
    theirs = json.loads(runc.run("features").stdout)
    sc = ours["linux"]["seccomp"]
    assert sc["enabled"] is True
    assert sc["actions"] == theirs["linux"]["seccomp"]["actions"]
    assert sc["operators"] == theirs["linux"]["seccomp"]["operators"]
    # Only what a filter here can hold: runc also lists the big-endian ones, which libseccomp refuses beside
    # a little-endian native architecture.
    native = {"x86_64": {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}}.get(os.uname().machine, set())
    assert native <= set(sc["archs"])
    assert set(sc["supportedFlags"]) <= set(sc["knownFlags"])
    assert ours["annotations"]["io.github.seccomp.libseccomp.version"] == ".".join(
        map(str, libseccomp.version())
    )


# --- the cache of built programs -------------------------------------------------------------------------

CACHE = Path("/run/hutch/seccomp-cache")


def _unique_profile() -> dict[str, Any]:
    # errnoRet picked per test run: a profile no earlier run has put in the cache
    errno = 100 + int.from_bytes(os.urandom(2), "little") % 900
    return seccomp("SCMP_ACT_ALLOW", rule("mkdir", "SCMP_ACT_ERRNO", errnoRet=errno))


RECORD = CACHE / ".libseccomp"  # libseccomp's version, and the files it was read from


def _cached() -> set[str]:
    """The programs in the cache (named by their key: not the record, nor a file being written)."""
    return {p.name for p in CACHE.iterdir() if not p.name.startswith(".")} if CACHE.is_dir() else set()


def _maps_libseccomp(pid: int) -> bool:
    return "/libseccomp.so" in Path(f"/proc/{pid}/maps").read_text()


def test_a_built_program_is_cached_and_used_again(bundle, runtime, tmp_path: Path) -> None:
    profile = _unique_profile()
    b = sh(bundle, "mkdir /tmp/d; echo rc=$?", root=RW_ROOT, edit=with_seccomp(profile))
    before = _cached()
    first = run(runtime, b, "c1")
    assert "rc=1" in first.stdout, first.stderr
    (key,) = _cached() - before
    entry = CACHE / key
    st = entry.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600)
    assert (CACHE.stat().st_mode & 0o777) == 0o700
    # The second run takes the program from the cache: no builder process is forked for it (seen in
    # strace as the runtime's clones: stage 1, and no builder).
    trace = tmp_path / "trace"
    second = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=clone,clone3,fork,vfork", "-o", str(trace),
         *runtime.command("run", "--bundle", b, "c2")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "rc=1" in second.stdout, second.stderr
    runtime_pid = int(trace.read_text().split()[0])
    forks = [
        line
        for line in trace.read_text().splitlines()
        if line.startswith(f"{runtime_pid} ") and "= " in line and "CLONE_THREAD" not in line
    ]
    assert len(forks) == 1, forks  # stage 1 only
    assert _cached() - before == {key}


def test_a_cache_entry_others_could_write_is_not_trusted(bundle, runtime) -> None:
    profile = _unique_profile()
    b = sh(bundle, "mkdir /tmp/d; echo rc=$?", root=RW_ROOT, edit=with_seccomp(profile))
    before = _cached()
    assert "rc=1" in run(runtime, b, "c1").stdout
    (key,) = _cached() - before
    entry = CACHE / key
    # An allow-everything program in its place, writable by anyone: it must be ignored (rebuilt), so mkdir
    # stays denied. (Only root can write there; this stands for a file that went wrong.)
    allow_all = b"K" + (0).to_bytes(4, "little") + bytes.fromhex("060000000000ff7f")
    entry.write_bytes(allow_all)
    entry.chmod(0o666)
    assert "rc=1" in run(runtime, b, "c2").stdout
    entry.write_bytes(b"Kgarbage")
    entry.chmod(0o600)
    assert "rc=1" in run(runtime, b, "c3").stdout


def test_a_cache_hit_does_not_load_libseccomp(bundle, runtime) -> None:
    """Neither the runtime nor init loads libseccomp for a program it finds in the cache: init, a fork of the
    runtime waiting for start, maps what the runtime mapped."""
    b = sh(bundle, "mkdir /tmp/d; echo rc=$?", root=RW_ROOT, edit=with_seccomp(_unique_profile()))
    assert "rc=1" in run(runtime, b, "c1").stdout
    runtime.run("create", "--bundle", b, "c2")
    assert not _maps_libseccomp(runtime.state("c2")["pid"])
    # A profile in no cache is built by the builder, a child: the runtime still has not loaded the library.
    b2 = sh(bundle, "mkdir /tmp/d; echo rc=$?", root=RW_ROOT, edit=with_seccomp(_unique_profile()))
    runtime.run("create", "--bundle", b2, "c3")
    assert not _maps_libseccomp(runtime.state("c3")["pid"])


def test_the_key_takes_the_version_from_the_record_while_it_holds(bundle, runtime) -> None:
    profile = _unique_profile()
    b = sh(bundle, "mkdir /tmp/d; echo rc=$?", root=RW_ROOT, edit=with_seccomp(profile))
    before = _cached()
    assert "rc=1" in run(runtime, b, "c1").stdout
    (first,) = _cached() - before
    version = ".".join(map(str, libseccomp.version()))
    path, recorded, identity = RECORD.read_text().split("\n")
    assert recorded == version
    assert Path(path).resolve().name.startswith("libseccomp.so")
    try:
        # The record stands for the library while the files it names are unchanged: another version in it
        # gives another key, and the program is built again under that key.
        RECORD.write_text(f"{path}\n0.0.0-test\n{identity}")
        assert "rc=1" in run(runtime, b, "c2").stdout
        (second,) = _cached() - before - {first}
        # A record whose files changed (here: its identity) is not believed: the library is asked again, its
        # version recorded, and the first key found again.
        RECORD.write_text(f"{path}\n0.0.0-test\nstale")
        assert "rc=1" in run(runtime, b, "c3").stdout
        assert _cached() - before == {first, second}
        assert RECORD.read_text() == f"{path}\n{version}\n{identity}"
    finally:
        RECORD.unlink(missing_ok=True)
        for key in _cached() - before:
            (CACHE / key).unlink()
