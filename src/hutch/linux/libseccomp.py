"""libseccomp (Debian's libseccomp2), through ctypes: it turns rules into a seccomp BPF program.

The library is loaded when this module is imported, so import it before pivot_root: afterwards the host's
libraries are out of reach. Loading the program into the kernel is linux/seccomp.py's job, not this one's.

Every libseccomp call returns a negative errno on failure; the wrappers raise OSError with that errno and
the call's name.
"""

import ctypes
import os

NR_SCMP_ERROR = -1  # what the resolvers return for a name they do not know
_SCMP_FLTATR_CTL_OPTIMIZE = 8  # enum scmp_filter_attr (libseccomp 2.5)


class ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp: `op` is an enum scmp_compare (SCMP_CMP_NE = 1 ... SCMP_CMP_MASKED_EQ = 7)."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_ArgCmpPtr = ctypes.POINTER(ArgCmp)

lib: ctypes.CDLL | None
load_error = ""
try:
    lib = ctypes.CDLL("libseccomp.so.2")
except OSError as e:
    lib = None
    load_error = f"cannot load libseccomp.so.2 (install libseccomp2): {e}"
else:
    _c = ctypes
    for _name, _restype, _argtypes in (
        ("seccomp_init", _c.c_void_p, [_c.c_uint32]),
        ("seccomp_release", None, [_c.c_void_p]),
        ("seccomp_arch_add", _c.c_int, [_c.c_void_p, _c.c_uint32]),
        ("seccomp_arch_native", _c.c_uint32, []),
        ("seccomp_arch_resolve_name", _c.c_uint32, [_c.c_char_p]),
        ("seccomp_syscall_resolve_name", _c.c_int, [_c.c_char_p]),
        ("seccomp_rule_add_array", _c.c_int, [_c.c_void_p, _c.c_uint32, _c.c_int, _c.c_uint, _ArgCmpPtr]),
        ("seccomp_export_bpf", _c.c_int, [_c.c_void_p, _c.c_int]),
        ("seccomp_version", _c.POINTER(_Version), []),
        ("seccomp_attr_set", _c.c_int, [_c.c_void_p, _c.c_int, _c.c_uint32]),
    ):
        _fn = getattr(lib, _name)
        _fn.restype = _restype
        _fn.argtypes = _argtypes


def _lib() -> ctypes.CDLL:
    if lib is None:
        raise OSError(2, load_error)
    return lib


def _check(rc: int, name: str, detail: str = "") -> int:
    if rc < 0:
        where = f"{name}({detail})" if detail else name
        raise OSError(-rc, f"{where}: {os.strerror(-rc)}")
    return rc


def version() -> tuple[int, int, int]:
    v = _lib().seccomp_version().contents
    return v.major, v.minor, v.micro


def arch_native() -> int:
    return int(_lib().seccomp_arch_native())


def arch_resolve(name: str) -> int:
    """The token of an architecture named as libseccomp names it ("x86_64", "x32", ...); 0 if unknown."""
    return int(_lib().seccomp_arch_resolve_name(name.encode()))


def syscall_resolve(name: str) -> int:
    """The native number of syscall `name`: negative for a pseudo syscall (one that exists on another
    architecture only), NR_SCMP_ERROR for a name libseccomp does not know."""
    return int(_lib().seccomp_syscall_resolve_name(name.encode()))


class Filter:
    """A filter being built (scmp_filter_ctx); release() it when done."""

    __slots__ = ("_ctx", "_lib")

    def __init__(self, default_action: int) -> None:
        self._lib = _lib()
        ctx = self._lib.seccomp_init(default_action)
        if not ctx:
            raise OSError(22, f"seccomp_init({default_action:#x}): invalid default action")
        self._ctx = ctx

    def release(self) -> None:
        if self._ctx:
            self._lib.seccomp_release(self._ctx)
            self._ctx = None

    def sort_as_tree(self) -> None:
        """Lay the syscalls out as a binary tree (libseccomp 2.5's optimize level 2) instead of a list; a
        libseccomp before 2.5 refuses the attribute and keeps the list, which is as correct."""
        self._lib.seccomp_attr_set(self._ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2)

    def add_arch(self, token: int) -> None:
        """Add an architecture; one already present (the native one always is) is fine."""
        rc = self._lib.seccomp_arch_add(self._ctx, token)
        if rc != -17:  # EEXIST
            _check(rc, "seccomp_arch_add", f"{token:#x}")

    def add_rule(self, action: int, syscall: int, conditions: "ctypes.Array[ArgCmp] | None" = None) -> None:
        """Add a rule; its conditions (an ArgCmp array) are ANDed."""
        count = len(conditions) if conditions is not None else 0
        _check(
            self._lib.seccomp_rule_add_array(self._ctx, action, syscall, count, conditions),
            "seccomp_rule_add",
            str(syscall),
        )

    def export_bpf(self) -> bytes:
        """The filter as the kernel takes it: an array of struct sock_filter (8 bytes each)."""
        fd = os.memfd_create("hutch-seccomp", os.MFD_CLOEXEC)
        try:
            _check(self._lib.seccomp_export_bpf(self._ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_CUR)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
