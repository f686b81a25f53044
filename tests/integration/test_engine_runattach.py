"""`run -t` in the foreground goes under conmon, attached through its socket: through a real pty, the detach
keys leave the container running under conmon (its output in the log, `attach` again later), an exit
returns the container's code, and --rm removes it, also after a detach."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_monitor import Terminal, conmon_pid
from tests.integration.test_engine_run import HUTCH, IMAGE, hutch, leftovers, ok

remote = run_suite.remote
root = run_suite.root


def names(root: Path) -> list[str]:
    return ok(root, "ps", "-a", "--format", "{{.Names}}").split()


def test_run_it_detaches_and_attaches_again(root: Path) -> None:
    term = Terminal(
        [*HUTCH, "--root", str(root), "run", "-it", "--name", "rit", "--network", "none", IMAGE, "sh"]
    )
    term.read_until(b"/ # ")
    term.send(b"echo hi-$((40+2)); stty size\r")
    term.read_until(b"30 101")  # our terminal's size reached the container's pty
    term.send(b"\x10\x11")  # ctrl-p ctrl-q
    assert term.close() == 0
    cid = ok(root, "inspect", "-f", "{{.Id}}", "rit").strip()
    assert ok(root, "inspect", "-f", "{{.State.Status}}", "rit").strip() == "running"
    assert conmon_pid(root, cid) > 0
    assert "hi-42" in ok(root, "logs", "rit")
    term = Terminal([*HUTCH, "--root", str(root), "attach", "rit"])
    time.sleep(0.5)
    term.send(b"exit 7\r")
    assert term.close() == 7
    ok(root, "rm", "rit")
    assert leftovers(root) == []


def test_run_it_exit_code_rm_and_own_detach_keys(root: Path) -> None:
    argv = [*HUTCH, "--root", str(root), "run", "-it", "--rm", "--name", "ritrm", "--network", "none", IMAGE]
    before = ok(root, "volume", "ls", "-q")
    term = Terminal([*argv[:-1], "-v", "/anon", IMAGE, "sh", "-c", "echo ready; read x; echo got-$x; exit 4"])
    term.read_until(b"ready")
    term.send(b"abc\r")
    term.read_until(b"got-abc")
    assert term.close() == 4
    assert "ritrm" not in names(root)
    assert ok(root, "volume", "ls", "-q") == before  # --rm took its anonymous volume
    # -t without -i: the output, the code, no stdin.
    term = Terminal([*argv, "sh", "-c", "tty; exit 3"])
    term.read_until(b"/dev/pts/0")
    assert term.close() == 3
    # Detached with --rm: the container runs on, and goes when it exits.
    term = Terminal([*argv[:-1], "--detach-keys", "ctrl-x", IMAGE, "sh"])
    term.read_until(b"/ # ")
    term.send(b"\x18")
    assert term.close() == 0
    assert ok(root, "inspect", "-f", "{{.State.Status}}", "ritrm").strip() == "running"
    ok(root, "stop", "-t", "0", "ritrm")
    deadline = time.monotonic() + 10
    while "ritrm" in names(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "ritrm" not in names(root)
    assert leftovers(root) == []


def test_bad_detach_keys_leave_nothing(root: Path) -> None:
    proc = hutch(root, "run", "-t", "--rm", "--detach-keys", "ctrl-1", "--network", "none", IMAGE, "true")
    assert proc.returncode == 125 and proc.stderr.startswith("Error: --detach-keys 'ctrl-1'")
    assert leftovers(root) == [] and not [n for n in names(root) if n]


def test_start_attach_of_a_terminal_container_detaches(root: Path) -> None:
    ok(root, "create", "-it", "--name", "sat", "--network", "none", IMAGE, "sh")
    term = Terminal([*HUTCH, "--root", str(root), "start", "-a", "sat"])
    term.read_until(b"/ # ")
    term.send(b"echo from-$((6*7))\r")
    term.read_until(b"from-42")
    term.send(b"\x10\x11")
    assert term.close() == 0
    assert ok(root, "inspect", "-f", "{{.State.Status}}", "sat").strip() == "running"
    ok(root, "stop", "-t", "0", "sat")
    # A start -a that cannot launch puts the container back as it was.
    ok(root, "create", "-t", "--name", "satbad", "--network", "none", IMAGE, "no-such-command")
    term = Terminal([*HUTCH, "--root", str(root), "start", "-a", "satbad"])
    assert term.close() == 127
    assert ok(root, "inspect", "-f", "{{.State.Status}}", "satbad").strip() == "created"
    bad = hutch(root, "start", "-a", "--detach-keys", "ctrl-1", "satbad")
    assert bad.returncode == 125 and "--detach-keys 'ctrl-1'" in bad.stderr
    assert ok(root, "inspect", "-f", "{{.State.Status}}", "satbad").strip() == "created"
    ok(root, "rm", "sat", "satbad")
    assert leftovers(root) == []
