"""hutch.runtime.seccomp without root: how a profile becomes libseccomp rules (runc's semantics), the flags,
the BPF program libseccomp builds, and the builder process that builds it while a container is set up."""

from __future__ import annotations

import fcntl
from typing import Any

import pytest

from hutch.errors import ConfigError, HostError
from hutch.linux import libseccomp
from hutch.linux import seccomp as kernel
from hutch.oci.config import parse
from hutch.oci.seccomp import SECCOMP_ARCHES, SECCOMP_OPS, Seccomp
from hutch.runtime import seccomp, seccomp_build
from hutch.runtime.seccomp import Rule

ALLOW = 0x7FFF0000
ERRNO = 0x00050000
TRACE = 0x7FF00000
KILL_PROCESS = 0x80000000
EQ, NE, MASKED_EQ = SECCOMP_OPS["SCMP_CMP_EQ"], SECCOMP_OPS["SCMP_CMP_NE"], SECCOMP_OPS["SCMP_CMP_MASKED_EQ"]


def profile(default: str = "SCMP_ACT_ALLOW", *syscalls: dict[str, Any], **extra: Any) -> Seccomp:
    """A linux.seccomp object, parsed (and so validated) as config.json's would be."""
    doc = {
        "ociVersion": "1.2.0",
        "linux": {"seccomp": {"defaultAction": default, "syscalls": list(syscalls), **extra}},
    }
    spec = parse(doc)
    assert spec.linux is not None and spec.linux.seccomp is not None
    return spec.linux.seccomp


def call(names: str | list[str], action: str, *args: dict[str, Any], **extra: Any) -> dict[str, Any]:
    entry = {"names": [names] if isinstance(names, str) else names, "action": action, **extra}
    if args:
        entry["args"] = list(args)
    return entry


def arg(index: int, op: str, value: int, value_two: int | None = None) -> dict[str, Any]:
    a: dict[str, Any] = {"index": index, "op": f"SCMP_CMP_{op}", "value": value}
    if value_two is not None:
        a["valueTwo"] = value_two
    return a


# --- actions --------------------------------------------------------------------------------------------


def test_errno_and_trace_default_to_eperm() -> None:
    default, rules = seccomp.plan(
        profile("SCMP_ACT_KILL_PROCESS", call("mkdir", "SCMP_ACT_ERRNO"), call("rmdir", "SCMP_ACT_TRACE"))
    )
    assert default == KILL_PROCESS
    assert rules == [Rule("mkdir", ERRNO | 1), Rule("rmdir", TRACE | 1)]


def test_errno_ret_and_default_errno_ret() -> None:
    default, rules = seccomp.plan(
        profile("SCMP_ACT_ERRNO", call("mkdir", "SCMP_ACT_TRACE", errnoRet=42), defaultErrnoRet=38)
    )
    assert default == ERRNO | 38
    assert rules == [Rule("mkdir", TRACE | 42)]


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRAP"])
def test_errno_ret_on_an_action_without_one_is_an_error(action: str) -> None:
    with pytest.raises(ConfigError, match=r"linux\.seccomp\.syscalls\[0\]\.errnoRet: .* returns no errno"):
        seccomp.plan(profile("SCMP_ACT_ALLOW", call("mkdir", action, errnoRet=1)))
    with pytest.raises(ConfigError, match=r"linux\.seccomp\.defaultErrnoRet"):
        seccomp.plan(profile(action, defaultErrnoRet=1))


def test_kill_is_kill_thread() -> None:
    assert seccomp.plan(profile("SCMP_ACT_KILL"))[0] == seccomp.plan(profile("SCMP_ACT_KILL_THREAD"))[0] == 0


