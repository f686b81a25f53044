"""cp (both ways, tar streams, -a, hostile symlinks, stopped containers), diff, commit, export, and the system
commands (df, prune, reset): the effects seen from inside the container (`hutch exec`), in the host's files,
in the images' contents and in what is left under the root. Uses the registry and image of test_engine_run.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_commands import gone
from tests.integration.test_engine_lifecycle import until
from tests.integration.test_engine_run import HUTCH, IMAGE, ok
from tests.integration.test_engine_run import hutch as hutch_cli

remote = run_suite.remote
root = run_suite.root


def cp(root: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*HUTCH, "--root", str(root), "cp", *args], input=stdin, capture_output=True, check=False
    )


def mounted(cid: str) -> bool:
    return any(cid in line for line in Path("/proc/self/mountinfo").read_text().splitlines())


def test_cp_both_ways(root: Path, tmp_path: Path) -> None:
    cid = ok(
        root, "run", "-d", "--name", "cpc", "-u", "app", "-w", "/home/app", IMAGE, "sleep", "1000"
    ).strip()
    src = tmp_path / "payload.txt"
    src.write_text("payload\n")
    os.chown(src, 4321, 4321)
    # Into a directory: the file keeps its name and belongs to the container's user (1000).
    assert cp(root, str(src), "cpc:/home/app/").returncode == 0
    assert ok(root, "exec", "cpc", "cat", "/home/app/payload.txt") == "payload\n"
    assert ok(root, "exec", "cpc", "stat", "-c", "%u:%g %a", "/home/app/payload.txt") == "1000:1000 644\n"
    # -a keeps the source's uid/gid; a new name when the destination does not exist.
    assert cp(root, "-a", str(src), "cpc:/home/app/renamed").returncode == 0
    assert ok(root, "exec", "cpc", "stat", "-c", "%u:%g", "/home/app/renamed") == "4321:4321\n"
    # A relative container path is below the container's working directory.
    assert cp(root, str(src), "cpc:relative.txt").returncode == 0
    assert ok(root, "exec", "cpc", "cat", "/home/app/relative.txt") == "payload\n"
    # A directory to a new path in the container, and out again.
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "deep").write_text("deep\n")
    os.symlink("sub/deep", tree / "link")
    assert cp(root, str(tree), "cpc:/home/app/tree").returncode == 0
    assert ok(root, "exec", "cpc", "cat", "/home/app/tree/link") == "deep\n"
    assert ok(root, "exec", "cpc", "readlink", "/home/app/tree/link") == "sub/deep\n"
    out = tmp_path / "out"
    out.mkdir()
    assert cp(root, "cpc:/home/app/tree", str(out)).returncode == 0
    assert (out / "tree" / "sub" / "deep").read_text() == "deep\n"
    assert os.readlink(out / "tree" / "link") == "sub/deep"
    assert cp(root, "cpc:/etc/passwd", str(out / "passwd")).returncode == 0
    assert (out / "passwd").read_text().startswith("root:x:0:0:")
    # Contents of a directory (`/.`) into an existing one.
    assert cp(root, "cpc:/home/app/tree/.", str(out)).returncode == 0
    assert (out / "sub" / "deep").exists()

    # Tar streams: out on stdout, in from stdin.
    proc = cp(root, "cpc:/home/app/tree", "-")
    assert proc.returncode == 0
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tf:
        assert {"tree", "tree/sub", "tree/sub/deep", "tree/link"} <= set(tf.getnames())
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        info = tarfile.TarInfo("streamed/file")
        info.size = 7
        tf.addfile(info, io.BytesIO(b"stream\n"))
    assert cp(root, "-", "cpc:/tmp", stdin=raw.getvalue()).returncode == 0
    assert ok(root, "exec", "cpc", "cat", "/tmp/streamed/file") == "stream\n"

    # Errors: one line, 125.
    for args in (("cpc:/nope", str(out)), (str(src), "cpc:/no/such/dir/f"), ("cpc:/a", "cpc:/b"), ("a", "b")):
        proc = cp(root, *args)
        assert proc.returncode == 125 and proc.stderr.decode().startswith("Error: ")
        assert proc.stderr.decode().count("\n") == 1
    ok(root, "rm", "-f", "cpc")
    assert gone(root, cid) == []


def test_cp_keeps_xattrs_both_ways_but_not_overlays_own(root: Path, tmp_path: Path) -> None:
    cid = ok(root, "run", "-d", "--name", "cpx", IMAGE, "sleep", "1000").strip()
    upper = root / "containers" / cid / "upper"
    src = tmp_path / "marked"
    src.write_text("x\n")
    os.setxattr(src, "user.mark", b"kept")
    # File capabilities (what setcap cap_net_raw+ep writes: vfs_cap_data revision 2, effective): they survive
    # the chown to the container's user, which drops them, as cp sets them last.
    caps = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)
    os.setxattr(src, "security.capability", caps)
    assert cp(root, str(src), "cpx:/tmp/marked").returncode == 0
    assert os.getxattr(upper / "tmp" / "marked", "user.mark") == b"kept"
    assert os.getxattr(upper / "tmp" / "marked", "security.capability") == caps
    # A tar stream may carry overlay's own xattrs: an opaque or redirected directory would change what the
    # container's overlay shows, so cp leaves them out and sets the rest.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("dir")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        info.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.other": "set"}
        tf.addfile(info)
    assert cp(root, "-", "cpx:/tmp", stdin=raw.getvalue()).returncode == 0
    assert os.getxattr(upper / "tmp" / "dir", "user.other") == b"set"
    assert "trusted.overlay.opaque" not in os.listxattr(upper / "tmp" / "dir")
    # And out: the host's copy has the container file's xattr.
    out = tmp_path / "out"
    out.mkdir()
    assert cp(root, "cpx:/tmp/marked", str(out)).returncode == 0
    assert os.getxattr(out / "marked", "user.mark") == b"kept"
    ok(root, "rm", "-f", "cpx")
    assert gone(root, cid) == []


def test_cp_cannot_leave_the_rootfs_through_symlinks(root: Path, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret").write_text("host secret\n")
    script = (
        f"mkdir -p {host} && echo inside > {host}/inside && ln -s {host} /abs && "
        f"ln -s ../../../../../../..{host} /rel && ln -s /srv /srvlink && ln -s {tmp_path}/nowhere /dangling && "
        "exec sleep 1000"
    )
    cid = ok(root, "run", "-d", "--name", "evil", IMAGE, "sh", "-c", script).strip()
    until(lambda: hutch_cli(root, "exec", "evil", "test", "-L", "/dangling").returncode == 0)
    payload = tmp_path / "payload"
    payload.write_text("payload\n")
    # Reads through the container's symlinks find the container's files, never the host's.
    for link in ("abs", "rel"):
        proc = cp(root, f"evil:/{link}/secret", str(tmp_path / "stolen"))
        assert proc.returncode == 125 and not (tmp_path / "stolen").exists()
        proc = cp(root, f"evil:/{link}/inside", "-")
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tf:
            f = tf.extractfile("inside")
            assert f is not None and f.read() == b"inside\n"
    # Writes through them land inside the container.
    for link in ("abs", "rel", "srvlink"):
        assert cp(root, str(payload), f"evil:/{link}/from-{link}").returncode == 0
    assert sorted(os.listdir(host)) == ["secret"]
    found = ok(root, "exec", "evil", "ls", str(host), "/srv").split()
    assert {"from-abs", "from-rel", "from-srvlink", "inside"} <= set(found)
    # A dangling link to a host path: created inside the rootfs, or refused; never on the host.
    cp(root, str(payload), "evil:/dangling/x")
    assert not (tmp_path / "nowhere").exists()
    # A tar stream whose symlink points at the host cannot carry a later entry out through it.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.SYMTYPE, str(host)
        tf.addfile(link)
        info = tarfile.TarInfo("escape/planted")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"bad\n"))
    cp(root, "-", "evil:/tmp", stdin=raw.getvalue())
    assert sorted(os.listdir(host)) == ["secret"]
    ok(root, "rm", "-f", "evil")
    assert gone(root, cid) == []


def test_cp_into_and_out_of_a_volume(root: Path, tmp_path: Path) -> None:
    cid = ok(root, "run", "-d", "--name", "cpv", "-v", "cpvol:/data", IMAGE, "sleep", "1000").strip()
    src = tmp_path / "f"
    src.write_text("into the volume\n")
    assert cp(root, str(src), "cpv:/data/").returncode == 0
    assert ok(root, "exec", "cpv", "cat", "/data/f") == "into the volume\n"
    mountpoint = Path(json.loads(ok(root, "volume", "inspect", "cpvol"))[0]["Mountpoint"])
    assert (mountpoint / "f").read_text() == "into the volume\n"
    assert not (root / "containers" / cid / "upper" / "data" / "f").exists()
    ok(root, "exec", "cpv", "sh", "-c", "mkdir /data/sub && echo written inside > /data/sub/g")
    assert cp(root, "cpv:/data/sub/.", str(tmp_path)).returncode == 0
    assert (tmp_path / "g").read_text() == "written inside\n"
    ok(root, "rm", "-f", "cpv")
    ok(root, "volume", "rm", "cpvol")
    assert gone(root, cid) == []


def test_cp_on_a_stopped_container(root: Path, tmp_path: Path) -> None:
    cid = ok(root, "create", "--name", "cps", IMAGE, "cat", "/srv/in").strip()
    ok(root, "start", "cps")
    ok(root, "wait", "cps")
    assert not mounted(cid)
    src = tmp_path / "in"
    src.write_text("copied while stopped\n")
    assert cp(root, str(src), "cps:/srv/in").returncode == 0
    assert not mounted(cid)  # mounted for the copy only
    assert cp(root, "cps:/srv/in", str(tmp_path / "back")).returncode == 0
    assert (tmp_path / "back").read_text() == "copied while stopped\n"
    ok(root, "export", "-o", str(tmp_path / "stopped.tar"), "cps")
    with tarfile.open(tmp_path / "stopped.tar") as tf:
        f = tf.extractfile("srv/in")
        assert f is not None and f.read() == b"copied while stopped\n"
    assert ok(root, "diff", "cps").splitlines() == ["C /srv", "A /srv/in"]
    assert not mounted(cid)
    assert ok(root, "start", "-a", "cps") == "copied while stopped\n"
    ok(root, "rm", "cps")
    assert gone(root, cid) == []


def test_diff_commit_export(root: Path, tmp_path: Path) -> None:
    script = (
        "mkdir /data && echo hi > /data/f && rm /etc/group && echo extra >> /etc/passwd && exec sleep 1000"
    )
    cid = ok(root, "run", "-d", "--name", "chg", IMAGE, "sh", "-c", script).strip()
    until(lambda: "A /data/f" in ok(root, "diff", "chg"))
    assert ok(root, "diff", "chg").splitlines() == [
        "A /data",
        "A /data/f",
        "C /etc",
        "D /etc/group",
        "C /etc/passwd",
    ]
    assert json.loads(ok(root, "container", "diff", "--format", "json", "chg")) == {
        "changed": ["/etc", "/etc/passwd"],
        "added": ["/data", "/data/f"],
        "deleted": ["/etc/group"],
    }

    # An xattr on a changed file (as setcap would put security.capability) travels in the layer.
    os.setxattr(root / "containers" / cid / "upper" / "data" / "f", "user.mark", b"kept")
    proc = hutch_cli(
        root, "commit", "-p", "-c", 'CMD ["cat", "/data/f"]', "-c", "ENV COMMITTED=yes", "-m", "the msg",
        "-a", "someone", "chg", "committed:v1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    image_id = proc.stdout.strip()
    assert len(image_id) == 64 and "Writing manifest to image destination" in proc.stderr
    assert ok(root, "inspect", "-f", "{{.State.Status}}", "chg") == "running\n"  # -p thawed it again
    doc = json.loads(ok(root, "image", "inspect", "committed:v1"))[0]
    assert doc["Id"] == image_id and doc["Author"] == "someone"
    assert doc["History"][-1]["comment"] == "the msg" and doc["Config"]["Cmd"] == ["cat", "/data/f"]
    assert len(doc["RootFS"]["Layers"]) == 2
    top_layer = Path(doc["GraphDriver"]["Data"]["UpperDir"])
    assert os.getxattr(top_layer / "data" / "f", "user.mark") == b"kept"
    assert not (top_layer / "etc" / "hosts").exists()  # the runtime's placeholder is no change
    # The committed image runs with the change: the file, the whiteout, the CMD and ENV.
    assert ok(root, "run", "--rm", "committed:v1") == "hi\n"
    out = ok(
        root,
        "run",
        "--rm",
        "committed:v1",
        "sh",
        "-c",
        "test -e /etc/group || echo $COMMITTED; tail -1 /etc/passwd",
    )
    assert out == "yes\nextra\n"
    assert ok(root, "run", "--rm", "committed:v1", "ls", "/etc").split() == [
        "hostname",
        "hosts",
        "passwd",
        "resolv.conf",
    ]
    assert doc["ManifestType"] == "application/vnd.oci.image.manifest.v1+json"
    # Without a name: an untagged image, its id printed; -f docker: a Docker schema 2 manifest.
    bare = ok(root, "commit", "-q", "-f", "docker", "chg").strip()
    assert ok(root, "run", "--rm", bare, "cat", "/data/f") == "hi\n"
    docker = json.loads(ok(root, "image", "inspect", bare))[0]
    assert docker["ManifestType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert docker["RepoTags"] == []

    exported = tmp_path / "rootfs.tar"
    ok(root, "export", "-o", str(exported), "chg")
    with tarfile.open(exported) as tf:
        names = set(tf.getnames())
        f = tf.extractfile("data/f")
        assert f is not None and f.read() == b"hi\n"
    assert {"bin/busybox", "data", "etc/passwd"} <= names and "etc/group" not in names and "." not in names
    proc = subprocess.run([*HUTCH, "--root", str(root), "export", "chg"], capture_output=True, check=False)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tf:
        assert "data/f" in tf.getnames()
    proc = hutch_cli(root, "commit", "chg", "bad@@name")
    assert proc.returncode == 125 and proc.stderr.startswith("Error: ")
    ok(root, "rm", "-f", "chg")
    ok(root, "rmi", "committed:v1", bare)
    assert gone(root, cid) == []


@pytest.fixture
def fresh(remote: str, tmp_path: Path) -> Iterator[Path]:
    """A root of its own (system prune and reset act on all of it)."""
    storage = tmp_path / "storage"
    ok(storage, "pull", "-q", "--tls-verify=false", remote)
    ok(storage, "tag", remote, IMAGE)
    yield storage
    subprocess.run([*HUTCH, "--root", str(storage), "rm", "-af"], capture_output=True, check=False)


def test_system_df_prune_reset(fresh: Path, remote: str) -> None:
    done = ok(
        fresh, "run", "-d", "--name", "done", IMAGE, "sh", "-c", "head -c 100000 /dev/zero > /big"
    ).strip()
    ok(fresh, "wait", "done")
    live = ok(fresh, "run", "-d", "--name", "live", IMAGE, "sleep", "1000").strip()
    rows = {line.split("  ")[0]: line.split() for line in ok(fresh, "system", "df").splitlines()}
    assert rows["TYPE"] == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert rows["Images"][1:3] == ["1", "1"] and rows["Containers"][1:3] == ["2", "1"]
    # The exited container's 100 kB is reclaimable; the running one's few placeholders are not.
    size, reclaimable = rows["Containers"][3:5], rows["Containers"][5:7]
    assert size[1] == reclaimable[1] == "kB" and 100 <= float(reclaimable[0]) <= float(size[0]) < 200
    verbose = ok(fresh, "system", "df", "-v")
    assert "Containers space usage:" in verbose and done[:12] in verbose and live[:12] in verbose

    proc = subprocess.run(
        [*HUTCH, "--root", str(fresh), "system", "prune"], input="n\n", capture_output=True, text=True
    )
    assert proc.returncode == 0 and "[y/N]" in proc.stdout and done[:12] in ok(fresh, "ps", "-aq")
    ok(fresh, "network", "create", "unusednet")
    out = ok(fresh, "system", "prune", "-f").splitlines()
    assert out[:2] == ["Deleted Containers", done] and out[-1].startswith("Total reclaimed space: ")
    assert out[2:4] == ["Deleted Networks", "unusednet"]
    assert "unusednet" not in ok(fresh, "network", "ls")
    assert ok(fresh, "ps", "-aq") == live[:12] + "\n" and gone(fresh, done) == []
    assert ok(fresh, "images", "-q") != ""  # tagged and in use: kept, even with -a
    ok(fresh, "system", "prune", "-a", "-f")
    assert ok(fresh, "images", "-q") != ""

    commit = ok(fresh, "commit", "-q", "live", "mine").strip()
    # The committed image shares the base image's layer: SHARED SIZE is that layer's, on both rows.
    table = ok(fresh, "system", "df", "-v").split("Containers space usage:")[0].splitlines()
    header = next(line for line in table if line.startswith("REPOSITORY"))
    start, end = header.index("SHARED SIZE"), header.index("CONTAINERS")
    shared = {line.split()[0]: line[start:end].split("  ")[0].strip() for line in table if "/" in line[:30]}
    assert shared["localhost/mine"] == shared[remote.rsplit(":", 1)[0]] != "0 B"
    assert ok(fresh, "inspect", "-f", "{{.State.Status}}", "live") == "running\n"
    pid = int(ok(fresh, "inspect", "-f", "{{.State.Pid}}", "live"))
    assert ok(fresh, "system", "reset", "-f") == ""
    assert os.listdir(fresh) == []
    assert not mounted(live) and not mounted(str(fresh)) and not Path(f"/proc/{pid}").exists()
    assert not Path(f"/run/hutch/runtime/{live}").exists()
    assert ok(fresh, "ps", "-aq") == "" and ok(fresh, "images", "-q") == ""
    assert commit not in ok(fresh, "images", "-q", "--no-trunc")


def test_system_prune_volumes(fresh: Path) -> None:
    ok(fresh, "volume", "create", "unused")
    ok(fresh, "volume", "create", "used")
    ok(fresh, "run", "-d", "--name", "user", "-v", "used:/data", IMAGE, "sleep", "1000")
    out = ok(fresh, "system", "prune", "-f", "--volumes").splitlines()
    assert "Deleted Volumes" in out and "unused" in out and "used" not in out
    assert ok(fresh, "volume", "ls", "-q").split() == ["used"]
    ok(fresh, "rm", "-f", "user")
