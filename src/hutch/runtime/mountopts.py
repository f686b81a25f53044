"""Mount options of the runtime spec, turned into mount(2) flags, propagation and mount_setattr(2) attributes."""

from hutch.linux import mount as m

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field

# option -> (flags to set, flags to clear)
_FLAGS: dict[str, tuple[int, int]] = {
    "async": (0, m.MS_SYNCHRONOUS),
    "atime": (0, m.MS_NOATIME),
    "bind": (m.MS_BIND, 0),
    "defaults": (0, 0),
    "dev": (0, m.MS_NODEV),
    "diratime": (0, m.MS_NODIRATIME),
    "dirsync": (m.MS_DIRSYNC, 0),
    "exec": (0, m.MS_NOEXEC),
    "lazytime": (m.MS_LAZYTIME, 0),
    "nolazytime": (0, m.MS_LAZYTIME),
    "loud": (0, m.MS_SILENT),
    "mand": (m.MS_MANDLOCK, 0),
    "nomand": (0, m.MS_MANDLOCK),
    "noatime": (m.MS_NOATIME, 0),
    "nodev": (m.MS_NODEV, 0),
    "nodiratime": (m.MS_NODIRATIME, 0),
    "noexec": (m.MS_NOEXEC, 0),
    "nosuid": (m.MS_NOSUID, 0),
    "nosymfollow": (m.MS_NOSYMFOLLOW, 0),
    "symfollow": (0, m.MS_NOSYMFOLLOW),
    "norelatime": (0, m.MS_RELATIME),
    "nostrictatime": (0, m.MS_STRICTATIME),
    "rbind": (m.MS_BIND | m.MS_REC, 0),
    "relatime": (m.MS_RELATIME, 0),
    "remount": (m.MS_REMOUNT, 0),
    "ro": (m.MS_RDONLY, 0),
    "rw": (0, m.MS_RDONLY),
    "silent": (m.MS_SILENT, 0),
    "strictatime": (m.MS_STRICTATIME, 0),
    "suid": (0, m.MS_NOSUID),
    "sync": (m.MS_SYNCHRONOUS, 0),
}

PROPAGATION: dict[str, int] = {
    "private": m.MS_PRIVATE,
    "rprivate": m.MS_PRIVATE | m.MS_REC,
    "shared": m.MS_SHARED,
    "rshared": m.MS_SHARED | m.MS_REC,
    "slave": m.MS_SLAVE,
    "rslave": m.MS_SLAVE | m.MS_REC,
    "unbindable": m.MS_UNBINDABLE,
    "runbindable": m.MS_UNBINDABLE | m.MS_REC,
}

# recursive option -> (attributes to set, attributes to clear), applied with mount_setattr(AT_RECURSIVE)
_RECURSIVE: dict[str, tuple[int, int]] = {
    "rro": (m.MOUNT_ATTR_RDONLY, 0),
    "rrw": (0, m.MOUNT_ATTR_RDONLY),
    "rnosuid": (m.MOUNT_ATTR_NOSUID, 0),
    "rsuid": (0, m.MOUNT_ATTR_NOSUID),
    "rnodev": (m.MOUNT_ATTR_NODEV, 0),
    "rdev": (0, m.MOUNT_ATTR_NODEV),
    "rnoexec": (m.MOUNT_ATTR_NOEXEC, 0),
    "rexec": (0, m.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (m.MOUNT_ATTR_NODIRATIME, 0),
    "rdiratime": (0, m.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (m.MOUNT_ATTR_NOSYMFOLLOW, 0),
    "rsymfollow": (0, m.MOUNT_ATTR_NOSYMFOLLOW),
    # The atime modes are one field: setting one clears the others.
    "rrelatime": (m.MOUNT_ATTR_RELATIME, m.MOUNT_ATTR__ATIME),
    "rnorelatime": (0, m.MOUNT_ATTR__ATIME),
    "rnoatime": (m.MOUNT_ATTR_NOATIME, m.MOUNT_ATTR__ATIME),
    "ratime": (0, m.MOUNT_ATTR_NOATIME),
    "rstrictatime": (m.MOUNT_ATTR_STRICTATIME, m.MOUNT_ATTR__ATIME),
    "rnostrictatime": (0, m.MOUNT_ATTR__ATIME),
}

# Flags a bind remount can change; everything else in the flags word is for the first mount(2) only.
BIND_REMOUNT_FLAGS = (
    m.MS_RDONLY
    | m.MS_NOSUID
    | m.MS_NODEV
    | m.MS_NOEXEC
    | m.MS_NOATIME
    | m.MS_NODIRATIME
    | m.MS_RELATIME
    | m.MS_STRICTATIME
    | m.MS_NOSYMFOLLOW
)

# mount(2) flag -> mount_setattr(2) attribute, for applying bind options to a detached tree.
FLAG_TO_ATTR: dict[int, int] = {
    m.MS_RDONLY: m.MOUNT_ATTR_RDONLY,
    m.MS_NOSUID: m.MOUNT_ATTR_NOSUID,
    m.MS_NODEV: m.MOUNT_ATTR_NODEV,
    m.MS_NOEXEC: m.MOUNT_ATTR_NOEXEC,
    m.MS_NODIRATIME: m.MOUNT_ATTR_NODIRATIME,
    m.MS_NOSYMFOLLOW: m.MOUNT_ATTR_NOSYMFOLLOW,
}


@dataclass(slots=True)
class MountOptions:
    flags: int = 0
    propagation: list[int] = field(default_factory=list)
    rec_set: int = 0
    rec_clr: int = 0
    data: list[str] = field(default_factory=list)
    idmap: bool = False
    recursive_idmap: bool = False
    # runc's extension for tmpfs: fill the new tmpfs with what the directory under it held.
    copy_up: bool = False

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & m.MS_BIND)

    def bind_attrs(self) -> tuple[int, int]:
        """(set, clear) mount_setattr attributes equivalent to the flags of a bind mount."""
        attr_set = 0
        for flag, attr in FLAG_TO_ATTR.items():
            if self.flags & flag:
                attr_set |= attr
        attr_clr = 0
        if self.flags & m.MS_NOATIME:
            attr_set, attr_clr = attr_set | m.MOUNT_ATTR_NOATIME, m.MOUNT_ATTR__ATIME
        elif self.flags & m.MS_STRICTATIME:
            attr_set, attr_clr = attr_set | m.MOUNT_ATTR_STRICTATIME, m.MOUNT_ATTR__ATIME
        return attr_set, attr_clr


def parse(options: list[str]) -> MountOptions:
    """Split spec mount options into flags, propagation, recursive attributes and fs data."""
    out = MountOptions()
    for opt in options:
        if opt in _FLAGS:
            set_, clr = _FLAGS[opt]
            out.flags = (out.flags | set_) & ~clr
        elif opt in PROPAGATION:
            out.propagation.append(PROPAGATION[opt])
        elif opt in _RECURSIVE:
            set_, clr = _RECURSIVE[opt]
            out.rec_set = (out.rec_set & ~clr) | set_
            out.rec_clr = (out.rec_clr & ~set_) | clr
        elif opt == "idmap":
            out.idmap = True
        elif opt == "ridmap":
            out.idmap = out.recursive_idmap = True
        elif opt in ("tmpcopyup", "notmpcopyup"):
            out.copy_up = opt == "tmpcopyup"
        else:
            out.data.append(opt)
    return out
