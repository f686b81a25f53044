"""Layer unpacking on the real filesystem: metadata kept, whiteouts converted, hostile archives refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from hutch.image.layers import LayerError, unpack
from hutch.image.snapshot import mount_rootfs, unmount

TAR = "application/vnd.oci.image.layer.v1.tar"
TGZ = "application/vnd.oci.image.layer.v1.tar+gzip"
ZST = "application/vnd.oci.image.layer.v1.tar+zstd"

T_DIR = 1_600_000_000
T_FILE = 1_500_000_000
T_LINK = 1_400_000_000

# security.capability, VFS_CAP_REVISION_2, effective, permitted = CAP_NET_BIND_SERVICE (bit 10).
CAP_NET_BIND = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)

Add = Callable[..., None]


def build(fill: Callable[[Add], None]) -> bytes:
    """A pax tar made by `fill(add)`; add(name, type=REGTYPE, data=b"", **TarInfo fields)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:

        def add(name: str, type: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: object) -> None:
            ti = tarfile.TarInfo(name)
            ti.type = type
            ti.mode = 0o755 if type == tarfile.DIRTYPE else 0o644
            ti.mtime = T_DIR if type == tarfile.DIRTYPE else T_FILE
            for key, value in fields.items():
                setattr(ti, key, value)
            if type == tarfile.REGTYPE:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)

        fill(add)
    return buf.getvalue()


def rich_layer(add: Add) -> None:
    add("./", tarfile.DIRTYPE, mode=0o750, mtime=T_DIR - 1)
    add("etc", tarfile.DIRTYPE)
    add("etc/conf", data=b"hello\n", uid=1000, gid=1001, mode=0o640)
    add("etc/hard", tarfile.LNKTYPE, linkname="etc/conf")
    add("etc/link", tarfile.SYMTYPE, linkname="conf", uid=7, gid=8, mtime=T_LINK)
    add(
        "etc/attr",
        data=b"x",
        pax_headers={
            "SCHILY.xattr.user.color": "blue",
            "SCHILY.xattr.trusted.k": "v",
            "SCHILY.xattr.trusted.overlay.redirect": "/etc",
        },
    )
    add("usr/bin/su", data=b"#!/bin/sh\n", mode=0o4755)
    add("usr/bin/ping", data=b"\x7fELF", mode=0o755, pax_headers={"SCHILY.xattr.security.capability": ""})
    add("tmp", tarfile.DIRTYPE, mode=0o1777, uid=3, gid=4, mtime=T_DIR + 5)
    add("tmp/fifo", tarfile.FIFOTYPE, mode=0o620)
    add("./rel/./dotted", data=b"d")


def with_cap(add: Add) -> None:
    """rich_layer, with the binary capability put in (tarfile writes it as a BINARY pax header)."""

    def patched(name: str, type: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: object) -> None:
        if name == "usr/bin/ping":
            fields["pax_headers"] = {
                "SCHILY.xattr.security.capability": CAP_NET_BIND.decode("utf-8", "surrogateescape")
            }
        add(name, type, data, **fields)

    rich_layer(patched)


def test_metadata_is_kept(tmp_path: Path) -> None:
    raw = build(with_cap)
    dest = tmp_path / "layer"
    stats = unpack(io.BytesIO(raw), TAR, str(dest))
    assert stats.files == 11
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o750
    assert os.stat(dest).st_mtime == T_DIR - 1

    conf = os.stat(dest / "etc/conf")
    assert (conf.st_uid, conf.st_gid, stat.S_IMODE(conf.st_mode)) == (1000, 1001, 0o640)
    assert conf.st_mtime == T_FILE
    assert (dest / "etc/conf").read_bytes() == b"hello\n"
    assert conf.st_nlink == 2
    assert os.stat(dest / "etc/hard").st_ino == conf.st_ino

    link = os.lstat(dest / "etc/link")
    assert stat.S_ISLNK(link.st_mode)
    assert os.readlink(dest / "etc/link") == "conf"
    assert (link.st_uid, link.st_gid, link.st_mtime) == (7, 8, T_LINK)

    assert os.getxattr(dest / "etc/attr", "user.color") == b"blue"
    assert os.getxattr(dest / "etc/attr", "trusted.k") == b"v"
    # overlayfs' own xattrs are never taken from the archive.
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "etc/attr")

    su = os.stat(dest / "usr/bin/su")
    assert stat.S_IMODE(su.st_mode) == 0o4755
    assert os.getxattr(dest / "usr/bin/ping", "security.capability") == CAP_NET_BIND

    tmp = os.stat(dest / "tmp")
    assert stat.S_IMODE(tmp.st_mode) == 0o1777
    assert (tmp.st_uid, tmp.st_gid) == (3, 4)
    # The directory's mtime is set after its children were made.
    assert tmp.st_mtime == T_DIR + 5
    assert os.stat(dest / "etc").st_mtime == T_DIR
    fifo = os.lstat(dest / "tmp/fifo")
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620

    # Parents that the tar does not list are made, and "./" prefixes are dropped.
    assert (dest / "rel/dotted").read_bytes() == b"d"
    assert stat.S_IMODE(os.stat(dest / "usr/bin").st_mode) == 0o755


