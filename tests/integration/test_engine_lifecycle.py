"""`hutch create`, `start`, `exec`, `kill`, `wait`, `inspect`, `restart`, `ps --filter/--format`, and rmi of
an image a container uses: the busybox image of test_engine_run, effects seen from inside the container, in
exit codes and in ps/inspect output; every test checks that `rm` left no mount, cgroup or runtime state.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import HUTCH, IMAGE, hutch, leftovers, ok, through_pty

# The module's registry and pulled image, as test_engine_run makes them.
remote = run_suite.remote
root = run_suite.root

RUNTIME_STATE = Path("/run/hutch/runtime")


def gone(root: Path, cid: str) -> list[str]:
    """What is left of container `cid`: leftovers under the root, its runtime state, mounts naming it."""
    found = leftovers(root)
    if (RUNTIME_STATE / cid).exists():
        found.append(f"runtime state {RUNTIME_STATE / cid}")
    found += [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if cid in line]
    return found


def inspect(root: Path, name: str) -> dict[str, object]:
    docs = json.loads(ok(root, "inspect", name))
    assert isinstance(docs, list) and len(docs) == 1
    doc: dict[str, object] = docs[0]
    return doc


def state(root: Path, name: str) -> str:
    return ok(root, "inspect", "-f", "{{.State.Status}}", name).strip()


def until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def test_create_start_exec_kill_wait_inspect_restart_rm(root: Path) -> None:
    cid = ok(root, "create", "--name", "life", IMAGE, "sh", "-c", "echo started; exec sleep 1000").strip()
    assert len(cid) == 64
    assert ok(root, "ps", "-q") == ""
    line = next(x for x in ok(root, "ps", "-a").splitlines() if x.endswith(" life"))
    assert line.startswith(cid[:12]) and "Created" in line
    assert state(root, "life") == "created"
    assert (
        ok(root, "inspect", "-f", "{{.State.Running}} {{.State.Pid}} {{.Name}}", "life") == "false 0 life\n"
    )
    # exec needs a running container.
    proc = hutch(root, "exec", "life", "true")
    assert proc.returncode == 125 and "running" in proc.stderr

    assert ok(root, "start", "life") == "life\n"
    assert ok(root, "ps", "-q") == cid[:12] + "\n"
    assert state(root, "life") == "running"
    pid = int(ok(root, "inspect", "-f", "{{.State.Pid}}", "life"))
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"1000"]
    assert ok(root, "start", "life") == "life\n"  # already running: nothing to do
    until(lambda: ok(root, "logs", "life") == "started\n")
    assert ok(root, "logs", "life") == "started\n"

    # exec: in the container's namespaces, its own exit code, podman's 126/127.
    assert ok(root, "exec", "life", "cat", "/etc/hostname") == cid[:12] + "\n"
    assert ok(root, "exec", "life", "cat", "/proc/1/cmdline").split("\0")[:2] == ["sleep", "1000"]
    assert Path(f"/proc/{pid}/ns/mnt").resolve() != Path("/proc/self/ns/mnt").resolve()
    assert hutch(root, "exec", "life", "sh", "-c", "exit 3").returncode == 3
    proc = hutch(root, "exec", "life", "no-such-command")
    assert proc.returncode == 127 and proc.stderr.startswith("Error: ") and "no-such-command" in proc.stderr
    assert hutch(root, "exec", "life", "/etc/passwd").returncode == 126
    out = ok(
        root, "exec", "-u", "app", "-w", "/srv", "-e", "X=1", "life", "sh", "-c", "id -u; pwd; echo $X $HOME"
    )
    assert out.split() == ["1000", "/srv", "1", "/home/app"]
    status = ok(root, "exec", "life", "cat", "/proc/self/status")
    assert "Seccomp:\t2" in status and "NoNewPrivs:\t0" in status
    piped = subprocess.run(
        [*HUTCH, "--root", str(root), "exec", "-i", "life", "cat"],
        input="x\n",
        capture_output=True,
        text=True,
    )
    assert (piped.returncode, piped.stdout) == (0, "x\n")
    piped = subprocess.run(
        [*HUTCH, "--root", str(root), "exec", "life", "cat"], input="x\n", capture_output=True, text=True
    )
    assert (piped.returncode, piped.stdout) == (0, "")  # without -i stdin is /dev/null
    session = ok(root, "exec", "-d", "life", "sh", "-c", "echo bg > /tmp/bg").strip()
    assert len(session) == 64
    until(lambda: hutch(root, "exec", "life", "cat", "/tmp/bg").stdout == "bg\n")
    assert ok(root, "exec", "life", "cat", "/tmp/bg") == "bg\n"

    # kill (SIGKILL by default) and wait: 128 + 9.
    assert ok(root, "kill", "life") == "life\n"
    assert ok(root, "wait", "life") == "137\n"
    assert not Path(f"/proc/{pid}").exists() or b"sleep" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    doc = inspect(root, "life")
    assert doc["Id"] == cid and doc["Name"] == "life"
    st = doc["State"]
    assert isinstance(st, dict)
    assert (st["Status"], st["Running"], st["ExitCode"], st["Pid"]) == ("exited", False, 137, 0)
    assert st["StartedAt"] != "0001-01-01T00:00:00Z" and st["FinishedAt"] >= st["StartedAt"]
    cfg = doc["Config"]
    assert isinstance(cfg, dict)
    assert cfg["Cmd"] == ["sh", "-c", "echo started; exec sleep 1000"] and cfg["Entrypoint"] == []
    assert "FROM_IMAGE=yes" in cfg["Env"] and cfg["WorkingDir"] == "/" and cfg["Hostname"] == cid[:12]
    assert (doc["Path"], doc["Args"]) == ("sh", ["-c", "echo started; exec sleep 1000"])
    assert str(doc["ImageName"]).endswith("/" + IMAGE) and len(str(doc["Image"])) == 64
    assert json.loads(ok(root, "container", "inspect", cid[:12]))[0]["Id"] == cid
    assert "Exited (137)" in ok(root, "ps", "-a")
    assert not [x for x in Path("/proc/self/mountinfo").read_text().splitlines() if cid in x]
    assert not (RUNTIME_STATE / cid).exists()
    proc = hutch(root, "kill", "life")
    assert proc.returncode == 125 and "can only kill running containers" in proc.stderr
    proc = hutch(root, "exec", "life", "true")
    assert proc.returncode == 125 and "can only create exec sessions on running containers" in proc.stderr

    # restart: a new init in the same container (its upper dir kept).
    assert ok(root, "restart", "life") == "life\n"
    assert state(root, "life") == "running"
    assert ok(root, "exec", "life", "cat", "/tmp/bg") == "bg\n"
    new_pid = int(ok(root, "inspect", "-f", "{{.State.Pid}}", "life"))
    assert new_pid != pid and Path(f"/proc/{new_pid}/cmdline").read_bytes().startswith(b"sleep")
    until(lambda: ok(root, "logs", "life") == "started\nstarted\n")
    assert ok(root, "logs", "life") == "started\nstarted\n"

    assert ok(root, "rm", "-f", "life") == "life\n"
    assert (
        not Path(f"/proc/{new_pid}").exists() or b"sleep" not in Path(f"/proc/{new_pid}/cmdline").read_bytes()
    )
    assert ok(root, "ps", "-aq") == ""
    assert gone(root, cid) == []


def test_start_attach_and_again(root: Path) -> None:
    cid = ok(root, "create", "--name", "twice", IMAGE, "sh", "-c", "echo out; exit 4").strip()
    proc = hutch(root, "start", "-a", "twice")
    assert (proc.returncode, proc.stdout) == (4, "out\n"), proc.stderr
    assert "Exited (4)" in ok(root, "ps", "-a")
    assert ok(root, "wait", "twice") == "4\n"
    # An exited container starts again, detached this time; wait prints its new code.
    assert ok(root, "start", "twice") == "twice\n"
    assert ok(root, "wait", "twice") == "4\n"
    assert ok(root, "logs", "twice") == "out\nout\n"  # the foreground start -a logged too, as podman's
    assert ok(root, "container", "rm", "twice") == "twice\n"
    assert gone(root, cid) == []


def test_kill_signal_and_wait(root: Path) -> None:
    cid = ok(
        root, "run", "-d", "--name", "trapper", IMAGE, "sh", "-c", "trap 'exit 42' USR1; sleep 1000 & wait"
    )
    cid = cid.strip()
    until(lambda: "sleep" in ok(root, "exec", "trapper", "ps"))
    time.sleep(0.2)
    assert ok(root, "kill", "-s", "USR1", "trapper") == "trapper\n"
    assert ok(root, "wait", "trapper") == "42\n"
    assert ok(root, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "trapper") == "exited 42\n"
    ok(root, "rm", "trapper")
    assert gone(root, cid) == []


def test_start_failure_keeps_the_container(root: Path) -> None:
    cid = ok(root, "create", "--name", "broken", IMAGE, "no-such-command").strip()
    proc = hutch(root, "start", "broken")
    assert proc.returncode == 125 and "no-such-command" in proc.stderr
    assert state(root, "broken") == "created"
    assert not [x for x in Path("/proc/self/mountinfo").read_text().splitlines() if cid in x]
    proc = hutch(root, "start", "-a", "broken")
    assert proc.returncode == 127
    assert ok(root, "rm", "broken") == "broken\n"
    assert gone(root, cid) == []


def test_ps_filter_and_format(root: Path) -> None:
    up = ok(root, "run", "-d", "--name", "flt-up", IMAGE, "sleep", "1000").strip()
    done = ok(root, "run", "--name", "flt-done", IMAGE, "true")
    assert done == ""
    made = ok(root, "create", "--name", "flt-made", IMAGE, "true").strip()
    assert ok(root, "ps", "--filter", "status=exited", "--format", "{{.Names}}") == "flt-done\n"
    assert ok(root, "ps", "-a", "--filter", "status=created", "--format", "{{.ID}} {{.Names}}") == (
        f"{made[:12]} flt-made\n"
    )
    names = ok(root, "ps", "-a", "--filter", "name=flt-", "--format", "{{.Names}} {{.State}}").splitlines()
    assert sorted(names) == ["flt-done exited", "flt-made created", "flt-up running"]
    rows = json.loads(ok(root, "ps", "--format", "json"))
    assert [r["Id"] for r in rows] == [up]
    proc = hutch(root, "ps", "--filter", "status=bogus")
    assert proc.returncode == 125 and "invalid status" in proc.stderr
    assert ok(root, "rm", "-f", "flt-up", "flt-done", "flt-made") == "flt-up\nflt-done\nflt-made\n"
    assert gone(root, up) == []


def test_inspect_missing_and_templates(root: Path) -> None:
    proc = hutch(root, "inspect", "no-such-thing")
    assert proc.returncode == 125 and proc.stderr == 'Error: no such object: "no-such-thing"\n'
    assert proc.stdout == "[]\n"
    cid = ok(root, "create", "--name", "tmpl", "-e", "A=b", "--entrypoint", "echo", IMAGE, "x").strip()
    assert ok(root, "inspect", "-f", "{{.Config.Entrypoint}} {{.Config.Cmd}}", "tmpl") == "[echo] [x]\n"
    assert "A=b" in json.loads(ok(root, "inspect", "--format", "{{json .Config.Env}}", "tmpl"))
    assert ok(root, "inspect", "-f", "{{.HostConfig.NetworkMode}}", "tmpl") == "bridge\n"
    # An image name falls back to the image (podman's inspect of any object); `container inspect` does not.
    assert json.loads(ok(root, "inspect", IMAGE))[0]["Id"]
    proc = hutch(root, "container", "inspect", IMAGE)
    assert (proc.returncode, proc.stderr) == (125, f'Error: no such container "{IMAGE}"\n')
    ok(root, "rm", "tmpl")
    assert gone(root, cid) == []


def test_rmi_refuses_an_image_a_container_uses(root: Path) -> None:
    ok(root, "tag", IMAGE, "inuse:1")
    cid = ok(root, "create", "--name", "user", "inuse:1", "true").strip()
    image_id = ok(root, "inspect", "-f", "{{.Image}}", "user").strip()
    assert ok(root, "rmi", "inuse:1").startswith("Untagged: ")  # other tags stay: an untag only
    proc = hutch(root, "rmi", "-f", image_id)
    assert proc.returncode == 2 and proc.stderr.startswith("Error: image used by ")
    ok(root, "image", "prune", "-a")
    assert image_id[:12] in ok(root, "images", "-q")  # kept: a container uses it
    assert ok(root, "start", "-a", "user") == ""
    ok(root, "rm", "user")
    assert gone(root, cid) == []
    assert os.path.isdir(root)


def test_exec_tty_and_start_attach_tty(root: Path) -> None:
    cid = ok(root, "run", "-d", "--name", "ttyexec", IMAGE, "sleep", "1000").strip()
    code, out = through_pty(
        [*HUTCH, "--root", str(root), "exec", "-t", "ttyexec", "sh", "-c", "tty; echo TERM=$TERM; exit 6"]
    )
    assert code == 6
    assert b"/dev/pts/" in out and b"TERM=xterm" in out
    ok(root, "rm", "-f", "ttyexec")
    assert gone(root, cid) == []
    cid = ok(root, "create", "-t", "--name", "ttystart", IMAGE, "sh", "-c", "tty; exit 8").strip()
    # Detached, conmon holds the terminal: the output is in the log.
    assert ok(root, "start", "ttystart") == "ttystart\n"
    assert ok(root, "wait", "ttystart") == "8\n"
    assert ok(root, "logs", "ttystart") == "/dev/pts/0\n"  # the pty's \r\n, read as text
    code, out = through_pty([*HUTCH, "--root", str(root), "start", "-a", "ttystart"])
    assert code == 8 and b"/dev/pts/0" in out
    ok(root, "rm", "ttystart")
    assert gone(root, cid) == []


def test_v1_container_db_is_migrated(tmp_path: Path) -> None:
    """A containers.db of the first slice (schema 1) gains the config column and keeps its rows."""
    import sqlite3

    from hutch.engine import db

    path = tmp_path / "containers.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied REAL NOT NULL)")
    conn.execute(db._SCHEMA_V1)
    conn.execute("INSERT INTO schema_version VALUES (1, 0)")
    conn.execute(
        "INSERT INTO containers (id, name, image_id, image_name, command, created, state, dir)"
        " VALUES ('a' , 'old', 'b', 'img', 'true', 1.0, 'exited', '/x')"
    )
    conn.commit()
    conn.close()
    records = db.ContainerDB(str(path)).all()
    assert [(r.name, r.config) for r in records] == [("old", "{}")]
