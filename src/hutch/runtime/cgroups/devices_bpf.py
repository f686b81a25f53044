"""Device rules on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program, built here and attached with bpf(2).

The kernel runs the program on every device access (open, mknod) by a process in the cgroup, with a
struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } where access_type is
(access << 16) | type, access a mask of BPF_DEVCG_ACC_MKNOD 1, READ 2, WRITE 4 and type BPF_DEVCG_DEV_BLOCK 1
or CHAR 2. The program returns 1 to allow, 0 to deny.

The program tests the exceptions of an Emulator in order; the first that matches decides (the opposite of
the default); when none matches, the default decides. An exception matches when type, major and minor agree
(None is any) and the request asks for no access the exception does not name, as on v1.
"""

from __future__ import annotations

import os
import struct

from hutch.runtime.cgroups.devices import Emulator

# Opcodes (class | op | source), from include/uapi/linux/bpf.h and bpf_common.h.
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
ALU32_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
ALU32_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
ALU32_MOV_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
ALU64_MOV_K = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K
JMP32_JNE_K = 0x56  # BPF_JMP32 | BPF_JNE | BPF_K
JMP32_JNE_X = 0x5E  # BPF_JMP32 | BPF_JNE | BPF_X
EXIT = 0x95  # BPF_JMP | BPF_EXIT

DEV_TYPES = {"b": 1, "c": 2}
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}

# Registers after the prologue: r2 type, r3 access, r4 major, r5 minor; r1 is scratch once they are read.
R0, R1, R2, R3, R4, R5 = range(6)


def insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One 8-byte instruction: opcode, dst (low nibble) and src (high nibble) registers, offset, immediate."""
    if imm >= 1 << 31:
        imm -= 1 << 32  # the field is s32; a JMP32 compare only looks at the low 32 bits
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)


def _access_mask(access: str) -> int:
    mask = 0
    for ch in access:
        mask |= ACCESS_BITS[ch]
    return mask


def program(emu: Emulator) -> bytes:
    """The instructions that enforce `emu`."""
    out = [
        insn(LDX_MEM_W, R2, R1, 0),
        insn(ALU32_AND_K, R2, imm=0xFFFF),
        insn(LDX_MEM_W, R3, R1, 0),
        insn(ALU32_RSH_K, R3, imm=16),
        insn(LDX_MEM_W, R4, R1, 4),
        insn(LDX_MEM_W, R5, R1, 8),
    ]
    verdict = 0 if emu.allow else 1
    for ex in emu.exceptions:
        # Each test jumps past the end of this block when it fails.
        tests: list[tuple[int, int, int, int]] = []  # (op, dst, src, imm)
        tests.append((JMP32_JNE_K, R2, 0, DEV_TYPES[ex.type]))
        mask = _access_mask(ex.access)
        if mask != 7:
            tests += [(ALU32_MOV_X, R1, R3, 0), (ALU32_AND_K, R1, 0, mask), (JMP32_JNE_X, R1, R3, 0)]
        if ex.major is not None:
            tests.append((JMP32_JNE_K, R4, 0, ex.major))
        if ex.minor is not None:
            tests.append((JMP32_JNE_K, R5, 0, ex.minor))
        length = len(tests) + 2
        for i, (op, dst, src, imm) in enumerate(tests):
            jump = op in (JMP32_JNE_K, JMP32_JNE_X)
            out.append(insn(op, dst, src, length - i - 1 if jump else 0, imm))
        out += [insn(ALU64_MOV_K, R0, imm=verdict), insn(EXIT)]
    out += [insn(ALU64_MOV_K, R0, imm=1 if emu.allow else 0), insn(EXIT)]
    return b"".join(out)


def attach(directory: str, emu: Emulator) -> None:
    """Load the program for `emu` and attach it to the v2 cgroup `directory`, replacing what we put there.

    Attached with BPF_F_ALLOW_MULTI, as runc does, so programs of parent cgroups keep applying too; programs
    already attached to this cgroup itself are detached once the new one is in place.
    """
    from hutch.linux import bpf

    code = program(emu)
    prog = bpf.prog_load(bpf.BPF_PROG_TYPE_CGROUP_DEVICE, code)
    try:
        cg = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            old = bpf.prog_query(cg, bpf.BPF_CGROUP_DEVICE)
            bpf.prog_attach(cg, prog, bpf.BPF_CGROUP_DEVICE, bpf.BPF_F_ALLOW_MULTI)
            for prog_id in old:
                old_fd = bpf.prog_get_fd_by_id(prog_id)
                try:
                    bpf.prog_detach(cg, old_fd, bpf.BPF_CGROUP_DEVICE)
                finally:
                    os.close(old_fd)
        finally:
            os.close(cg)
    finally:
        os.close(prog)


def attached(directory: str) -> list[int]:
    """Ids of the device programs attached to the v2 cgroup `directory` itself."""
    from hutch.linux import bpf

    cg = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return bpf.prog_query(cg, bpf.BPF_CGROUP_DEVICE)
    finally:
        os.close(cg)
