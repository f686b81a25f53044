"""`linux.seccomp` of the OCI runtime config (runtime-spec v1.2) as typed data, and the names it may use.

Parsed by hutch.oci.config (through hutch.oci.reader, so errors name the JSON path) only when config.json has
linux.seccomp, so a container without a filter never imports this module; hutch.runtime.seccomp turns a
Seccomp into the filter. Every action, operator, architecture and flag is checked against the tables here.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field
if TYPE_CHECKING:
    from hutch.oci.reader import Reader

# Integer ranges of the spec's Go types (as in hutch.oci.config, which imports this module).
_U32 = (0, 0xFFFF_FFFF)
_U64 = (0, 0xFFFF_FFFF_FFFF_FFFF)

# Seccomp actions and the kernel's SECCOMP_RET_* value each maps to (ERRNO and TRACE take their data in the
# low 16 bits). SCMP_ACT_KILL is libseccomp's old name for KILL_THREAD.
SECCOMP_ACTIONS = {
    "SCMP_ACT_KILL": 0x0000_0000,
    "SCMP_ACT_KILL_THREAD": 0x0000_0000,
    "SCMP_ACT_KILL_PROCESS": 0x8000_0000,
    "SCMP_ACT_TRAP": 0x0003_0000,
    "SCMP_ACT_ERRNO": 0x0005_0000,
    "SCMP_ACT_TRACE": 0x7FF0_0000,
    "SCMP_ACT_ALLOW": 0x7FFF_0000,
    "SCMP_ACT_LOG": 0x7FFC_0000,
    "SCMP_ACT_NOTIFY": 0x7FC0_0000,
}
# Seccomp argument comparisons, numbered as libseccomp's enum scmp_compare.
SECCOMP_OPS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}
SECCOMP_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 0x01,
    "SECCOMP_FILTER_FLAG_LOG": 0x02,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 0x04,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 0x20,
}
_ARCH_NAMES = """X86 X86_64 X32 ARM AARCH64 LOONGARCH64 M68K MIPS MIPS64 MIPS64N32 MIPSEL MIPSEL64 MIPSEL64N32
PPC PPC64 PPC64LE S390 S390X PARISC PARISC64 RISCV64 SH SHEB"""
SECCOMP_ARCHES = tuple(f"SCMP_ARCH_{name}" for name in _ARCH_NAMES.split())


@dataclass(slots=True)
class SeccompArg:
    """linux.seccomp.syscalls[].args[]: `op` is a key of SECCOMP_OPS, index 0..5."""

    index: int
    value: int
    op: str
    value_two: int = 0


@dataclass(slots=True)
class SeccompSyscall:
    """linux.seccomp.syscalls[]: `action` is a key of SECCOMP_ACTIONS."""

    names: list[str]
    action: str
    errno_ret: int | None = None
    args: list[SeccompArg] = field(default_factory=list)


@dataclass(slots=True)
class Seccomp:
    """linux.seccomp: actions, operators, architectures and flags are checked here."""

    default_action: str
    default_errno_ret: int | None = None
    architectures: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    listener_path: str = ""
    listener_metadata: str = ""
    syscalls: list[SeccompSyscall] = field(default_factory=list)


def parse_seccomp(r: Reader) -> Seccomp:
    """Validate the linux.seccomp object `r` reads; a ConfigError names the offending value's JSON path."""
    syscalls = []
    for s in r.children("syscalls"):
        names = s.strings("names")
        if not names:
            raise s.error("names", "must have at least one entry" if "names" in s.doc else "required")
        args = []
        for a in s.children("args"):
            args.append(
                SeccompArg(
                    index=a.integer("index", (0, 5), required=True),
                    value=a.integer("value", _U64, required=True),
                    op=a.choice("op", SECCOMP_OPS, "seccomp operator", required=True),
                    value_two=a.integer("valueTwo", _U64),
                )
            )
        syscalls.append(
            SeccompSyscall(
                names=names,
                action=s.choice("action", SECCOMP_ACTIONS, "seccomp action", required=True),
                errno_ret=s.opt_integer("errnoRet", _U32),
                args=args,
            )
        )
    return Seccomp(
        default_action=r.choice("defaultAction", SECCOMP_ACTIONS, "seccomp action", required=True),
        default_errno_ret=r.opt_integer("defaultErrnoRet", _U32),
        architectures=r.names("architectures", SECCOMP_ARCHES, "seccomp architecture"),
        flags=r.names("flags", SECCOMP_FLAGS, "seccomp flag"),
        listener_path=r.string("listenerPath"),
        listener_metadata=r.string("listenerMetadata"),
        syscalls=syscalls,
    )
