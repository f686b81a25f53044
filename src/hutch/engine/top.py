"""podman top: the container's processes as a ps-like table, with psgo's descriptors (podman's default
`user pid ppid pcpu etime tty time args`). PIDs are those the container sees (its PID namespace, from
NSpid), `hpid`/`hppid` the host's; USER and GROUP come from the container's own /etc/passwd and /etc/group.
"""

from __future__ import annotations

import os
import time

from hutch.errors import HutchError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record

DEFAULT = ("user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args")
# psgo's AIX format codes (`%U`), as podman top takes them.
_AIX = {
    "%C": "pcpu", "%G": "group", "%P": "ppid", "%U": "user", "%a": "args", "%c": "comm", "%g": "rgroup",
    "%n": "nice", "%p": "pid", "%r": "pgid", "%t": "etime", "%u": "ruser", "%x": "time", "%y": "tty",
    "%z": "vsz",
}  # fmt: skip


class Proc:
    """One process of the container, read from the host's /proc."""

    def __init__(self, hpid: int) -> None:
        self.hpid = hpid
        with open(f"/proc/{hpid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        self.comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2 :].split()
        self.state = rest[0]
        self.hppid = int(rest[1])
        self.pgid, self.tty_nr = int(rest[2]), int(rest[4])
        self.utime, self.stime = int(rest[11]), int(rest[12])
        self.nice, self.start = int(rest[16]), int(rest[19])
        self.vsz, self.rss = int(rest[20]), int(rest[21])
        with open(f"/proc/{hpid}/cmdline", "rb") as f:
            argv = f.read().rstrip(b"\0").split(b"\0")
        self.args = " ".join(a.decode(errors="replace") for a in argv if a) or f"[{self.comm}]"
        self.ids: dict[str, list[int]] = {}
        with open(f"/proc/{hpid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("Uid", "Gid", "NSpid"):
                    self.ids[key] = [int(x) for x in value.split()]
        self.pid = self.ids["NSpid"][-1]


def processes(engine: Engine, rec: Record) -> list[Proc]:
    """The container's live processes, in pid order."""
    if rec.state not in ("running", "paused"):
        raise StateError(f"top can only be used on running containers: {rec.id} is {rec.state}")
    out = []
    for hpid in sorted(_pids(engine, rec)):
        try:
            out.append(Proc(hpid))
        except (OSError, KeyError, IndexError, ValueError):
            continue  # exited meanwhile
    return out


def _pids(engine: Engine, rec: Record) -> list[int]:
    """The host pids of the container's processes (its cgroup's), from its runtime."""
    from hutch.engine import foreign_ops
    from hutch.errors import NotFoundError
    from hutch.runtime import container, lifecycle

    other = foreign_ops.cli_runtime(rec)
    if other is not None:
        return foreign_ops.pids(other, rec.id)
    try:
        c = container.load(engine.runtime_root, rec.id)
    except NotFoundError:
        raise StateError(f"top can only be used on running containers: {rec.id} is not running") from None
    return lifecycle.container_pids(c)


def descriptors(words: list[str]) -> list[str]:
    """podman top's descriptor arguments (`pid,user args`, `%p %U`); the default when none."""
    out: list[str] = []
    for word in words:
        for d in word.replace(",", " ").split():
            d = _AIX.get(d, d)
            if d not in _COLUMNS:
                known = ", ".join(sorted(_COLUMNS))
                raise HutchError(f"unknown descriptor: {d}: top accepts the descriptors {known}")
            out.append(d)
    return out or list(DEFAULT)


def table(engine: Engine, rec: Record, wanted: list[str]) -> list[list[str]]:
    """The header and one row per process, for the descriptors `wanted`."""
    procs = processes(engine, rec)
    ctx = _Context(engine, rec, procs)
    rows = [[_COLUMNS[d][0] for d in wanted]]
    for p in procs:
        rows.append([_COLUMNS[d][1](p, ctx) for d in wanted])
    return rows


class _Context:
    """What several columns share: clock ticks, boot time, the container's users and groups."""

    def __init__(self, engine: Engine, rec: Record, procs: list[Proc]) -> None:
        self.ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as f:
            self.boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        self.now = time.time()
        self.in_ns = {p.hpid: p.pid for p in procs}
        self.rootfs = engine.path(rec, "merged")
        self._names: dict[str, dict[int, str]] = {}

    def name(self, db: str, ident: int) -> str:
        if db not in self._names:
            self._names[db] = _id_names(self.rootfs, db)
        return self._names[db].get(ident, str(ident))

    def elapsed(self, p: Proc) -> float:
        return max(0.0, self.now - (self.boot + p.start / self.ticks))

    def cpu(self, p: Proc) -> float:
        return (p.utime + p.stime) / self.ticks


def _id_names(rootfs: str, db: str) -> dict[int, str]:
    """uid or gid -> name from the container's /etc/passwd or /etc/group (read inside its rootfs)."""
    from hutch.runtime import inroot

    out: dict[int, str] = {}
    try:
        root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = inroot.open_path(root, f"/etc/{db}", os.O_RDONLY)
        finally:
            os.close(root)
        with open(fd, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) > 2 and fields[2].isdigit():
                    out.setdefault(int(fields[2]), fields[0])
    except OSError:
        pass
    return out


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it (`1h2m3.5s`, `4.2s`, `0s`)."""
    if seconds <= 0:
        return "0s"
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    text = f"{s:.9f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{int(h)}h{int(m)}m{text}"
    if m:
        return f"{int(m)}m{text}"
    return text


def _tty(p: Proc) -> str:
    if p.tty_nr == 0:
        return "?"
    major, minor = os.major(p.tty_nr), os.minor(p.tty_nr)
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4 and minor < 64:
        return f"tty{minor}"
    return f"{major}:{minor}"


def _pcpu(p: Proc, c: _Context) -> str:
    elapsed = c.elapsed(p)
    return f"{100 * c.cpu(p) / elapsed:.3f}" if elapsed > 0 else "0.000"


_Column = tuple[str, "Callable[[Proc, _Context], str]"]
_COLUMNS: dict[str, _Column] = {
    "args": ("COMMAND", lambda p, c: p.args),
    "comm": ("COMMAND", lambda p, c: p.comm),
    "etime": ("ELAPSED", lambda p, c: go_duration(c.elapsed(p))),
    "group": ("GROUP", lambda p, c: c.name("group", p.ids["Gid"][1])),
    "rgroup": ("RGROUP", lambda p, c: c.name("group", p.ids["Gid"][0])),
    "user": ("USER", lambda p, c: c.name("passwd", p.ids["Uid"][1])),
    "ruser": ("RUSER", lambda p, c: c.name("passwd", p.ids["Uid"][0])),
    "uid": ("UID", lambda p, c: str(p.ids["Uid"][1])),
    "gid": ("GID", lambda p, c: str(p.ids["Gid"][1])),
    "nice": ("NI", lambda p, c: str(p.nice)),
    "pcpu": ("%CPU", _pcpu),
    "pgid": ("PGID", lambda p, c: str(p.pgid)),
    "pid": ("PID", lambda p, c: str(p.pid)),
    "ppid": ("PPID", lambda p, c: str(c.in_ns.get(p.hppid, 0))),
    "hpid": ("HPID", lambda p, c: str(p.hpid)),
    "hppid": ("HPPID", lambda p, c: str(p.hppid)),
    "state": ("STATE", lambda p, c: p.state),
    "time": ("TIME", lambda p, c: go_duration(float(int(c.cpu(p))))),
    "tty": ("TTY", lambda p, c: _tty(p)),
    "vsz": ("VSZ", lambda p, c: str(p.vsz // 1024)),
    "rss": ("RSS", lambda p, c: str(p.rss * os.sysconf("SC_PAGE_SIZE") // 1024)),
}
