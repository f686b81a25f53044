"""Failure paths close what they opened, seen from this process's /proc/self/fd and the directories left:
an exec whose command cannot run (its console socket), a console socket that cannot be made (its temp dir),
pod logs whose second log cannot be read (the first one's file)."""

from __future__ import annotations

import errno
import glob
import os
import resource
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import IMAGE, ok

from hutch.engine.containers import Engine
from hutch.errors import HutchError
from hutch.linux import prctl

remote = run_suite.remote
root = run_suite.root


def fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def engine(root: Path) -> Iterator[Engine]:
    e = Engine(str(root))
    yield e
    e.db.close()


def test_exec_that_cannot_run_closes_its_console_socket(root: Path, engine: Engine) -> None:
    from hutch.engine.exec import exec_command

    cid = ok(root, "run", "-d", IMAGE, "sleep", "60").strip()
    try:
        before = fds()
        kept = []  # errors a caller keeps (logged, re-raised later) keep their frames: nothing may hang on them
        for _ in range(3):
            with pytest.raises(HutchError, match="nosuchcommand") as info:
                exec_command(engine, cid, ["/nosuchcommand"], tty=True, detach=True)
            kept.append(info.value)
        assert fds() == before
    finally:
        ok(root, "rm", "-f", "-t", "0", cid)


def test_console_socket_that_cannot_be_made_leaves_no_dir() -> None:
    from hutch.engine.foreign import ConsoleSocket

    before = set(glob.glob("/run/hutch/console-*"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # No fd left for the socket: socket() fails with EMFILE after the temp dir is made.
    lowest_free = os.dup(0)  # the kernel gives the lowest free number
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    made = None
    try:
        made = ConsoleSocket()
    except OSError as e:
        assert e.errno == errno.EMFILE
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if made is not None:
        made.close()
    assert made is None and set(glob.glob("/run/hutch/console-*")) == before


def test_pod_logs_that_cannot_read_a_log_close_the_others(root: Path, engine: Engine) -> None:
    from hutch.engine import podops

    first = ok(root, "run", "--name", "logged", IMAGE, "echo", "one").strip()
    second = ok(root, "create", IMAGE, "true").strip()
    try:
        recs = [engine.find("logged"), engine.find(second)]
        os.mkdir(engine.log_path(recs[1]))  # a log that is a directory: open fails with EISDIR
        before = fds()
        with pytest.raises(IsADirectoryError) as info:
            list(podops.logs(engine, recs))
        kept = info.value  # its frames hold what they opened, unless closed
        assert fds() == before and kept
    finally:
        os.rmdir(engine.log_path(recs[1]))
        ok(root, "rm", "logged", second)
    assert first == "one"


def test_foreign_run_whose_start_fails_closes_the_terminal(root: Path, engine: Engine) -> None:
    """A -t run through runc: the terminal comes through the console socket at create, then start fails
    (made to fail here): the pty master is closed, and the failed launch removes the container."""
    import shutil

    from hutch.engine import foreign
    from hutch.engine.monitor import runtime_of

    if shutil.which("runc") is None:
        pytest.fail("runc is not installed (Debian's runc)")
    cid = ok(root, "create", "-t", "--network", "none", "--runtime", "runc", IMAGE, "true").strip()
    rec = engine.find(cid)
    runtime = runtime_of(rec)

    def failing_start(container_id: str) -> None:
        raise HutchError(f"start {container_id[:12]}: refused for the test")

    runtime.start = failing_start  # type: ignore[method-assign]
    before = fds()
    try:
        with pytest.raises(HutchError, match="refused for the test") as info:
            foreign.run_foreground(engine, rec, runtime, tty=True, interactive=True, restore=None)
    finally:
        # run_foreground made this (pytest's) process a subreaper: orphaned inits of later tests would be
        # reparented here and never reaped (zombies that `wait` and teardowns take for live processes).
        prctl.prctl(prctl.PR_SET_CHILD_SUBREAPER, 0)
    kept = info.value  # its frames hold the master, unless closed
    assert fds() == before and kept
    assert ok(root, "ps", "-a", "-q", "--no-trunc").split().count(cid) == 0
