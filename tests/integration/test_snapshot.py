"""Overlay snapshots on the real kernel: many layers, the legacy mount(2) path, errors, unmount."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hutch.errors import HostError
from hutch.image.snapshot import mount_rootfs, unmount


def mounted(target: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(target) for line in f)


def make_layers(base: Path, count: int) -> list[str]:
    """`count` layer dirs, top first: each has its own file and a `top` file naming it."""
    dirs = []
    for i in range(count):
        d = base / f"layer-with-a-long-name-{i:04d}"
        d.mkdir(parents=True)
        (d / f"only-{i}").write_text(str(i))
        (d / "top").write_text(str(i))
        dirs.append(str(d))
    return list(reversed(dirs))  # the last made is the top


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    out = {name: tmp_path / name for name in ("upper", "work", "root")}
    for p in out.values():
        p.mkdir()
    return out


@pytest.mark.parametrize("legacy", [False, True], ids=["fsconfig", "mount2-relative"])
def test_many_layers_mount(tmp_path: Path, dirs: dict[str, Path], legacy: bool) -> None:
    lowers = make_layers(tmp_path / "layers", 120)
    # The absolute paths alone are past what one page of mount options holds.
    assert len(":".join(lowers)) > os.sysconf("SC_PAGESIZE")
    root = dirs["root"]
    cwd = os.getcwd()
    mount_rootfs(lowers, str(dirs["upper"]), str(dirs["work"]), str(root), legacy=legacy)
    try:
        assert os.getcwd() == cwd
        assert mounted(root)
        assert (root / "top").read_text() == "119"
        assert (root / "only-0").read_text() == "0"
        assert len([n for n in os.listdir(root) if n.startswith("only-")]) == 120
        (root / "written").write_text("new")
        assert (dirs["upper"] / "written").read_text() == "new"
    finally:
        unmount(str(root))
    assert not mounted(root)


def test_read_only_without_upper(tmp_path: Path, dirs: dict[str, Path]) -> None:
    lowers = make_layers(tmp_path / "layers", 3)
    root = dirs["root"]
    mount_rootfs(lowers, None, None, str(root))
    try:
        assert (root / "top").read_text() == "2"
        with pytest.raises(OSError):
            (root / "x").write_text("no")
    finally:
        unmount(str(root))


def test_missing_lower_is_an_error_naming_the_target(tmp_path: Path, dirs: dict[str, Path]) -> None:
    lowers = make_layers(tmp_path / "layers", 2) + [str(tmp_path / "missing")]
    root = dirs["root"]
    with pytest.raises(HostError, match=str(root)) as err:
        mount_rootfs(lowers, str(dirs["upper"]), str(dirs["work"]), str(root))
    assert "missing" in str(err.value)
    assert not mounted(root)


def test_unmount_of_what_is_not_mounted(dirs: dict[str, Path]) -> None:
    with pytest.raises(HostError, match="unmount"):
        unmount(str(dirs["root"]))
