"""Device rules: v1 semantics of the rule list, and the v2 BPF program run by a small interpreter here.

The interpreter knows the few instructions devices_bpf emits, so the program's verdicts can be compared with
the emulator's (which is what v1's kernel does) for every kind of request, without root or a kernel.
"""

from __future__ import annotations

import itertools
import struct

import pytest

from hutch.oci.config import Device
from hutch.oci.resources import DeviceRule
from hutch.runtime.cgroups import devices, devices_bpf
from hutch.runtime.cgroups.devices import Emulator

U32 = 0xFFFF_FFFF


def run_program(code: bytes, dev_type: str, major: int, minor: int, access: str) -> int:
    """Run a cgroup device program on one request; returns r0."""
    ctx = [
        (sum(devices_bpf.ACCESS_BITS[a] for a in access) << 16) | devices_bpf.DEV_TYPES[dev_type],
        major,
        minor,
    ]
    regs = [0] * 11
    insns = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
    pc = 0
    for _ in range(10_000):
        op, regbyte, off, imm = insns[pc]
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if op == devices_bpf.LDX_MEM_W:
            assert src == 1 and off in (0, 4, 8)
            regs[dst] = ctx[off // 4]
        elif op == devices_bpf.ALU32_AND_K:
            regs[dst] = (regs[dst] & imm) & U32
        elif op == devices_bpf.ALU32_RSH_K:
            regs[dst] = (regs[dst] & U32) >> imm
        elif op == devices_bpf.ALU32_MOV_X:
            regs[dst] = regs[src] & U32
        elif op == devices_bpf.ALU64_MOV_K:
            regs[dst] = imm
        elif op == devices_bpf.JMP32_JNE_K:
            if (regs[dst] & U32) != (imm & U32):
                pc += off
        elif op == devices_bpf.JMP32_JNE_X:
            if (regs[dst] & U32) != (regs[src] & U32):
                pc += off
        elif op == devices_bpf.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
    raise AssertionError("the program did not exit")


def rule(
    allow: bool, type: str = "a", major: int | None = None, minor: int | None = None, access: str = "rwm"
) -> DeviceRule:
    return DeviceRule(allow=allow, type=type, major=major, minor=minor, access=access)


REQUESTS = [
    (t, major, minor, access)
    for t in ("c", "b")
    for major, minor in ((1, 3), (1, 5), (1, 11), (5, 2), (136, 7), (10, 200), (8, 0), (4000, 1 << 20))
    for access in ("r", "w", "m", "rw", "rwm")
]

RULE_SETS = {
    "deny all": [rule(False)],
    "allow all": [rule(True)],
    "deny all, allow null": [rule(False), rule(True, "c", 1, 3, "rwm")],
    "allow all, deny kmsg write": [rule(True), rule(False, "c", 1, 11, "w")],
    "deny, allow tty major rw": [rule(False), rule(True, "c", 136, None, "rw")],
    "allow then take back": [rule(False), rule(True, "c", 1, 3, "rwm"), rule(False, "c", 1, 3, "w")],
    "any block device read": [rule(False), rule(True, "b", None, None, "r")],
    "reset midway": [rule(True, "c", 1, 3), rule(False), rule(True, "c", 1, 5, "r")],
    "huge numbers": [rule(False), rule(True, "b", 4000, 1 << 20, "rw")],
}


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_program_agrees_with_v1_semantics(name: str) -> None:
    emu = Emulator()
    for r in RULE_SETS[name]:
        emu.apply(r)
    code = devices_bpf.program(emu)
    assert len(code) % 8 == 0
    for request in REQUESTS:
        expected = emu.permits(*request)
        assert run_program(code, *request) == int(expected), (name, request, emu.exceptions)


def test_deny_all_then_allow_one() -> None:
    emu = Emulator()
    for r in RULE_SETS["deny all, allow null"]:
        emu.apply(r)
    assert emu.permits("c", 1, 3, "rw")
    assert not emu.permits("c", 1, 5, "r")
    assert not emu.allow


def test_taking_back_one_access_leaves_the_rest() -> None:
    emu = Emulator()
    for r in RULE_SETS["allow then take back"]:
        emu.apply(r)
    assert [e.v1() for e in emu.exceptions] == ["c 1:3 rm"]
    assert emu.permits("c", 1, 3, "r")
    assert not emu.permits("c", 1, 3, "w")


def test_a_rule_for_all_devices_resets() -> None:
    emu = Emulator()
    for r in RULE_SETS["reset midway"]:
        emu.apply(r)
    assert [e.v1() for e in emu.exceptions] == ["c 1:5 r"]


def test_exceptions_merge_access() -> None:
    emu = Emulator()
    emu.apply(rule(True, "c", 1, 3, "r"))
    emu.apply(rule(True, "c", 1, 3, "w"))
    assert [e.v1() for e in emu.exceptions] == ["c 1:3 rw"]


def test_effective_appends_runc_defaults() -> None:
    emu = devices.effective([rule(False)])
    listed = [e.v1() for e in emu.exceptions]
    assert not emu.allow
    assert listed[:3] == ["c *:* m", "b *:* m", "c 1:3 rwm"]
    assert "c 136:* rwm" in listed and "c 10:200 rwm" in listed
    assert emu.permits("c", 1, 9, "rw")  # /dev/urandom
    assert not emu.permits("c", 1, 11, "w")  # /dev/kmsg is not a default


def test_defaults_cannot_be_denied_by_the_spec_but_a_redefined_path_drops_its_default() -> None:
    # As runc: the defaults come last, so a deny of /dev/null in the spec is overridden...
    assert devices.effective([rule(False), rule(False, "c", 1, 3)]).permits("c", 1, 3, "rw")
    # ...unless linux.devices defines /dev/null itself; then only the spec's rules decide.
    spec_null = Device(type="c", path="/dev/null", major=1, minor=3)
    assert not devices.effective([rule(False)], [spec_null]).permits("c", 1, 3, "rw")


def test_no_rules_is_deny_all_plus_defaults() -> None:
    emu = devices.effective([])
    assert not emu.allow
    assert not emu.permits("b", 8, 0, "r")
    assert emu.permits("b", 8, 0, "m")


def test_every_combination_of_a_few_rules() -> None:
    pool = [
        rule(True),
        rule(False),
        rule(True, "c", 1, 3, "rw"),
        rule(False, "c", 1, 3, "w"),
        rule(True, "c", None, None, "m"),
        rule(False, "b", 8, None, "r"),
    ]
    for combo in itertools.product(pool, repeat=3):
        emu = Emulator()
        for r in combo:
            emu.apply(r)
        code = devices_bpf.program(emu)
        for request in REQUESTS[::7]:
            assert run_program(code, *request) == int(emu.permits(*request)), (combo, request)
