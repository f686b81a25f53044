"""Logs beyond conmon's: a foreground run's k8s-file log (the in-process monitor tees the output), logs of
several containers (prefixed by short id, or name with --names), --log-driver k8s-file|none|passthrough and
--log-opt max-size (conmon's --log-size-max, and the same limit in the foreground)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration import test_engine_run as run_suite
from tests.integration.test_engine_run import IMAGE, hutch, leftovers, ok

remote = run_suite.remote
root = run_suite.root

MANY_LINES = "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done"


def log_file(root: Path, name: str) -> Path:
    cid = ok(root, "inspect", "-f", "{{.Id}}", name).strip()
    return root / "containers" / cid / "userdata" / "ctr.log"


def test_foreground_run_writes_the_log_and_still_prints(root: Path) -> None:
    proc = hutch(root, "run", "--name", "fglog", "--network", "none", IMAGE,
                 "sh", "-c", "echo out1; echo err1 >&2; echo out2; printf tail; exit 5")  # fmt: skip
    try:
        assert (proc.returncode, proc.stdout, proc.stderr) == (5, "out1\nout2\ntail", "err1\n")
        lines = log_file(root, "fglog").read_text().splitlines()
        # Each stream in order; the two pipes are read as they come.
        assert sorted(ln.split(" ", 1)[1] for ln in lines) == [
            "stderr F err1", "stdout F out1", "stdout F out2", "stdout P tail"
        ]  # fmt: skip
        assert [ln for ln in lines if " stdout " in ln][-1].endswith("stdout P tail")
        got = hutch(root, "logs", "fglog")
        assert (got.stdout, got.stderr) == ("out1\nout2\ntail", "err1\n")
        # A second foreground start appends, as conmon does.
        again = hutch(root, "start", "-a", "fglog")
        assert again.returncode == 5
        assert hutch(root, "logs", "fglog").stdout == "out1\nout2\ntailout1\nout2\ntail"
    finally:
        hutch(root, "rm", "-f", "fglog")
    assert leftovers(root) == []


def test_logs_of_several_containers(root: Path) -> None:
    ok(
        root,
        "run",
        "--name",
        "ml1",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo one; sleep 0.1; echo three",
    )
    ok(root, "run", "--name", "ml2", "--network", "none", IMAGE, "sh", "-c", "echo two")
    try:
        ids = {n: ok(root, "inspect", "-f", "{{.Id}}", n).strip()[:12] for n in ("ml1", "ml2")}
        assert ok(root, "logs", "ml1", "ml2").splitlines() == [
            f"{ids['ml1']} one", f"{ids['ml1']} three", f"{ids['ml2']} two"
        ]  # fmt: skip
        assert ok(root, "logs", "--names", "ml2", "ml1").splitlines() == ["ml1 one", "ml1 three", "ml2 two"]
        assert ok(root, "logs", "ml2") == "two\n"
        ok(root, "run", "-d", "--name", "ml3", "--network", "none", IMAGE, "sh", "-c", "sleep 0.5; echo late")
        followed = ok(root, "logs", "-f", "-n", "ml2", "ml3").splitlines()
        assert followed == ["ml2 two", "ml3 late"]
        missing = hutch(root, "logs", "ml1", "nonesuch")
        assert missing.returncode == 125 and "nonesuch" in missing.stderr
    finally:
        hutch(root, "rm", "-f", "ml1", "ml2", "ml3")
    assert leftovers(root) == []


def test_log_drivers(root: Path) -> None:
    try:
        ok(
            root,
            "run",
            "-d",
            "--name",
            "ldnone",
            "--log-driver",
            "none",
            "--network",
            "none",
            IMAGE,
            "echo",
            "x",
        )
        ok(root, "wait", "ldnone")
        assert not log_file(root, "ldnone").exists()
        got = hutch(root, "logs", "ldnone")
        assert got.returncode == 125 and "'none' log driver" in got.stderr
        proc = hutch(root, "run", "--name", "ldpass", "--log-driver", "passthrough", "--network", "none",
                     IMAGE, "echo", "straight")  # fmt: skip
        assert proc.stdout == "straight\n"
        assert not log_file(root, "ldpass").exists()
        bad = hutch(root, "run", "-d", "--log-driver", "passthrough", IMAGE, "true")
        assert bad.returncode == 125 and bad.stderr.startswith("Error: --log-driver passthrough")
        bad = hutch(root, "create", "--log-driver", "journald", IMAGE, "true")
        assert bad.returncode == 125 and "--log-driver 'journald'" in bad.stderr
        bad = hutch(root, "create", "--log-opt", "max-size=tiny", IMAGE, "true")
        assert bad.returncode == 125 and "max-size" in bad.stderr
    finally:
        hutch(root, "rm", "-f", "ldnone", "ldpass")
    assert leftovers(root) == []


def test_log_max_size(root: Path) -> None:
    try:
        proc = hutch(root, "run", "--name", "lsfg", "--log-opt", "max-size=10k", "--network", "none",
                     IMAGE, "sh", "-c", MANY_LINES)  # fmt: skip
        assert proc.stdout.splitlines()[-1] == "line1999" and len(proc.stdout.splitlines()) == 2000
        size = log_file(root, "lsfg").stat().st_size
        assert 0 < size <= 10 * 1024, size
        assert ok(root, "logs", "lsfg").splitlines()[-1] == "line1999"
        ok(root, "run", "-d", "--name", "lsbg", "--log-opt", "max-size=10k", "--network", "none",
           IMAGE, "sh", "-c", MANY_LINES)  # fmt: skip
        ok(root, "wait", "lsbg")
        time.sleep(0.2)
        # conmon 2.1.6 starts its log again when a line would pass the limit, but under load a batch it
        # had buffered can land in the new file past it: the log was cut, and ends with the last line.
        logged = ok(root, "logs", "lsbg").splitlines()
        assert logged[0] != "line0" and logged[-1] == "line1999" and len(logged) < 2000
    finally:
        hutch(root, "rm", "-f", "lsfg", "lsbg")
    assert leftovers(root) == []
