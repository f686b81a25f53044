"""Volumes and mounts of `hutch run`/`create`: -v binds (ro, propagation, nosuid/nodev/noexec, U), named and
anonymous volumes (made on first use, filled from the image), the image's VOLUMEs, --mount, --tmpfs,
--read-only's tmpfs mounts, and `hutch volume create/ls/inspect/rm/prune`, `rm -v`; each effect seen from
inside the container (mountinfo, what it reads and writes) or on the host (the volume's _data)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest
from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_flags import mine, refused
from tests.integration.test_engine_run import IMAGE, _tar_layer, hutch, ok

# The module's registry and pulled image, as test_engine_run makes them.
remote = run_suite.remote
root = run_suite.root


def run(root: Path, *args: str) -> str:
    proc = hutch(root, "run", "--rm", *args)
    assert proc.returncode == 0, f"run {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}"
    assert mine(root) == []
    return proc.stdout


def volumes(root: Path) -> list[str]:
    return ok(root, "volume", "ls", "-q").split()


def mountinfo_line(out: str, dest: str) -> str:
    return next(line for line in out.splitlines() if line.split()[4:5] == [dest])


def test_bind_mounts_rw_ro_and_options(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "in").write_text("from host\n")
    out = run(root, "-v", f"{src}:/data", IMAGE, "sh", "-c", "cat /data/in; echo made > /data/out")
    assert out == "from host\n" and (src / "out").read_text() == "made\n"
    proc = hutch(root, "run", "--rm", "-v", f"{src}:/data:ro", IMAGE, "sh", "-c", "echo x > /data/no")
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr
    assert not (src / "no").exists()
    out = run(root, "-v", f"{src}:/data:nosuid,nodev,noexec,z", IMAGE, "cat", "/proc/self/mountinfo")
    options = mountinfo_line(out, "/data").split()[5].split(",")
    assert {"nosuid", "nodev", "noexec", "rw"} <= set(options)
    # A relative source is a path (./x) or else a volume name; a missing host dir is podman's error.
    refused(root, "-v", f"{tmp_path}/missing:/data", IMAGE, "true", flag="statfs")
    refused(root, "-v", f"{src}:/data:bogus", IMAGE, "true", flag="--volume")
    refused(root, "-v", f"{src}:relative", IMAGE, "true", flag="--volume")
    refused(root, "-v", f"{src}:/a:ro:extra", IMAGE, "true", flag="--volume")
    refused(root, "-v", f"{src}:/d", "-v", f"{src}:/d", IMAGE, "true", flag="duplicate mount destination")


def test_bind_propagation(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "shared"
    src.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "prop", str(src)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(src)], check=True)
        for mode, field in (("rslave", "master:"), ("rshared", "shared:"), ("rprivate", None)):
            out = run(root, "-v", f"{src}:/p:{mode}", IMAGE, "cat", "/proc/self/mountinfo")
            optional = mountinfo_line(out, "/p").split(" - ")[0].split()[6:]
            if field is None:
                assert optional == [], (mode, optional)
            else:
                assert any(o.startswith(field) for o in optional), (mode, optional)
    finally:
        subprocess.run(["umount", str(src)], check=False)


def test_U_chowns_to_the_container_user(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "owned"
    src.mkdir()
    (src / "f").write_text("x")
    out = run(root, "-u", "app", "-v", f"{src}:/o:U", IMAGE, "sh", "-c", "touch /o/new && stat -c %u:%g /o/f")
    assert out == "1000:1000\n"
    assert (src.stat().st_uid, (src / "new").stat().st_uid) == (1000, 1000)


def test_named_volume_made_on_first_use_and_kept(root: Path) -> None:
    out = run(root, "-v", "keep1:/v", IMAGE, "sh", "-c", "ls -A /v; echo data > /v/f")
    assert out == ""
    assert "keep1" in volumes(root)
    data = Path(json.loads(ok(root, "volume", "inspect", "keep1"))[0]["Mountpoint"])
    assert data == root / "volumes" / "keep1" / "_data" and (data / "f").read_text() == "data\n"
    assert (
        run(root, "--mount", "type=volume,source=keep1,target=/w,readonly", IMAGE, "cat", "/w/f") == "data\n"
    )
    # In use: rm refuses (exit 2) until the container is gone, or -f removes the container too.
    cid = ok(root, "create", "-v", "keep1:/v", IMAGE, "true").strip()
    proc = hutch(root, "volume", "rm", "keep1")
    assert proc.returncode == 2 and cid in proc.stderr and proc.stderr.startswith("Error: ")
    ok(root, "volume", "rm", "-f", "keep1")
    assert "keep1" not in volumes(root) and not data.exists()
    assert hutch(root, "inspect", cid).returncode == 125
    refused(root, "-v", "bad name!:/v", IMAGE, "true", flag="--volume")


def test_anonymous_volumes_and_rm_v(root: Path) -> None:
    before = set(volumes(root))
    cid = ok(root, "run", "-d", "-v", "/scratch", IMAGE, "sh", "-c", "echo hi > /scratch/f").strip()
    ok(root, "wait", cid)
    (anon,) = set(volumes(root)) - before
    assert len(anon) == 64
    mounts = json.loads(ok(root, "inspect", "-f", "{{json .Mounts}}", cid))
    assert (
        mounts[0]["Name"] == anon and mounts[0]["Destination"] == "/scratch" and mounts[0]["Type"] == "volume"
    )
    assert (root / "volumes" / anon / "_data" / "f").read_text() == "hi\n"
    ok(root, "rm", cid)  # without -v the volume stays
    assert anon in volumes(root)
    ok(root, "volume", "rm", anon)
    cid = ok(root, "create", "-v", "/scratch", "-v", "named-stays:/n", IMAGE, "true").strip()
    (anon,) = set(volumes(root)) - before - {"named-stays"}
    ok(root, "rm", "-v", cid)
    assert anon not in volumes(root) and "named-stays" in volumes(root)
    assert not (root / "volumes" / anon).exists()
    # run --rm takes its anonymous volumes with it (podman's behaviour), never a named one
    out = run(
        root, "-v", "/scratch", "-v", "named-stays:/n", IMAGE, "sh", "-c", "echo x > /scratch/f; echo ok"
    )
    assert out == "ok\n"
    assert set(volumes(root)) - before == {"named-stays"}
    ok(root, "volume", "rm", "named-stays")


@pytest.fixture(scope="module")
def volume_image(root: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The busybox image with VOLUME /srv, whose /srv holds a file owned by 1000."""
    import io
    import tarfile

    raw = io.BytesIO(_tar_layer())
    out = io.BytesIO()
    with tarfile.open(fileobj=raw) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo("srv/seed")
        info.size, info.uid, info.gid, info.mode = 5, 1000, 1000, 0o640
        dst.addfile(info, io.BytesIO(b"seed\n"))
    path = tmp_path_factory.mktemp("volimg") / "rootfs.tar.gz"
    path.write_bytes(gzip.compress(out.getvalue()))
    ok(root, "import", "-q", "--change", "VOLUME /srv", "--change", 'CMD ["sh"]', str(path), "volimg:1")
    return "volimg:1"


