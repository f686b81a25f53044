"""bpf(2): load a program, attach it to a cgroup, list and detach what is attached there.

Only what cgroup device programs need. `union bpf_attr` is packed by hand, field offsets as in
include/uapi/linux/bpf.h; the kernel accepts a shorter attr than its own as long as the rest would be zero.
"""

import struct

from hutch.linux import cdata
from hutch.linux.libc import syscall

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

_ATTR_SIZE = 128  # comfortably covers every field we set (the PROG_LOAD ones end at 72)


def _bpf(cmd: int, attr: cdata.Array[cdata.c_char], what: str) -> int:
    return syscall("bpf", cdata.c_long(cmd), attr, cdata.c_uint(_ATTR_SIZE), detail=what)


def _attr(fmt: str, *values: object) -> cdata.Array[cdata.c_char]:
    buf = cdata.create_string_buffer(_ATTR_SIZE)
    struct.pack_into(fmt, buf, 0, *values)
    return buf


def prog_load(prog_type: int, insns: bytes, license: str = "Apache", log_size: int = 1 << 16) -> int:
    """Load a program; returns its fd. On a verifier error the OSError's message carries the verifier log."""
    code = cdata.create_string_buffer(insns, len(insns))
    lic = cdata.create_string_buffer(license.encode())
    log = cdata.create_string_buffer(log_size)
    # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf
    attr = _attr(
        "=IIQQIIQ",
        prog_type,
        len(insns) // 8,
        cdata.addressof(code),
        cdata.addressof(lic),
        1,
        log_size,
        cdata.addressof(log),
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD")
    except OSError as e:
        text = log.value.decode(errors="replace").strip()
        if text:
            raise OSError(e.errno, f"{e.strerror}; verifier: {text[-400:]}") from None
        raise


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    """Attach a loaded program to the cgroup open at `target_fd`."""
    _bpf(BPF_PROG_ATTACH, _attr("=IIII", target_fd, prog_fd, attach_type, flags), "BPF_PROG_ATTACH")


def prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    _bpf(BPF_PROG_DETACH, _attr("=III", target_fd, prog_fd, attach_type), "BPF_PROG_DETACH")


def prog_query(target_fd: int, attach_type: int, max_ids: int = 64) -> list[int]:
    """The ids of the programs attached directly to the cgroup open at `target_fd`."""
    ids = (cdata.c_uint32 * max_ids)()
    # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt
    attr = _attr("=IIIIQI", target_fd, attach_type, 0, 0, cdata.addressof(ids), max_ids)
    _bpf(BPF_PROG_QUERY, attr, "BPF_PROG_QUERY")
    (count,) = struct.unpack_from("=I", attr, 24)
    return [int(ids[i]) for i in range(min(count, max_ids))]


def prog_get_fd_by_id(prog_id: int) -> int:
    return _bpf(BPF_PROG_GET_FD_BY_ID, _attr("=I", prog_id), "BPF_PROG_GET_FD_BY_ID")