@pytest.mark.parametrize("media_type", [TAR, TGZ, "application/vnd.docker.image.rootfs.diff.tar.gzip"])
def test_diff_id_is_sha256_of_the_raw_tar(tmp_path: Path, media_type: str) -> None:
    raw = build(rich_layer)
    blob = raw if media_type == TAR else gzip.compress(raw)
    stats = unpack(io.BytesIO(blob), media_type, str(tmp_path / "layer"))
    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert stats.size == len(raw)
    assert (tmp_path / "layer/etc/conf").read_bytes() == b"hello\n"


def test_concatenated_gzip_members_are_one_stream(tmp_path: Path) -> None:
    raw = build(rich_layer)
    blob = gzip.compress(raw[:1000]) + gzip.compress(raw[1000:])
    stats = unpack(io.BytesIO(blob), TGZ, str(tmp_path / "layer"))
    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_truncated_gzip_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    blob = gzip.compress(build(rich_layer))
    dest = tmp_path / "layer"
    with pytest.raises(LayerError, match="layer sha256:abc"):
        unpack(io.BytesIO(blob[: len(blob) // 2]), TGZ, str(dest), layer="sha256:abc")
    assert not dest.exists()


@pytest.mark.parametrize("inflate", ["isal", "zlib"])
def test_both_gunzips_unpack_alike_and_refuse_corrupt_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inflate: str
) -> None:
    """ISA-L (python-isal) when installed, zlib without it: the same layer, diff_id, and a corrupt stream is
    a LayerError that leaves nothing behind."""
    import zlib

    from hutch.image import layers

    if inflate == "zlib":
        monkeypatch.setattr(layers, "_gunzip", lambda: zlib.decompressobj(wbits=31))
    else:
        from isal import isal_zlib

        monkeypatch.setattr(layers, "_gunzip", lambda: isal_zlib.decompressobj(wbits=31))
    raw = build(rich_layer)
    blob = gzip.compress(raw, mtime=0)
    stats = unpack(io.BytesIO(blob), TGZ, str(tmp_path / "layer"))
    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (tmp_path / "layer/etc/conf").read_bytes() == b"hello\n"
    corrupt = blob[:20] + bytes(b ^ 0xFF for b in blob[20:60]) + blob[60:]
    dest = tmp_path / "bad"
    with pytest.raises(LayerError, match="layer sha256:bad"):
        unpack(io.BytesIO(corrupt), TGZ, str(dest), layer="sha256:bad")
    assert not dest.exists()


def test_zstd_layer(tmp_path: Path) -> None:
    import zstandard

    raw = build(rich_layer)
    blob = zstandard.ZstdCompressor().compress(raw)
    stats = unpack(io.BytesIO(blob), ZST, str(tmp_path / "layer"))
    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (tmp_path / "layer").is_dir()


def test_unknown_media_type(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="unsupported media type"):
        unpack(io.BytesIO(b""), "application/x-rar", str(tmp_path / "layer"))


def test_destination_must_be_new_or_empty(tmp_path: Path) -> None:
    dest = tmp_path / "layer"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    with pytest.raises(LayerError, match="not an empty directory"):
        unpack(io.BytesIO(build(rich_layer)), TAR, str(dest))
    assert (dest / "keep").read_text() == "mine"


# Whiteouts and opaque directories, then seen through an overlay.


def lower(add: Add) -> None:
    add("a", tarfile.DIRTYPE)
    add("a/gone", data=b"1")
    add("a/kept", data=b"2")
    add("d", tarfile.DIRTYPE)
    add("d/old", data=b"3")
    add("d/sub", tarfile.DIRTYPE)
    add("d/sub/deep", data=b"4")


def middle(add: Add) -> None:
    add("a", tarfile.DIRTYPE)
    add("a/.wh.gone")
    add("d", tarfile.DIRTYPE)
    add("d/.wh..wh..opq")
    add("d/new", data=b"5")


def top(add: Add) -> None:
    add("top", data=b"top")


def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    dest = tmp_path / "middle"
    unpack(io.BytesIO(build(middle)), TAR, str(dest))
    wh = os.lstat(dest / "a/gone")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert not (dest / "a/.wh.gone").exists()
    assert os.getxattr(dest / "d", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(dest / "d")) == ["new"]


def test_overlay_of_layers_hides_what_was_whited_out(tmp_path: Path) -> None:
    dirs = []
    for name, fill in (("top", top), ("middle", middle), ("lower", lower)):
        unpack(io.BytesIO(gzip.compress(build(fill))), TGZ, str(tmp_path / name))
        dirs.append(str(tmp_path / name))
    for d in ("upper", "work", "root"):
        (tmp_path / d).mkdir()
    root = tmp_path / "root"
    mount_rootfs(dirs, str(tmp_path / "upper"), str(tmp_path / "work"), str(root))
    try:
        assert sorted(os.listdir(root / "a")) == ["kept"]
        assert sorted(os.listdir(root / "d")) == ["new"]
        assert (root / "top").read_text() == "top"
        assert (root / "a/kept").read_text() == "2"
    finally:
        unmount(str(root))


# Hostile archives: each is refused, nothing is written outside the destination, and the destination is gone.


def hostile_cases(outside: Path) -> dict[str, tuple[Callable[[Add], None], str]]:
    """name: (fill, the entry the error must name)."""
    return {
        "dotdot": (lambda add: add("../x", data=b"evil"), "../x"),
        "dotdot-inner": (lambda add: add("a/../../x", data=b"evil"), "a/../../x"),
        "absolute": (lambda add: add(str(outside / "abs"), data=b"evil"), str(outside / "abs")),
        "symlink-absolute": (
            lambda add: (
                add("evil", tarfile.SYMTYPE, linkname=str(outside)),
                add("evil/file", data=b"evil"),
            ),
            "evil/file",
        ),
        "symlink-relative": (
            lambda add: (
                add("evil", tarfile.SYMTYPE, linkname="../" * 12 + str(outside).lstrip("/")),
                add("evil/file", data=b"evil"),
            ),
            "evil/file",
        ),
        "symlink-chain": (
            lambda add: (
                add("a", tarfile.SYMTYPE, linkname="b"),
                add("b", tarfile.SYMTYPE, linkname=str(outside)),
                add("a/file", data=b"evil"),
            ),
            "a/file",
        ),
        "hardlink-absolute": (lambda add: add("pw", tarfile.LNKTYPE, linkname="/etc/passwd"), "pw"),
        "hardlink-dotdot": (lambda add: add("out", tarfile.LNKTYPE, linkname="../../outside/secret"), "out"),
        "hardlink-via-symlink": (
            lambda add: (
                add("etc", tarfile.SYMTYPE, linkname="/etc"),
                add("pw", tarfile.LNKTYPE, linkname="etc/passwd"),
            ),
            "pw",
        ),
        "hardlink-root": (lambda add: add("r", tarfile.LNKTYPE, linkname="./"), "r"),
        "chardev": (
            lambda add: add("mem", tarfile.CHRTYPE, devmajor=1, devminor=1, mode=0o666),
            "mem",
        ),
        "blockdev": (lambda add: add("sda", tarfile.BLKTYPE, devmajor=8, devminor=0), "sda"),
    }


CASES = sorted(hostile_cases(Path("/x")))


def snapshot_of(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else b"" for p in path.rglob("*")}


@pytest.mark.parametrize("case", CASES)
def test_hostile_tar_is_refused(tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("sentinel")
    before = snapshot_of(outside)
    fill, entry = hostile_cases(outside)[case]
    dest = tmp_path / "a" / "b" / "layer"
    dest.parent.mkdir(parents=True)
    with pytest.raises(LayerError) as err:
        unpack(io.BytesIO(build(fill)), TAR, str(dest), layer="sha256:feed")
    msg = str(err.value)
    assert "\n" not in msg
    assert "layer sha256:feed" in msg and repr(entry) in msg
    assert not dest.exists()
    assert snapshot_of(outside) == before
    assert os.listdir(dest.parent) == []
    assert os.stat("/etc/passwd").st_nlink == 1


def test_devices_when_allowed(tmp_path: Path) -> None:
    raw = build(lambda add: add("null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666))
    unpack(io.BytesIO(raw), TAR, str(tmp_path / "layer"), allow_devices=True)
    st = os.lstat(tmp_path / "layer/null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666


def test_a_later_entry_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "target"
    target.write_text("sentinel")

    def fill(add: Add) -> None:
        add("f", tarfile.SYMTYPE, linkname=str(target))
        add("f", data=b"evil")

    unpack(io.BytesIO(build(fill)), TAR, str(tmp_path / "layer"))
    assert target.read_text() == "sentinel"
    assert not os.path.islink(tmp_path / "layer/f")
    assert (tmp_path / "layer/f").read_bytes() == b"evil"


def test_symlinked_parent_inside_the_layer_is_followed(tmp_path: Path) -> None:
    def fill(add: Add) -> None:
        add("usr/lib", tarfile.DIRTYPE)
        add("lib", tarfile.SYMTYPE, linkname="usr/lib")
        add("lib/libc.so", data=b"c")

    unpack(io.BytesIO(build(fill)), TAR, str(tmp_path / "layer"))
    assert (tmp_path / "layer/usr/lib/libc.so").read_bytes() == b"c"


def test_a_directory_replaced_by_a_symlink_is_not_followed_at_the_end(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    before = os.stat(outside / "sub").st_mtime

    def fill(add: Add) -> None:
        add("d", tarfile.DIRTYPE)
        add("d/sub", tarfile.DIRTYPE)
        add("d", tarfile.SYMTYPE, linkname=str(outside))

    unpack(io.BytesIO(build(fill)), TAR, str(tmp_path / "layer"))
    assert os.readlink(tmp_path / "layer/d") == str(outside)
    assert os.stat(outside / "sub").st_mtime == before


# The tar formats layers come in (hutch.image.tarstream), each unpacked as GNU tar would.


def build_format(fill: Callable[[Add], None], fmt: int, **tar_args: object) -> bytes:
    """build(), in tarfile's `fmt` (GNU_FORMAT, USTAR_FORMAT or PAX_FORMAT)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, **tar_args) as tf:  # type: ignore[call-overload]

        def add(name: str, type: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: object) -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = type, 0o644, T_FILE
            for key, value in fields.items():
                setattr(ti, key, value)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data else None)

        fill(add)
    return buf.getvalue()


LONG = "/".join(["d" * 60] * 3) + "/" + "f" * 80  # past ustar's 100 + 155


def test_gnu_long_names_links_and_base256_ids(tmp_path: Path) -> None:
    def fill(add: Add) -> None:
        add(LONG, data=b"long", uid=3_000_000, gid=2_500_000)  # past the octal field: base-256
        add("short-link", tarfile.SYMTYPE, linkname=LONG)
        add("hard", tarfile.LNKTYPE, linkname=LONG)

    raw = build_format(fill, tarfile.GNU_FORMAT)
    assert b"././@LongLink" in raw  # GNU long name records
    dest = tmp_path / "layer"
    assert unpack(io.BytesIO(raw), TAR, str(dest)).files == 3
    st = os.stat(dest / LONG)
    assert (dest / LONG).read_bytes() == b"long" and (st.st_uid, st.st_gid) == (3_000_000, 2_500_000)
    assert os.readlink(dest / "short-link") == LONG
    assert os.stat(dest / "hard").st_ino == st.st_ino


def test_ustar_prefix_names(tmp_path: Path) -> None:
    name = "p" * 120 + "/" + "n" * 90  # fits only with the prefix field
    raw = build_format(lambda add: add(name, data=b"u"), tarfile.USTAR_FORMAT)
    assert raw[345:348] == b"ppp"
    unpack(io.BytesIO(raw), TAR, str(tmp_path / "layer"))
    assert (tmp_path / "layer" / name).read_bytes() == b"u"


def test_pax_times_in_nanoseconds_and_libarchive_xattrs(tmp_path: Path) -> None:
    def fill(add: Add) -> None:
        headers = {"mtime": "1500000000.123456789", "LIBARCHIVE.xattr.user.a%20b": "dmFsdWU"}  # "value"
        add("f", data=b"x", pax_headers=headers)
        add("old", data=b"y", pax_headers={"mtime": "-1.5"})

    unpack(io.BytesIO(build_format(fill, tarfile.PAX_FORMAT)), TAR, str(tmp_path / "layer"))
    assert os.stat(tmp_path / "layer/f").st_mtime_ns == 1_500_000_000_123_456_789
    assert os.getxattr(tmp_path / "layer/f", "user.a b") == b"value"
    assert os.stat(tmp_path / "layer/old").st_mtime_ns == -1_500_000_000


def test_global_pax_headers_are_skipped(tmp_path: Path) -> None:
    raw = build_format(
        lambda add: add("f", data=b"x"), tarfile.PAX_FORMAT, pax_headers={"comment": "made by git archive"}
    )
    assert raw[156:157] == b"g"
    stats = unpack(io.BytesIO(raw), TAR, str(tmp_path / "layer"))
    assert stats.files == 1 and os.listdir(tmp_path / "layer") == ["f"]


def set_type(raw: bytes, offset: int, kind: bytes) -> bytes:
    """`raw` with the header at `offset` given the type `kind`, its checksum made right again."""
    hdr = bytearray(raw[offset : offset + 512])
    hdr[156:157] = kind
    hdr[148:156] = b" " * 8
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    return raw[:offset] + bytes(hdr) + raw[offset + 512 :]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad-checksum", "after entry 'a': corrupt tar: bad header checksum"),
        ("truncated-data", "corrupt tar: unexpected end of data"),
        ("sparse", "entry 'b': refused: sparse file"),
        ("volume-header", "entry 'b': refused: unsupported entry type 'V'"),
    ],
)
def test_malformed_tars_are_refused(tmp_path: Path, case: str, message: str) -> None:
    raw = build_format(lambda add: (add("a", data=b"1" * 600), add("b", data=b"2")), tarfile.USTAR_FORMAT)
    second = 512 + 1024  # a's header, then its 600 bytes padded to two blocks
    assert raw[second : second + 1] == b"b"
    if case == "bad-checksum":
        raw = raw[:second] + b"c" + raw[second + 1 :]
    elif case == "truncated-data":
        raw = raw[:800]
    else:
        raw = set_type(raw, second, b"S" if case == "sparse" else b"V")
    dest = tmp_path / "layer"
    with pytest.raises(LayerError, match="layer sha256:bad") as err:
        unpack(io.BytesIO(raw), TAR, str(dest), layer="sha256:bad")
    assert message in str(err.value)
    assert not dest.exists()


def test_an_entry_under_a_directory_later_replaced_by_a_symlink_is_refused(tmp_path: Path) -> None:
    """The unpacker keeps the fds of directories it made for the entries that follow: once the directory
    is replaced, they are not used (the next entry under its name resolves the symlink, and is refused)."""
    outside = tmp_path / "outside"
    outside.mkdir()

    def fill(add: Add) -> None:
        add("d", tarfile.DIRTYPE)
        add("d/x", data=b"1")
        add("d", tarfile.SYMTYPE, linkname=str(outside))
        add("d/y", data=b"evil")

    with pytest.raises(LayerError, match="entry 'd/y': refused: parent 'd' leads outside the layer"):
        unpack(io.BytesIO(build(fill)), TAR, str(tmp_path / "layer"))
    assert os.listdir(outside) == []


def test_an_entry_under_a_whited_out_directory_is_not_written_into_the_removed_one(tmp_path: Path) -> None:
    def fill(add: Add) -> None:
        add("d", tarfile.DIRTYPE)
        add("d/x", data=b"1")
        add(".wh.d")
        add("d2", tarfile.DIRTYPE)
        add("d/y", data=b"2")

    with pytest.raises(LayerError, match="entry 'd/y': refused: parent 'd' is not a directory"):
        unpack(io.BytesIO(build(fill)), TAR, str(tmp_path / "layer"))


def test_a_file_whose_metadata_cannot_be_set_is_named_and_nothing_is_left(tmp_path: Path) -> None:
    """A failure on a file's fd (its xattrs here) names the entry, not the fd, and leaves nothing."""

    def fill(add: Add) -> None:
        for i in range(100):
            add(f"d/f{i}", data=b"x" * i)
        add("d/bad", data=b"y", pax_headers={"SCHILY.xattr.nosuchnamespace.k": "v"})
        for i in range(100):
            add(f"e/f{i}", data=b"z" * i)

    dest = tmp_path / "layer"
    with pytest.raises(LayerError, match=r"^layer sha256:bad: entry 'd/bad': Operation not supported$"):
        unpack(io.BytesIO(build(fill)), TAR, str(dest), layer="sha256:bad")
    assert not dest.exists()


def test_a_nul_in_a_pax_path_is_a_corrupt_tar(tmp_path: Path) -> None:
    raw = build_format(lambda add: add("x", data=b"x", pax_headers={"path": "a\0b"}), tarfile.PAX_FORMAT)
    with pytest.raises(LayerError, match="a NUL byte in the PAX path"):
        unpack(io.BytesIO(raw), TAR, str(tmp_path / "layer"))
    assert not (tmp_path / "layer").exists()
