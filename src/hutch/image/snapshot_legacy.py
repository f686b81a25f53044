"""Overlay mounts through mount(2), for kernels before 6.8 (no `lowerdir+` in the new mount API; see
hutch.image.snapshot): the options as they are when they fit in a page, else with paths relative to the
layers' common parent, from a child process that chdirs there (the parent's working directory is left alone).
"""

from __future__ import annotations

import os

from hutch.errors import HostError
from hutch.linux.mount import mount

_PAGE = os.sysconf("SC_PAGESIZE")


def _options(lower_dirs: list[str], upper: str | None, work: str | None, volatile: bool) -> str:
    opts = "lowerdir=" + ":".join(d.replace("\\", "\\\\").replace(":", "\\:") for d in lower_dirs)
    if upper is not None and work is not None:
        opts += f",upperdir={upper},workdir={work}" + (",volatile" if volatile else "")
    return opts


def mount_legacy(
    lower_dirs: list[str], upper: str | None, work: str | None, target: str, volatile: bool
) -> None:
    lowers = [os.path.abspath(d) for d in lower_dirs]
    upper = os.path.abspath(upper) if upper is not None else None
    work = os.path.abspath(work) if work is not None else None
    target = os.path.abspath(target)
    opts = _options(lowers, upper, work, volatile)
    if len(opts) < _PAGE:
        mount("overlay", target, "overlay", 0, opts)
        return
    base = os.path.commonpath(lowers)
    rel = [os.path.relpath(d, base) for d in lowers]
    opts = _options(rel, upper, work, volatile)
    if len(opts) >= _PAGE:
        raise HostError(f"overlay on {target}: {len(lower_dirs)} layers do not fit in the mount options")
    pid = os.fork()
    if pid == 0:  # the child: only the mount, with the relative paths resolved from `base`
        code = 0
        try:
            os.chdir(base)
            mount("overlay", target, "overlay", 0, opts)
        except OSError as e:
            code = e.errno or 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise OSError(code, f"mount(overlay -> {target}, lowerdirs relative to {base}): {os.strerror(code)}")