def test_a_rule_with_the_default_action_is_skipped() -> None:
    _, rules = seccomp.plan(
        profile(
            "SCMP_ACT_ERRNO",
            call("mkdir", "SCMP_ACT_ERRNO"),  # EPERM: the default's errno too
            call("rmdir", "SCMP_ACT_ERRNO", errnoRet=1),
            call("chmod", "SCMP_ACT_ERRNO", errnoRet=13),  # another errno: another action
            call("read", "SCMP_ACT_ALLOW"),
        )
    )
    assert rules == [Rule("chmod", ERRNO | 13), Rule("read", ALLOW)]


def test_notify_limits() -> None:
    with pytest.raises(ConfigError, match="SCMP_ACT_NOTIFY cannot be the default action"):
        seccomp.plan(profile("SCMP_ACT_NOTIFY", listenerPath="/run/agent.sock"))
    with pytest.raises(ConfigError, match=r"linux\.seccomp\.listenerPath: required"):
        seccomp.plan(profile("SCMP_ACT_ALLOW", call("mkdir", "SCMP_ACT_NOTIFY")))
    with pytest.raises(
        ConfigError, match=r"syscalls\[0\]\.names: SCMP_ACT_NOTIFY cannot be used for sendmsg"
    ):
        seccomp.plan(
            profile("SCMP_ACT_ALLOW", call(["mkdir", "sendmsg"], "SCMP_ACT_NOTIFY"), listenerPath="/a")
        )


# --- conditions, as runc combines them ------------------------------------------------------------------


def test_one_rule_per_name() -> None:
    _, rules = seccomp.plan(profile("SCMP_ACT_ERRNO", call(["read", "write"], "SCMP_ACT_ALLOW")))
    assert rules == [Rule("read", ALLOW), Rule("write", ALLOW)]


def test_conditions_on_different_arguments_are_anded() -> None:
    _, rules = seccomp.plan(
        profile("SCMP_ACT_ALLOW", call("kill", "SCMP_ACT_ERRNO", arg(0, "GT", 0), arg(1, "EQ", 10)))
    )
    assert rules == [Rule("kill", ERRNO | 1, ((0, SECCOMP_OPS["SCMP_CMP_GT"], 0, 0), (1, EQ, 10, 0)))]


def test_conditions_on_one_argument_make_a_rule_each() -> None:
    """runc: as soon as two conditions test the same argument, every condition becomes its own rule (ORed),
    even those on other arguments."""
    _, rules = seccomp.plan(
        profile(
            "SCMP_ACT_ERRNO",
            call("personality", "SCMP_ACT_ALLOW", arg(0, "EQ", 0), arg(0, "EQ", 8), arg(1, "NE", 3)),
        )
    )
    assert rules == [
        Rule("personality", ALLOW, ((0, EQ, 0, 0),)),
        Rule("personality", ALLOW, ((0, EQ, 8, 0),)),
        Rule("personality", ALLOW, ((1, NE, 3, 0),)),
    ]


def test_masked_eq_takes_the_mask_from_value() -> None:
    _, rules = seccomp.plan(
        profile("SCMP_ACT_ALLOW", call("chmod", "SCMP_ACT_ERRNO", arg(1, "MASKED_EQ", 0o4000, 0o4000)))
    )
    assert rules[0].conditions == ((1, MASKED_EQ, 0o4000, 0o4000),)
    assert seccomp_build.describe(rules[0]) == "chmod SCMP_ACT_ERRNO(1) arg1 SCMP_CMP_MASKED_EQ 0x800 0x800"


# --- flags ----------------------------------------------------------------------------------------------


def test_flags() -> None:
    flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    assert seccomp.flag_bits(profile(flags=flags)) == (
        kernel.FILTER_FLAG_TSYNC | kernel.FILTER_FLAG_LOG | kernel.FILTER_FLAG_SPEC_ALLOW
    )


def test_notify_adds_a_listener_and_tsync_needs_esrch_with_it() -> None:
    p = profile(
        "SCMP_ACT_ALLOW",
        call("mkdir", "SCMP_ACT_NOTIFY"),
        listenerPath="/a",
        flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
    )
    assert seccomp.flag_bits(p) == (
        kernel.FILTER_FLAG_TSYNC
        | kernel.FILTER_FLAG_NEW_LISTENER
        | kernel.FILTER_FLAG_TSYNC_ESRCH
        | kernel.FILTER_FLAG_WAIT_KILLABLE_RECV
    )


