"""process.terminal: the pty master reaches the caller over --console-socket (SCM_RIGHTS), the process has
the slave as its controlling terminal and stdio, and consoleSize is what `stty size` sees inside."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tests.integration.helpers import ConsoleSocket, read_until, wait_for


def _terminal_bundle(bundle: Any, script: str, **fields: Any) -> Path:
    def edit(spec: dict[str, Any]) -> None:
        spec["process"]["terminal"] = True

    path: Path = bundle(["sh", "-c", script], edit=edit, **fields)
    return path


# The scripts sleep after their last line: data a pty slave writes just before it closes can be lost to the
# master's reader, and these tests are about the terminal, not about that race.


def _lines(data: bytes) -> list[str]:
    return data.decode(errors="replace").replace("\r\n", "\n").splitlines()


def test_console_socket_receives_the_pty_master(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    script = "tty; stty size; ls -l /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2; echo END; sleep 10"
    b = _terminal_bundle(bundle, script, consoleSize={"height": 33, "width": 101})
    with ConsoleSocket(tmp_path) as console:
        runtime.run("create", "--console-socket", console.path, "--bundle", b, "c1")
        master = console.master()
        runtime.run("start", "c1")
        lines = _lines(read_until(master, b"END"))
    assert lines[0] == "/dev/pts/0"
    assert lines[1] == "33 101"
    for fd, line in zip((0, 1, 2), lines[2:5], strict=True):
        assert line.endswith(f"/proc/self/fd/{fd} -> /dev/pts/0"), line


def test_terminal_is_the_controlling_terminal(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    # field 7 of /proc/self/stat is tty_nr: the pty's device number (major 136); the shell leads its session
    b = _terminal_bundle(bundle, "cat /proc/self/stat; echo END; sleep 10")
    with ConsoleSocket(tmp_path) as console:
        runtime.run("run", "--detach", "--console-socket", console.path, "--bundle", b, "c1")
        data = read_until(console.master(), b"END")
    stat = _lines(data)[0]
    fields = stat[stat.rindex(")") + 2 :].split()
    tty_nr = int(fields[4])
    assert os.major(tty_nr) == 136 and os.minor(tty_nr) == 0, tty_nr


def test_dev_console_is_the_terminal(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    # As runc makes it: /dev/console is the pty slave, bound there; writing to it reaches the master. The
    # root is read-only, which must not stop it, and /dev/console was not in the rootfs before.
    script = "stat -c '%t:%T' /dev/console /dev/pts/0; echo via-console > /dev/console; echo END; sleep 10"
    b = _terminal_bundle(bundle, script)
    spec = json.loads((b / "config.json").read_text())
    spec["root"]["readonly"] = True
    (b / "config.json").write_text(json.dumps(spec))
    assert not (b / "rootfs" / "dev" / "console").exists()
    with ConsoleSocket(tmp_path) as console:
        runtime.run("run", "--detach", "--console-socket", console.path, "--bundle", b, "c1")
        lines = _lines(read_until(console.master(), b"END"))
    assert lines[0] == lines[1] == "88:0", lines  # major 136, minor 0, in hex: the same pty
    assert "via-console" in lines


def test_a_symlink_at_dev_console_is_refused(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["process"]["terminal"] = True
        spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/dev"]  # /dev from the rootfs

    b: Path = bundle(["true"], edit=edit)
    target = tmp_path / "host-file"
    target.write_text("host\n")
    (b / "rootfs" / "dev" / "console").symlink_to(target)
    (b / "rootfs" / "dev" / "pts").mkdir(exist_ok=True)
    (b / "rootfs" / "dev" / "ptmx").symlink_to("pts/ptmx")
    with ConsoleSocket(tmp_path) as console:
        proc = runtime.run("create", "--console-socket", console.path, "--bundle", b, "c1", check=False)
    assert proc.returncode != 0
    assert "/dev/console: is a symlink" in proc.stderr
    assert target.read_text() == "host\n"


def test_input_through_the_pty(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    b = _terminal_bundle(bundle, "read line; echo got:$line; exit 7")
    with ConsoleSocket(tmp_path) as console:
        runtime.run("run", "--detach", "--console-socket", console.path, "--bundle", b, "c1")
        master = console.master()
        os.write(master, b"hello pty\n")
        data = read_until(master, b"got:hello pty")
        assert "got:hello pty" in _lines(data)
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="the container to exit")


def test_terminal_without_console_socket_fails_create(bundle: Any, runtime: Any) -> None:
    result = runtime.run("create", "--bundle", _terminal_bundle(bundle, "true"), "c1", check=False)
    assert result.returncode != 0
    assert "console-socket" in result.stderr
    assert not (runtime.root / "c1").exists()


def test_console_socket_that_does_not_exist(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    b = _terminal_bundle(bundle, "true")
    result = runtime.run(
        "create", "--console-socket", tmp_path / "nope.sock", "--bundle", b, "c1", check=False
    )
    assert result.returncode != 0
    assert "nope.sock" in result.stderr
    assert not (runtime.root / "c1").exists()


def test_foreground_run_with_a_terminal_proxies_it(bundle: Any, runtime: Any) -> None:
    # without --console-socket, a foreground `run` takes the master itself and copies the output out
    result = runtime.run("run", "--bundle", _terminal_bundle(bundle, "tty; exit 5"), "c1", check=False)
    assert result.returncode == 5
    assert _lines(result.stdout.encode())[0] == "/dev/pts/0"


def test_exec_tty_with_console_socket(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(["sleep", "60"]), "c1")
    with ConsoleSocket(tmp_path) as console:
        runtime.run(
            "exec",
            "--tty",
            "--detach",
            "--console-socket",
            console.path,
            "c1",
            "sh",
            "-c",
            "tty; ls /dev/console || echo no-console; echo END; sleep 10",
        )
        lines = _lines(read_until(console.master(), b"END"))
    assert lines[0].startswith("/dev/pts/")
    assert "no-console" in lines  # an exec's terminal is its own: /dev/console is init's affair


def test_exec_process_file_with_terminal_and_console_size(bundle: Any, runtime: Any, tmp_path: Path) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(["sleep", "60"]), "c1")
    process = {
        "terminal": True,
        "consoleSize": {"height": 40, "width": 120},
        "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", "stty size; echo END; sleep 10"],
        "env": ["PATH=/bin"],
        "cwd": "/",
    }
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    with ConsoleSocket(tmp_path) as console:
        runtime.run("exec", "--detach", "--process", path, "--console-socket", console.path, "c1")
        assert _lines(read_until(console.master(), b"END"))[0] == "40 120"


@pytest.mark.parametrize("detach", [True, False])
def test_exec_tty_without_console_socket(bundle: Any, runtime: Any, detach: bool) -> None:
    runtime.run("run", "--detach", "--bundle", bundle(["sleep", "60"]), "c1")
    args = ["exec", "--tty", *(["--detach"] if detach else []), "c1", "sh", "-c", "tty; exit 3"]
    result = runtime.run(*args, check=False)
    if detach:  # nowhere to send the terminal: refused
        assert result.returncode != 0
        assert "console-socket" in result.stderr
    else:  # the foreground exec proxies it
        assert result.returncode == 3
        assert _lines(result.stdout.encode())[0].startswith("/dev/pts/")
