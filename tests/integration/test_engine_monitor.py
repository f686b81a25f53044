"""conmon as the monitor of detached containers: `run -d` and `start` through conmon, the exit recorded by the
`container cleanup` exit command, k8s-file `logs` with its flags, `attach` through conmon's socket,
`--runtime runc|runsc`, `--restart` policies, and a kill -9 of conmon followed by `rm -f`. Effects are seen in
the processes (conmon is init's parent), the log file, the exit codes and what is left on the host.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_lifecycle import until
from tests.integration.test_engine_run import HUTCH, IMAGE, hutch, ok

remote = run_suite.remote
root = run_suite.root

SOCKET_DIR = Path("/run/hutch/socket")


def inspect(root: Path, name: str, template: str) -> str:
    return ok(root, "inspect", "-f", template, name).strip()


def userdata(root: Path, cid: str) -> Path:
    return root / "containers" / cid / "userdata"


def conmon_pid(root: Path, cid: str) -> int:
    return int((userdata(root, cid) / "conmon.pid").read_text().strip())


def ppid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]


def all_gone(root: Path, cid: str) -> list[str]:
    """What is left of container `cid` (only it: other engineers' containers may run meanwhile): mounts,
    its dir, runtime state of any runtime, cgroups, the attach socket link, processes naming it."""
    found = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if cid in line]
    if (root / "containers" / cid).exists():
        found.append(f"container dir {root / 'containers' / cid}")
    found += [str(p) for p in Path("/run/hutch").glob(f"*/{cid}")]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/hutch/{cid}")]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob(f"hutch/{cid}")]
    found += [f"process {p}" for p in _processes_naming(cid)]
    return found


def not_cgroups(found: list[str]) -> list[str]:
    """leftovers() without cgroups, which name other engineers' running containers too."""
    return [x for x in found if not x.startswith("cgroup ")]


def _processes_naming(cid: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if cid.encode() in cmdline:
            out.append(int(entry))
    return out


def resident_kib(pid: int, library: str, perms: str) -> int:
    """Rss of `pid`'s mappings of `library` with permissions `perms`, from /proc/PID/smaps."""
    total, counting = 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            counting = fields[1] == perms and library in line
        elif counting and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def test_detached_run_is_watched_by_conmon_and_its_exit_recorded(root: Path) -> None:
    start = time.monotonic()
    cid = ok(root, "run", "-d", "--name", "mon1", IMAGE, "sh", "-c", "echo up; sleep 2; exit 3").strip()
    assert len(cid) == 64 and time.monotonic() - start < 10  # the CLI returned while the container runs
    assert inspect(root, cid, "{{.State.Status}}") == "running"
    pid = int(inspect(root, cid, "{{.State.Pid}}"))
    monitor = conmon_pid(root, cid)
    assert Path(f"/proc/{monitor}/comm").read_text().strip() == "conmon"
    assert ppid(pid) == monitor  # init was re-parented to conmon, the subreaper
    assert ok(root, "wait", cid) == "3\n"
    assert "Exited (3)" in ok(root, "ps", "-a", "--filter", "name=mon1")
    assert inspect(root, cid, "{{.State.ExitCode}} {{.State.Running}}") == "3 false"
    assert (userdata(root, cid) / "exits" / cid).read_text().strip() == "3"
    assert inspect(root, cid, "{{.LogPath}} {{.ConmonPidFile}} {{.HostConfig.LogConfig.Type}}") == (
        f"{userdata(root, cid) / 'ctr.log'} {userdata(root, cid) / 'conmon.pid'} k8s-file"
    )
    until(lambda: not Path(f"/proc/{monitor}").exists())
    # cleanup released the runtime state, the rootfs mount and the socket link, and conmon is gone
    assert not Path(f"/run/hutch/runtime/{cid}").exists()
    assert not os.path.ismount(root / "containers" / cid / "merged")
    assert not (SOCKET_DIR / cid).is_symlink()
    # start goes through conmon again; the log grows
    assert ok(root, "start", "mon1") == "mon1\n"
    assert ok(root, "wait", "mon1") == "3\n"
    assert ok(root, "logs", "mon1") == "up\nup\n"
    ok(root, "rm", "mon1")
    assert all_gone(root, cid) == []


def test_conmon_gets_only_the_environment_podman_gives_it(root: Path) -> None:
    """The caller's environment stops at conmon (its locale would cost every monitor the locale's tables), and
    the monitor that conmon forks never runs the dynamic linker: LD_BIND_NOW resolved all before the fork."""
    env = {**os.environ, "LANG": "C.UTF-8", "HUTCH_TEST_MARK": "caller"}
    argv = [*HUTCH, "--root", str(root), "run", "-d", "--name", "monenv", IMAGE, "sleep", "60"]
    cid = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    monitor = conmon_pid(root, cid)
    environ = dict(
        entry.split("=", 1) for entry in Path(f"/proc/{monitor}/environ").read_text().split("\0") if entry
    )
    assert "HUTCH_TEST_MARK" not in environ and "LANG" not in environ
    assert environ["PATH"] == os.environ["PATH"] and environ["LD_BIND_NOW"] == "1"
    assert "/usr/lib/locale/" not in Path(f"/proc/{monitor}/maps").read_text()
    time.sleep(0.5)  # conmon's first look at the container's cgroup is done
    assert resident_kib(monitor, "ld-linux", "r-xp") == 0
    ok(root, "rm", "-f", "-t", "0", "monenv")
    assert all_gone(root, cid) == []


def test_a_failed_detached_run_leaves_nothing(root: Path) -> None:
    proc = hutch(root, "run", "-d", "--name", "nocmd", IMAGE, "no-such-command")
    assert proc.returncode == 127 and proc.stderr.startswith("Error: ") and "no-such-command" in proc.stderr
    assert proc.stdout == ""
    assert "nocmd" not in ok(root, "ps", "-a")
    links = [p for p in SOCKET_DIR.iterdir() if str(root) in os.readlink(p)] if SOCKET_DIR.exists() else []
    assert links == [] and not_cgroups(run_suite.leftovers(root)) == []


def _log_times(path: Path) -> dict[str, str]:
    """The k8s-file timestamp of each full line's content."""
    out = {}
    for line in path.read_text().splitlines():
        stamp, _stream, tag, content = line.split(" ", 3)
        if tag == "F":
            out[content] = stamp
    return out


def test_logs_k8s_file_and_its_flags(root: Path) -> None:
    script = "echo one; echo two >&2; sleep 1.5; echo three; printf fo; sleep 0.5; echo ur; echo five >&2"
    cid = ok(root, "run", "-d", "--name", "talk", IMAGE, "sh", "-c", script).strip()
    assert ok(root, "wait", "talk") == "0\n"
    log = userdata(root, cid) / "ctr.log"
    raw = log.read_text().splitlines()
    assert all(
        re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d (stdout|stderr) [FP] ", x) for x in raw
    )
    assert any(" stdout P fo" in x for x in raw)  # the pause mid-line was written as a partial line

    def logs(*flags: str) -> tuple[str, str]:
        proc = hutch(root, "logs", *flags, "talk")
        assert proc.returncode == 0, proc.stderr
        return proc.stdout, proc.stderr

    assert logs() == ("one\nthree\nfour\n", "two\nfive\n")
    assert logs("--tail", "2") == ("four\n", "five\n")
    assert logs("--tail", "0") == ("", "")
    out, err = logs("-t")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z "
    assert re.fullmatch(f"{stamp}one\n{stamp}three\n{stamp}four\n", out), out
    assert re.fullmatch(f"{stamp}two\n{stamp}five\n", err), err
    times = _log_times(log)
    assert logs("--since", times["three"]) == ("three\nfour\n", "five\n")
    assert logs("--until", times["two"]) == ("one\n", "two\n")
    assert logs("--since", "10m") == ("one\nthree\nfour\n", "two\nfive\n")
    time.sleep(1.1)
    assert logs("--since", "1s") == ("", "")
    assert logs("--until", "1h") == ("", "")
    since = str(int(time.time()) + 5)  # a Unix time in the future
    assert logs("--since", since) == ("", "")
    proc = hutch(root, "logs", "--since", "yesterday-ish", "talk")
    assert proc.returncode == 125 and proc.stderr.startswith("Error: --since 'yesterday-ish'")
    ok(root, "rm", "talk")


def test_logs_follow_a_running_container(root: Path) -> None:
    ok(root, "run", "-d", "--name", "follow", IMAGE, "sh", "-c", "echo a; sleep 1.5; echo b >&2; echo c")
    proc = hutch(root, "logs", "-f", "follow")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "a\nc\n", "b\n")
    ok(root, "rm", "follow")


class Terminal:
    """A command on a new pty: what it writes, and keys to send it."""

    def __init__(self, argv: list[str], rows: int = 30, cols: int = 101) -> None:
        import fcntl
        import struct
        import termios

        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.out = b""

    def read_until(self, expected: bytes, timeout: float = 15) -> bytes:
        deadline = time.monotonic() + timeout
        while expected not in self.out and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.out += chunk
        assert expected in self.out, self.out
        return self.out

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> int:
        code = self.proc.wait(15)
        os.close(self.master)
        return code


def test_attach_to_a_detached_terminal(root: Path) -> None:
    cid = ok(root, "run", "-dit", "--name", "term", IMAGE, "sh").strip()
    monitor = conmon_pid(root, cid)
    term = Terminal([*HUTCH, "--root", str(root), "attach", "term"])
    time.sleep(0.5)
    term.send(b"echo hi-$((40+2)); tty; stty size\r")
    out = term.read_until(b"/dev/pts/0")
    assert b"hi-42" in out
    assert term.read_until(b"30 101")  # our terminal's size reached the container's pty (conmon's ctl fifo)
    term.send(b"\x10\x11")  # ctrl-p ctrl-q: detach, the container runs on
    assert term.close() == 0
    assert inspect(root, "term", "{{.State.Status}}") == "running"
    assert conmon_pid(root, cid) == monitor
    # Detach keys of our own; then the container's exit ends the attach with its code.
    term = Terminal([*HUTCH, "--root", str(root), "attach", "--detach-keys", "ctrl-x", "term"])
    time.sleep(0.5)
    term.send(b"echo again-$((1+1))\r")
    term.read_until(b"again-2")
    term.send(b"exit 7\r")
    assert term.close() == 7
    assert ok(root, "wait", "term") == "7\n"
    ok(root, "rm", "term")
    assert all_gone(root, cid) == []


def test_attach_no_stdin_and_not_running(root: Path) -> None:
    ok(root, "run", "-d", "--name", "ticker", IMAGE, "sh", "-c", "sleep 1; echo tick; echo tock >&2; exit 2")
    proc = subprocess.run(
        [*HUTCH, "--root", str(root), "attach", "--no-stdin", "ticker"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "tick\n", "tock\n")
    proc = hutch(root, "attach", "ticker")
    assert proc.returncode == 125 and "you can only attach to running containers" in proc.stderr
    ok(root, "rm", "ticker")


def test_attach_stdin_without_terminal(root: Path) -> None:
    script = "while read l; do echo got $l; done"
    cid = ok(root, "run", "-di", "--name", "reader", IMAGE, "sh", "-c", script).strip()
    proc = subprocess.Popen(
        [*HUTCH, "--root", str(root), "attach", "reader"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    time.sleep(0.5)
    proc.stdin.write(b"hello\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"got hello\n"
    proc.stdin.write(b"\x10\x11")  # the detach keys work on a pipe too
    proc.stdin.flush()
    assert proc.wait(15) == 0
    assert inspect(root, "reader", "{{.State.Status}}") == "running"
    assert ok(root, "logs", "reader") == "got hello\n"
    ok(root, "rm", "-f", "reader")
    assert all_gone(root, cid) == []


def runtime_state(runtime: str, cid: str) -> dict[str, object] | None:
    proc = subprocess.run(
        [runtime, "--root", f"/run/hutch/{runtime}", "state", cid],
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def test_runtime_runc(root: Path) -> None:
    cid = ok(
        root, "run", "-d", "--runtime", "runc", "--name", "byrunc", IMAGE, "sh", "-c", "echo hi; sleep 1000"
    )
    cid = cid.strip()
    state = runtime_state("runc", cid)
    assert state is not None and state["status"] == "running"
    pid = int(inspect(root, "byrunc", "{{.State.Pid}}"))
    assert pid == state["pid"] and ppid(pid) == conmon_pid(root, cid)
    assert inspect(root, "byrunc", "{{.OCIRuntime}}") == "runc"
    until(lambda: ok(root, "logs", "byrunc") == "hi\n")
    assert ok(root, "exec", "byrunc", "cat", "/proc/1/cmdline").split("\0")[:2] == ["sleep", "1000"]
    assert hutch(root, "exec", "byrunc", "sh", "-c", "exit 4").returncode == 4
    assert hutch(root, "exec", "byrunc", "no-such-command").returncode == 127
    assert ok(root, "stop", "-t", "1", "byrunc") == "byrunc\n"
    assert inspect(root, "byrunc", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    assert runtime_state("runc", cid) is None
    assert ok(root, "rm", "byrunc") == "byrunc\n"
    assert all_gone(root, cid) == []
    # Foreground, through runc's own create/start with our stdio.
    proc = hutch(root, "run", "--rm", "--runtime", "runc", IMAGE, "sh", "-c", "echo fg; exit 5")
    assert (proc.returncode, proc.stdout) == (5, "fg\n")
    # and with a terminal: runc sends the pty through our console socket, we relay it.
    term = Terminal([*HUTCH, "--root", str(root), "run", "--rm", "-it", "--runtime", "runc", IMAGE, "sh"])
    time.sleep(1)
    term.send(b"tty; echo x-$((2+3)); exit 4\r")
    assert b"/dev/pts/0" in term.read_until(b"x-5")
    assert term.close() == 4
    proc = hutch(root, "run", "--rm", "--runtime", "/no/such/runtime", IMAGE, "true")
    assert proc.returncode == 125 and proc.stderr.startswith("Error: --runtime '/no/such/runtime'")
    assert not_cgroups(run_suite.leftovers(root)) == []


def test_runtime_crun_refuses_cleanly(root: Path) -> None:
    # crun 1.8 (Debian 12) refuses this spec (ociVersion 1.2.0) and this host's hybrid cgroups: the run
    # fails with one error and leaves nothing.
    for detach in (["-d"], []):
        proc = hutch(root, "run", *detach, "--rm", "--runtime", "crun", "--name", "bycrun", IMAGE, "true")
        assert proc.returncode == 125 and "Error: " in proc.stderr, proc.stderr
        assert "bycrun" not in ok(root, "ps", "-a")
    assert not_cgroups(run_suite.leftovers(root)) == []


@pytest.mark.skipif(shutil.which("runsc") is None, reason="runsc (gVisor) is not installed")
def test_runtime_runsc(root: Path) -> None:
    # gVisor's own kernel answers uname, so the process really runs in the sandbox.
    proc = hutch(root, "run", "--rm", "--runtime", "runsc", IMAGE, "sh", "-c", "uname -r; exit 6")
    assert (proc.returncode, proc.stdout) == (6, "4.4.0\n")
    cid = ok(root, "run", "-d", "--runtime", "runsc", "--name", "gvisor", IMAGE, "sleep", "1000").strip()
    assert runtime_state("runsc", cid) is not None
    assert ok(root, "exec", "gvisor", "uname", "-r") == "4.4.0\n"
    ok(root, "rm", "-f", "gvisor")
    assert runtime_state("runsc", cid) is None
    assert all_gone(root, cid) == []


def test_restart_on_failure_counts(root: Path) -> None:
    cid = ok(
        root,
        "run",
        "-d",
        "--restart",
        "on-failure:2",
        "--name",
        "flaky",
        IMAGE,
        "sh",
        "-c",
        "echo run; exit 1",
    )
    cid = cid.strip()
    until(
        lambda: (
            ok(root, "logs", "flaky").count("run") == 3
            and inspect(root, "flaky", "{{.State.Status}}") == "exited"
        )
    )
    time.sleep(1)  # no fourth run comes
    assert ok(root, "logs", "flaky") == "run\nrun\nrun\n"
    assert inspect(root, "flaky", "{{.RestartCount}} {{.State.ExitCode}} {{.State.Status}}") == "2 1 exited"
    assert inspect(root, "flaky", "{{.HostConfig.RestartPolicy.Name}}") == "on-failure"
    # on-failure does not restart a success.
    ok(root, "run", "-d", "--restart", "on-failure", "--name", "fine", IMAGE, "true")
    assert ok(root, "wait", "fine") == "0\n"
    time.sleep(1)
    assert inspect(root, "fine", "{{.RestartCount}} {{.State.Status}}") == "0 exited"
    ok(root, "rm", "flaky", "fine")
    assert all_gone(root, cid) == []


def test_restart_always_and_stop(root: Path) -> None:
    script = "echo run; sleep 0.3"
    cid = ok(root, "run", "-d", "--restart", "always", "--name", "phoenix", IMAGE, "sh", "-c", script).strip()
    until(lambda: ok(root, "logs", "phoenix").count("run") >= 3, timeout=20)
    assert int(inspect(root, "phoenix", "{{.RestartCount}}")) >= 2
    # stop (maybe between two runs): no restart follows
    ok(root, "stop", "-t", "1", "phoenix")
    assert inspect(root, "phoenix", "{{.State.Status}}") == "exited"
    runs = ok(root, "logs", "phoenix").count("run")
    time.sleep(1.5)
    assert inspect(root, "phoenix", "{{.State.Status}}") == "exited"
    assert ok(root, "logs", "phoenix").count("run") == runs
    # a start by the user starts the count again
    ok(root, "start", "phoenix")
    assert inspect(root, "phoenix", "{{.RestartCount}}") == "0"
    ok(root, "rm", "-f", "phoenix")
    assert all_gone(root, cid) == []


def test_restart_flag_errors(root: Path) -> None:
    proc = hutch(root, "run", "-d", "--restart", "sometimes", "--name", "bad", IMAGE, "true")
    assert proc.returncode == 125 and proc.stderr.startswith("Error: --restart 'sometimes'")
    proc = hutch(root, "run", "-d", "--rm", "--restart", "always", "--name", "bad", IMAGE, "true")
    assert proc.returncode == 125 and "--rm option conflicts with --restart" in proc.stderr
    assert "bad" not in ok(root, "ps", "-a")


def test_kill_9_of_conmon_then_rm_f_leaves_nothing(root: Path) -> None:
    cid = ok(root, "run", "-d", "--name", "orphan", IMAGE, "sleep", "1000").strip()
    pid = int(inspect(root, "orphan", "{{.State.Pid}}"))
    monitor = conmon_pid(root, cid)
    os.kill(monitor, signal.SIGKILL)
    until(lambda: not Path(f"/proc/{monitor}").exists() or _zombie(monitor))
    assert inspect(root, "orphan", "{{.State.Status}}") == "running"  # the container outlives its monitor
    assert ok(root, "rm", "-f", "orphan") == "orphan\n"
    until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid))
    assert all_gone(root, cid) == []


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"