def test_wait_killable_recv_without_notify_is_dropped() -> None:
    assert seccomp.flag_bits(profile(flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])) == 0


# --- the program (libseccomp, no root needed) -----------------------------------------------------------

needs_libseccomp = pytest.mark.skipif(libseccomp.lib is None, reason=libseccomp.load_error)


@needs_libseccomp
def test_unknown_syscall_names_are_skipped() -> None:
    with_unknown = seccomp_build.build(
        profile("SCMP_ACT_ALLOW", call(["no_such_syscall", "mkdir"], "SCMP_ACT_KILL"))
    )
    without = seccomp_build.build(profile("SCMP_ACT_ALLOW", call("mkdir", "SCMP_ACT_KILL")))
    assert with_unknown.program.code() == without.program.code()
    assert len(without.program) * 8 == len(without.program.code()) > 0
    # and the known name still made a rule: the program is not the one of an empty profile
    assert without.program.code() != seccomp_build.build(profile("SCMP_ACT_ALLOW")).program.code()


@needs_libseccomp
def test_pseudo_syscalls_of_other_architectures_are_accepted() -> None:
    """socketcall exists on x86 only: on x86_64 it resolves to a negative pseudo number; no error."""
    seccomp_build.build(profile("SCMP_ACT_ERRNO", call(["socketcall", "read"], "SCMP_ACT_ALLOW")))


@needs_libseccomp
def test_every_reported_architecture_builds_and_the_others_are_clear_errors() -> None:
    reported = seccomp_build.features()["archs"]
    assert isinstance(reported, list)
    for arch in SECCOMP_ARCHES:
        p = profile("SCMP_ACT_ALLOW", call("mkdir", "SCMP_ACT_ERRNO"), architectures=[arch])
        if arch in reported:
            assert len(seccomp_build.build(p).program) > 0
        else:
            with pytest.raises(
                HostError, match=f"{arch} (is not supported by libseccomp|cannot share a filter)"
            ):
                seccomp_build.build(p)


@needs_libseccomp
def test_syscalls_are_tested_down_a_binary_tree() -> None:
    """A list of JEQs would make the kernel run the filter through every rule for each syscall number when it
    caches the filter's verdicts; the tree halves the range with JGTs (BPF_JMP|BPF_JGT|BPF_K, 0x25)."""
    names = "read write close fstat lseek mmap mprotect munmap brk ioctl pread64 pwrite64 readv writev pipe"
    p = profile("SCMP_ACT_ERRNO", call([*names.split(), "dup", "dup2", "getpid", "socket"], "SCMP_ACT_ALLOW"))
    code = seccomp_build.build(p).program.code()
    jgt = sum(1 for i in range(0, len(code), 8) if code[i] == 0x25)
    assert jgt >= 3


@needs_libseccomp
def test_more_architectures_make_a_longer_program() -> None:
    native = seccomp_build.build(profile("SCMP_ACT_ALLOW", call("mkdir", "SCMP_ACT_ERRNO")))
    arches = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"] if libseccomp.arch_native() == 0xC000003E else []
    if not arches:
        pytest.skip("x86_64 only")
    both = seccomp_build.build(
        profile("SCMP_ACT_ALLOW", call("mkdir", "SCMP_ACT_ERRNO"), architectures=arches)
    )
    assert len(both.program) > len(native.program)


