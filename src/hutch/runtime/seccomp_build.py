"""A seccomp profile turned into a BPF program with libseccomp (the builder process's work, see
hutch.runtime.seccomp), and what libseccomp and the kernel support here (`features`)."""

from hutch.errors import ConfigError, HostError
from hutch.linux import seccomp as kernel
from hutch.oci.seccomp import SECCOMP_ACTIONS, SECCOMP_ARCHES, SECCOMP_FLAGS, SECCOMP_OPS, Seccomp
from hutch.runtime import log
from hutch.runtime.seccomp import (
    BPF_MAXINSNS,
    Compiled,
    Rule,
    flag_bits,
    flag_supported,
    libseccomp_version,
    plan,
)


def arch_name(arch: str) -> str:
    """libseccomp's name of a spec architecture: SCMP_ARCH_X86_64 -> x86_64."""
    return arch.removeprefix("SCMP_ARCH_").lower()


def build(cfg: Seccomp, source: str = "config.json") -> Compiled:
    """Build the BPF program of a profile with libseccomp (synchronously)."""
    from hutch.linux import libseccomp  # loads the library (~2 ms): only here

    if libseccomp.lib is None:
        raise HostError(f"{source}: linux.seccomp: {libseccomp.load_error}")
    default, rules = plan(cfg, source)
    flt = libseccomp.Filter(default)
    try:
        for arch in cfg.architectures:
            token = libseccomp.arch_resolve(arch_name(arch))
            if not token:
                raise HostError(
                    f"{source}: linux.seccomp.architectures: {arch} is not supported by libseccomp "
                    f"{libseccomp_version()}"
                )
            try:
                flt.add_arch(token)
            except OSError as e:  # EDOM: another endianness than the native architecture's
                raise HostError(
                    f"{source}: linux.seccomp.architectures: {arch} cannot share a filter with this host's "
                    f"architecture: {e.strerror}"
                ) from None
        # A binary tree of syscalls: the kernel, when it loads the filter, runs it for every syscall number
        # of every architecture to find those it allows whatever their arguments (Linux 5.11's action
        # cache); down a list of hundreds that is ~1.9 ms of every container's start (podman's profile on
        # three architectures), down a tree ~0.7. libseccomp then builds ~5 ms longer (~30 ms instead of
        # ~25), once: the program is cached.
        flt.sort_as_tree()
        numbers: dict[str, int] = {}
        for rule in rules:
            nr = numbers.get(rule.name)
            if nr is None:
                nr = numbers[rule.name] = libseccomp.syscall_resolve(rule.name)
                if nr == libseccomp.NR_SCMP_ERROR:
                    log.debug(f"seccomp: syscall {rule.name!r} is unknown on this architecture: ignored")
            if nr == libseccomp.NR_SCMP_ERROR:
                continue
            conds = None
            if rule.conditions:
                conds = (libseccomp.ArgCmp * len(rule.conditions))(
                    *(libseccomp.ArgCmp(*c) for c in rule.conditions)
                )
            try:
                flt.add_rule(rule.action, nr, conds)
            except OSError as e:
                raise ConfigError(
                    f"{source}: linux.seccomp.syscalls: libseccomp refuses the rule {describe(rule)}: "
                    f"{e.strerror}"
                ) from None
        code = flt.export_bpf()
    except OSError as e:
        raise HostError(f"{source}: linux.seccomp: {e.strerror or e}") from None
    finally:
        flt.release()
    if len(code) // 8 > BPF_MAXINSNS:
        raise ConfigError(
            f"{source}: linux.seccomp: the filter needs {len(code) // 8} BPF instructions; the kernel takes "
            f"at most {BPF_MAXINSNS}"
        )
    return Compiled(kernel.Program(code), flag_bits(cfg))


def describe(rule: Rule) -> str:
    """A rule as a person reads it: `mkdir SCMP_ACT_ERRNO(38) arg1 SCMP_CMP_EQ 0x1ff`."""
    base = rule.action & 0xFFFF0000
    action = next((name for name, v in SECCOMP_ACTIONS.items() if v == base), f"{base:#x}")
    text = f"{rule.name} {action}"
    if base in (SECCOMP_ACTIONS["SCMP_ACT_ERRNO"], SECCOMP_ACTIONS["SCMP_ACT_TRACE"]):
        text += f"({rule.action & 0xFFFF})"
    ops = {v: k for k, v in SECCOMP_OPS.items()}
    for index, op, a, b in rule.conditions:
        text += f" arg{index} {ops.get(op, op)} {a:#x}"
        if op == SECCOMP_OPS["SCMP_CMP_MASKED_EQ"]:
            text += f" {b:#x}"
    return text


def _arch_usable(arch: str) -> bool:
    """Whether libseccomp knows the architecture and can put it in a filter beside the native one."""
    from hutch.linux import libseccomp

    token = libseccomp.arch_resolve(arch_name(arch))
    if not token:
        return False
    flt = libseccomp.Filter(SECCOMP_ACTIONS["SCMP_ACT_ALLOW"])
    try:
        flt.add_arch(token)
    except OSError:
        return False
    finally:
        flt.release()
    return True


def features() -> dict[str, object]:
    """The `linux.seccomp` part of the features document, probed on this host: the actions the kernel has,
    the architectures this libseccomp can filter here, the flags the kernel takes."""
    from hutch.linux import libseccomp

    if libseccomp.lib is None:
        return {"enabled": False}
    supported = [name for name, bit in SECCOMP_FLAGS.items() if flag_supported(bit)]
    return {
        "enabled": True,
        "actions": sorted(name for name, value in SECCOMP_ACTIONS.items() if kernel.action_available(value)),
        "operators": sorted(SECCOMP_OPS),
        "archs": sorted(arch for arch in SECCOMP_ARCHES if _arch_usable(arch)),
        "knownFlags": sorted(SECCOMP_FLAGS),
        "supportedFlags": sorted(supported),
    }
