"""seccomp(2): loading a BPF filter with flags, asking what the kernel supports, and user notifications.

The filter program itself comes from libseccomp (linux/libseccomp.py); loading it here, rather than with
seccomp_load(), gives every flag the kernel has (WAIT_KILLABLE_RECV needs libseccomp 2.6 otherwise) and the
listener fd of SECCOMP_FILTER_FLAG_NEW_LISTENER straight from the syscall.
"""

from hutch.linux import cdata
from hutch.linux.libc import libc, syscall, syscall_number

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2

FILTER_FLAG_TSYNC = 1 << 0
FILTER_FLAG_LOG = 1 << 1
FILTER_FLAG_SPEC_ALLOW = 1 << 2
FILTER_FLAG_NEW_LISTENER = 1 << 3
FILTER_FLAG_TSYNC_ESRCH = 1 << 4
FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5

# User notifications (Linux 5.0+): the ioctls on a listener fd, and their structs (struct is imported by the
# agent's calls only: every container's init loads a filter through this module).
# struct seccomp_notif { u64 id; u32 pid; u32 flags; struct seccomp_data { int nr; u32 arch;
#   u64 instruction_pointer; u64 args[6]; } data; }
# struct seccomp_notif_resp { u64 id; s64 val; s32 error; u32 flags; }
_NOTIF = "=QIIiIQ6Q"  # 80 bytes
_NOTIF_RESP = "=QqiI"  # 24 bytes
IOCTL_NOTIF_RECV = 0xC0000000 | (80 << 16) | (ord("!") << 8) | 0
IOCTL_NOTIF_SEND = 0xC0000000 | (24 << 16) | (ord("!") << 8) | 1
USER_NOTIF_FLAG_CONTINUE = 1


class SockFprog(cdata.Structure):
    """struct sock_fprog: `len` counts instructions (8 bytes each), at most 4096."""

    _fields_ = [("len", cdata.c_ushort), ("filter", cdata.c_void_p)]


class Program:
    """A BPF program ready to load: its bytes stay alive as long as the object does."""

    __slots__ = ("_buf", "fprog")

    def __init__(self, code: bytes) -> None:
        self._buf = cdata.create_string_buffer(code, len(code))
        self.fprog = SockFprog(len(code) // 8, cdata.addressof(self._buf))

    def __len__(self) -> int:
        return int(self.fprog.len)

    def code(self) -> bytes:
        return self._buf.raw


def set_mode_filter(program: Program, flags: int) -> int:
    """Install the filter on the calling thread (on every thread with TSYNC). Returns the listener fd with
    FILTER_FLAG_NEW_LISTENER, else 0. Needs no_new_privs or CAP_SYS_ADMIN."""
    return syscall(
        "seccomp",
        cdata.c_uint(SECCOMP_SET_MODE_FILTER),
        cdata.c_uint(flags),
        cdata.byref(program.fprog),
        detail=f"SECCOMP_SET_MODE_FILTER, {flags:#x}",
    )


def action_available(action: int) -> bool:
    """Whether the kernel knows a SECCOMP_RET_* action (its data bits ignored)."""
    value = cdata.c_uint32(action & 0xFFFF0000)
    rc = libc.syscall(
        syscall_number("seccomp"), cdata.c_uint(SECCOMP_GET_ACTION_AVAIL), 0, cdata.byref(value)
    )
    return bool(rc == 0)


def flags_supported(flags: int) -> bool:
    """Whether the kernel accepts these filter flags together: it checks them before it reads the program,
    so a NULL program fails with EFAULT when they are fine and EINVAL when they are not."""
    rc = libc.syscall(
        syscall_number("seccomp"), cdata.c_uint(SECCOMP_SET_MODE_FILTER), cdata.c_uint(flags), None
    )
    return bool(rc == -1 and cdata.get_errno() == 14)  # EFAULT


class Notification:
    """A syscall a filter sent to user space: `pid` is as the listener's pid namespace sees it."""

    __slots__ = ("id", "pid", "flags", "nr", "arch", "instruction_pointer", "args")

    def __init__(self, raw: bytes) -> None:
        import struct

        fields = struct.unpack(_NOTIF, raw)
        self.id, self.pid, self.flags, self.nr, self.arch, self.instruction_pointer = fields[:6]
        self.args = fields[6:]


def notif_recv(listener_fd: int) -> Notification:
    """Wait for the next notification on a listener fd."""
    import fcntl

    buf = bytearray(80)
    fcntl.ioctl(listener_fd, IOCTL_NOTIF_RECV, buf)
    return Notification(bytes(buf))


def notif_send(listener_fd: int, notif_id: int, val: int = 0, error: int = 0, flags: int = 0) -> None:
    """Answer notification `notif_id`: the syscall returns `val`, or fails with errno `error` (a positive
    number), or with flags=USER_NOTIF_FLAG_CONTINUE runs as if the filter had allowed it."""
    import fcntl
    import struct

    buf = bytearray(struct.pack(_NOTIF_RESP, notif_id, val, -error if error > 0 else error, flags))
    fcntl.ioctl(listener_fd, IOCTL_NOTIF_SEND, buf)