@needs_libseccomp
def test_the_builder_process_gives_what_build_gives() -> None:
    p = profile(
        "SCMP_ACT_ERRNO",
        call(["read", "write", "exit_group"], "SCMP_ACT_ALLOW"),
        call("personality", "SCMP_ACT_ALLOW", arg(0, "EQ", 0), arg(0, "EQ", 8)),
        defaultErrnoRet=38,
        flags=["SECCOMP_FILTER_FLAG_LOG"],
    )
    prepared = seccomp.prepare(p)
    try:
        prepared.receive()
    finally:
        prepared.reap()
    assert prepared.compiled is not None
    direct = seccomp_build.build(p)
    assert prepared.compiled.program.code() == direct.program.code()
    assert prepared.compiled.flags == direct.flags == kernel.FILTER_FLAG_LOG


@needs_libseccomp
def test_the_builder_reports_errors_with_their_kind() -> None:
    missing = [a for a in SECCOMP_ARCHES if not libseccomp.arch_resolve(seccomp_build.arch_name(a))]
    if not missing:
        pytest.skip("this libseccomp knows every architecture")
    prepared = seccomp.prepare(profile("SCMP_ACT_ALLOW", architectures=missing[:1]))
    try:
        with pytest.raises(HostError, match="is not supported by libseccomp"):
            prepared.receive()
    finally:
        prepared.reap()


def test_config_errors_come_from_prepare_itself() -> None:
    with pytest.raises(ConfigError, match="cannot be the default action"):
        seccomp.prepare(profile("SCMP_ACT_NOTIFY"))


def test_the_library_identity_changes_with_the_file_and_what_chose_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record of libseccomp's version holds while this identity does: any change to the library file
    (replaced, written over, removed), to ld.so.cache or to LD_LIBRARY_PATH gives another."""
    lib = tmp_path / "libseccomp.so.2"
    cache = tmp_path / "ld.so.cache"
    lib.write_bytes(b"v1")
    cache.write_bytes(b"c")
    monkeypatch.setattr(seccomp, "_LD_CACHE", str(cache))
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    seen = [seccomp._library_identity(str(lib))]
    assert seen[0] == seccomp._library_identity(str(lib))  # stable while nothing changes
    lib.write_bytes(b"v2 longer")  # written over: the same inode
    seen.append(seccomp._library_identity(str(lib)))
    for path in (lib, cache):  # replaced, as dpkg and ldconfig do (a new inode: the old one still exists)
        new = path.with_suffix(".new")
        new.write_bytes(path.read_bytes())
        new.replace(path)
        seen.append(seccomp._library_identity(str(lib)))
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/lib")
    seen.append(seccomp._library_identity(str(lib)))
    lib.unlink()
    seen.append(seccomp._library_identity(str(lib)))
    assert len(set(seen)) == len(seen), seen


def test_a_cached_program_larger_than_the_pipe_still_arrives_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # create starts the filter after its fork and writes a cached program into the pipe init reads once it
    # is set up; a pipe smaller than the program (an unprivileged user over pipe-user-pages-soft) must not
    # block the runtime: a writer process sends the rest.
    encoded = b"K" + (0).to_bytes(4, "little") + bytes(range(256)) * 64  # 2048 instructions, 16 KiB
    monkeypatch.setattr(seccomp, "cache_get", lambda key: encoded)
    monkeypatch.setattr(seccomp, "library_version", lambda: "2.5.4")
    prepared = seccomp.Prepared(profile("SCMP_ACT_ALLOW", call("mkdir", "SCMP_ACT_ERRNO")))
    prepared.open()
    fcntl.fcntl(prepared.wfd, 1031, 4096)  # F_SETPIPE_SZ: one page
    try:
        prepared.start()
        assert prepared.wfd == -1 and prepared.builder  # the writer took the rest
        prepared.receive()
    finally:
        prepared.reap()
    assert prepared.compiled is not None and prepared.compiled.encode() == encoded


def test_notification_struct_sizes_match_the_ioctl_numbers() -> None:
    import struct

    assert struct.calcsize(kernel._NOTIF) == (kernel.IOCTL_NOTIF_RECV >> 16) & 0x3FFF == 80
    assert struct.calcsize(kernel._NOTIF_RESP) == (kernel.IOCTL_NOTIF_SEND >> 16) & 0x3FFF == 24
