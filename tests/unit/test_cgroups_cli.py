"""The resource commands' parsing: update's flags and --resources, sizes, durations, ps's table filter."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest

from hutch.errors import ConfigError, HutchError
from hutch.runtime import resources_cli
from hutch.runtime.args import Command


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1024", 1024),
        ("512k", 512 << 10),
        ("100m", 100 << 20),
        ("100M", 100 << 20),
        ("1g", 1 << 30),
        ("2GiB", 2 << 30),
        ("64mb", 64 << 20),
        ("1.5g", 3 << 29),
        ("-1", -1),
    ],
)
def test_parse_bytes(text: str, value: int) -> None:
    assert resources_cli.parse_bytes(text, "--memory") == value


@pytest.mark.parametrize("text", ["", "m", "1x", "1.2.3m", "-5", "ten"])
def test_parse_bytes_rejects(text: str) -> None:
    with pytest.raises(HutchError, match="--memory"):
        resources_cli.parse_bytes(text, "--memory")


@pytest.mark.parametrize(("text", "seconds"), [("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5s", 1.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert resources_cli.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5x", "0s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(HutchError, match="interval"):
        resources_cli.parse_duration(text)


def parse_update(argv: list[str]) -> SimpleNamespace:
    root = Command("hutch-runtime")
    root.flag("--root")
    resources_cli.register(root)
    return root.parse(["update", *argv])


def test_update_flags_become_resources() -> None:
    args = parse_update(
        [
            "--memory",
            "64m",
            "--memory-swap",
            "-1",
            "--cpu-shares",
            "512",
            "--cpu-quota",
            "-1",
            "--cpuset-cpus",
            "0-1",
            "--pids-limit",
            "20",
            "--blkio-weight",
            "300",
            "c1",
        ]
    )
    assert args.id == "c1"
    r = resources_cli.resources_from_args(args)
    assert r.memory is not None and (r.memory.limit, r.memory.swap) == (64 << 20, -1)
    assert r.cpu is not None and (r.cpu.shares, r.cpu.quota, r.cpu.cpus) == (512, -1, "0-1")
    assert r.pids is not None and r.pids.limit == 20
    assert r.block_io is not None and r.block_io.weight == 300


def test_runc_spelling_of_cpu_share() -> None:
    r = resources_cli.resources_from_args(parse_update(["--cpu-share", "100", "c1"]))
    assert r.cpu is not None and r.cpu.shares == 100


def test_resources_file_wins_over_flags(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"memory": {"limit": 1000}, "pids": {"limit": 3}}')
    r = resources_cli.resources_from_args(parse_update(["--resources", str(path), "--memory", "5m", "c1"]))
    assert r.memory is not None and r.memory.limit == 1000
    assert r.pids is not None and r.pids.limit == 3


def test_resources_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"cpu": {"quota": 20000, "period": 100000}}'))
    r = resources_cli.resources_from_args(parse_update(["-r", "-", "c1"]))
    assert r.cpu is not None and (r.cpu.quota, r.cpu.period) == (20000, 100000)


def test_resources_errors_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"memory": {"limit": "lots"}}'))
    with pytest.raises(ConfigError, match=r"--resources -: memory\.limit: expected"):
        resources_cli.resources_from_args(parse_update(["-r", "-", "c1"]))
    with pytest.raises(HutchError, match="--pids-limit"):
        resources_cli.resources_from_args(parse_update(["--pids-limit", "many", "c1"]))
    with pytest.raises(HutchError, match="Intel RDT"):
        resources_cli.resources_from_args(parse_update(["--l3-cache-schema", "L3:0=f", "c1"]))


PS = """\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root        4242       1  0 10:01 ?        00:00:00 sleep 100
root        4243    4242  0 10:01 ?        00:00:00 sh -c PID 1
"""


def test_ps_table_keeps_the_header_and_the_containers_lines() -> None:
    assert resources_cli.ps_table(PS, {4242, 4243}).splitlines() == PS.splitlines()[:1] + PS.splitlines()[2:]


def test_ps_table_needs_a_pid_column() -> None:
    with pytest.raises(HutchError, match="PID column"):
        resources_cli.ps_table("USER COMMAND\nroot init\n", {1})