def test_image_volume_is_filled_from_the_image(root: Path, volume_image: str) -> None:
    before = set(volumes(root))
    cid = ok(root, "create", volume_image, "sh", "-c", "cat /srv/seed; stat -c '%u %a' /srv/seed").strip()
    assert ok(root, "start", "-a", cid) == "seed\n1000 640\n"
    (anon,) = set(volumes(root)) - before
    assert (root / "volumes" / anon / "_data" / "seed").read_text() == "seed\n"
    assert ok(root, "inspect", "-f", "{{json .Config.Volumes}}", cid) == '{"/srv": {}}\n'
    ok(root, "rm", "-v", cid)
    assert set(volumes(root)) == before
    # A -v at the VOLUME's path replaces it: a named volume, filled from the image on its first use.
    out = run(root, "-v", "seeded:/srv", volume_image, "cat", "/srv/seed")
    assert out == "seed\n" and set(volumes(root)) == before | {"seeded"}
    ok(root, "volume", "rm", "seeded")
    out = run(root, "-v", "unseeded:/srv:nocopy", volume_image, "ls", "-A", "/srv")
    assert out == ""
    ok(root, "volume", "rm", "unseeded")


def test_mount_and_tmpfs_flags(root: Path, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("bound\n")
    out = run(
        root, "--mount", f"type=bind,source={tmp_path},target=/b,readonly,bind-propagation=rslave",
        "--mount", "type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=700",
        "--tmpfs", "/t2:size=2m,exec", IMAGE, "sh", "-c",
        "cat /b/f; stat -c %a /t; cat /proc/self/mountinfo",
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[:2] == ["bound", "700"]
    b = mountinfo_line(out, "/b")
    assert b.split()[5].startswith("ro")
    t, t2 = mountinfo_line(out, "/t"), mountinfo_line(out, "/t2")
    assert "tmpfs" in t and "size=1024k" in t and "mode=700" in t and "noexec" in t.split()[5]
    assert "size=2048k" in t2 and "noexec" not in t2.split()[5]
    refused(root, "--mount", "type=bind,target=/x", IMAGE, "true", flag="--mount")
    refused(root, "--mount", "type=tmpfs", IMAGE, "true", flag="--mount")
    refused(root, "--mount", "type=tmpfs,target=/x,tmpfs-mode=9z", IMAGE, "true", flag="--mount")
    refused(root, "--mount", "type=bind,src=/nonexistent,dst=/x", IMAGE, "true", flag="statfs")
    refused(root, "--tmpfs", "relative", IMAGE, "true", flag="--tmpfs")
    refused(root, "--tmpfs", "/x:bogus", IMAGE, "true", flag="--tmpfs")


def test_read_only_gets_tmpfs_on_run_tmp_var_tmp(root: Path) -> None:
    script = "touch /x 2>/dev/null || echo ro; for d in /tmp /run /var/tmp; do touch $d/ok && echo $d; done"
    assert run(root, "--read-only", IMAGE, "sh", "-c", script).split() == ["ro", "/tmp", "/run", "/var/tmp"]
    out = run(root, "--read-only", "--read-only-tmpfs=false", IMAGE, "sh", "-c", "touch /tmp/x || echo ro")
    assert out == "ro\n"


def test_volume_commands(root: Path) -> None:
    assert ok(root, "volume", "create", "--label", "k=v", "vcmd") == "vcmd\n"
    proc = hutch(root, "volume", "create", "vcmd")
    assert (
        proc.returncode == 125
        and proc.stderr == "Error: volume with name vcmd already exists: volume already exists\n"
    )
    anon = ok(root, "volume", "create").strip()
    assert len(anon) == 64 and (root / "volumes" / anon / "_data").is_dir()
    table = ok(root, "volume", "ls").splitlines()
    assert table[0].split() == ["DRIVER", "VOLUME", "NAME"] and "local       vcmd" in table
    docs = json.loads(ok(root, "volume", "ls", "--format", "json"))
    doc = next(d for d in docs if d["Name"] == "vcmd")
    assert (doc["Driver"], doc["Labels"], doc["Scope"]) == ("local", {"k": "v"}, "local")
    assert ok(root, "volume", "inspect", "-f", "{{.Mountpoint}}", "vcmd") == f"{root}/volumes/vcmd/_data\n"
    proc = hutch(root, "volume", "inspect", "nope")
    assert proc.returncode == 125 and proc.stderr == "Error: no such volume nope\n"
    proc = hutch(root, "volume", "rm", "nope")
    assert proc.returncode == 1 and 'no volume with name "nope" found: no such volume' in proc.stderr
    # prune: asks first (no answer: nothing goes), -f removes only what no container uses.
    cid = ok(root, "create", "-v", "vcmd:/v", IMAGE, "true").strip()
    proc = subprocess.run([*run_suite.HUTCH, "--root", str(root), "volume", "prune"], input="n\n",
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0 and anon in volumes(root)
    assert ok(root, "volume", "prune", "-f").split() == [anon]
    assert volumes(root) == ["vcmd"]
    ok(root, "rm", cid)
    assert ok(root, "volume", "prune", "-f").split() == ["vcmd"]
    assert volumes(root) == [] and os.listdir(root / "volumes") == []
    assert mine(root) == []


def test_failed_create_removes_the_volumes_it_made(root: Path) -> None:
    before = set(volumes(root))
    proc = hutch(
        root, "create", "-v", "fresh-vol:/v", "-v", "/anon", "--group-add", "nosuchgroup", IMAGE, "true"
    )
    assert proc.returncode == 125 and "--group-add" in proc.stderr
    assert set(volumes(root)) == before
    assert not (root / "volumes" / "fresh-vol").exists()
    assert mine(root) == []


MANY = 6000


@pytest.fixture(scope="module")
def many_files_image(root: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The busybox image with MANY files in /many: copying them into a volume takes a while."""
    import io
    import tarfile

    raw = io.BytesIO(_tar_layer())
    out = io.BytesIO()
    with tarfile.open(fileobj=raw) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        for i in range(MANY):
            info = tarfile.TarInfo(f"many/{i}")
            info.size = 2
            dst.addfile(info, io.BytesIO(b"x\n"))
    path = tmp_path_factory.mktemp("manyimg") / "rootfs.tar"
    path.write_bytes(out.getvalue())
    ok(root, "import", "-q", str(path), "manyimg:1")
    return "manyimg:1"


def test_runs_filling_one_new_volume_at_once(root: Path, many_files_image: str) -> None:
    """Runs at once with one new named volume over the image's /many: each succeeds and each container sees
    the whole of it (one copies while the others wait; a run that found it half copied took it as filled, and
    two that found it empty both copied, the second failing on the first one's files)."""
    for round_ in range(2):
        name = f"race{round_}"
        procs = [
            subprocess.Popen(
                [
                    *run_suite.HUTCH,
                    "--root",
                    str(root),
                    "run",
                    "--rm",
                    "-v",
                    f"{name}:/many",
                    many_files_image,
                    "sh",
                    "-c",
                    "ls /many | wc -l",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for _ in range(3)
        ]
        try:
            results = [(p.wait(120), *p.communicate()) for p in procs]
            assert [(code, out.strip()) for code, out, _ in results] == [(0, str(MANY))] * 3, results
            assert len(os.listdir(root / "volumes" / name / "_data")) == MANY
        finally:
            ok(root, "volume", "rm", "-f", name)
    ok(root, "rmi", many_files_image)
