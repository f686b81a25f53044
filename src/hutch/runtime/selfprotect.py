"""Keep the container from overwriting the runtime's own interpreter (CVE-2019-5736 and its kin).

A container can make the runtime exec `/proc/self/exe` inside it (a `#!/proc/self/exe` script, a symlink to
it), hold that file, and write to it once the runtime exits: the host's interpreter would then be the
attacker's. runc answers by running from a sealed copy; hutch answers with the same effect, cheaper: it runs
from its own copy of the interpreter (`.venv/bin/hutch-python`, made by scripts/write-launcher) and, before
it enters any container, makes sure that copy sits on a read-only bind mount of itself. Every later open for
writing, through /proc/PID/exe or an fd to it, then fails with EROFS. The first command after boot makes the
mount and re-executes itself from it; later ones cost one statvfs.
"""

import os
import sys

from hutch.errors import HostError

_ST_RDONLY = 1
_REEXEC_MARK = "_HUTCH_REEXEC"


def exe_is_sealed() -> bool:
    """Whether our executable is on a read-only mount (statvfs follows /proc/self/exe to the file)."""
    return bool(os.statvfs("/proc/self/exe").f_flag & _ST_RDONLY)


def ensure_sealed() -> None:
    """Return once our own executable cannot be written; may re-exec this process to get there."""
    if exe_is_sealed():
        os.environ.pop(_REEXEC_MARK, None)
        return
    if os.geteuid() != 0:
        return  # an unprivileged runtime uses a user namespace, in which the host's files are not writable
    if os.environ.get(_REEXEC_MARK):
        raise HostError(
            "cannot protect the runtime's interpreter: the read-only bind mount did not take effect"
        )
    from hutch.linux import mount as m

    exe = os.readlink("/proc/self/exe")
    try:
        m.mount(exe, exe, None, m.MS_BIND)
        m.mount(None, exe, None, m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY | m.MS_NOSUID | m.MS_NODEV)
    except OSError as e:
        raise HostError(
            f"cannot protect the runtime's interpreter {exe} with a read-only mount: {e.strerror}"
        ) from None
    os.environ[_REEXEC_MARK] = "1"
    os.execv(exe, sys.orig_argv)
