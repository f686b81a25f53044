"""The commands run most often import only the cli modules they execute: the other commands' handlers and
parsers (argparse, hutch.cli.argparser, imageops, manage, ...) stay off their path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
# Off every path below: argparse's parser, the other commands, --filter's, --sort's and --format's code.
COLD = {
    "argparse",
    "hutch.cli.argparser",
    "hutch.cli.imageops",
    "hutch.cli.images",
    "hutch.cli.containerops",
    "hutch.cli.manage",
    "hutch.cli.system",
    "hutch.cli.monitor",
    "hutch.cli.networks",
    "hutch.cli.health",
    "hutch.cli.pods",
    "hutch.cli.volumes",
    "hutch.cli.psquery",
    "hutch.cli.templates",
}
# run's and create's flags: not `ps`'s concern.
RUN_ONLY = {
    "hutch.cli.containers",
    "hutch.cli.runflags",
}


def _imported(root: Path, argv: list[str]) -> tuple[int, set[str]]:
    """Run `hutch --root ROOT *argv` in a fresh interpreter; its exit code and the modules it imported."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(SRC)!r})\n"
        "from hutch.cli.main import main\n"
        f"code = main(['--root', {str(root)!r}, *{argv!r}])\n"
        "sys.stderr.write(json.dumps([code, sorted(sys.modules)]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    code_, modules = json.loads(proc.stderr.splitlines()[-1])
    return code_, set(modules)


def test_ps_imports_only_psview(tmp_path: Path) -> None:
    code, modules = _imported(tmp_path, ["ps", "-a"])
    assert code == 0
    assert "hutch.cli.psview" in modules
    assert modules & (COLD | RUN_ONLY) == set()


@pytest.mark.parametrize("command", ["run", "create"])
def test_run_and_create_import_only_their_flags(tmp_path: Path, command: str) -> None:
    # --pull never of an image not stored: the flags are read and checked, then the engine refuses
    argv = [command, "--rm", "--network", "none", "--pull", "never", "nosuch.example/img:1", "true"]
    code, modules = _imported(tmp_path, argv)
    assert code == 125
    assert modules >= RUN_ONLY
    assert modules & COLD == set()


@pytest.mark.parametrize("argv", [["stop", "-t", "1", "nosuch"], ["rm", "-i", "nosuch"], ["start", "nosuch"]])
def test_start_stop_and_rm_import_only_containerops(tmp_path: Path, argv: list[str]) -> None:
    code, modules = _imported(tmp_path, argv)
    assert code == (0 if argv[0] == "rm" else 125)
    assert "hutch.cli.containerops" in modules
    assert modules & (COLD | RUN_ONLY) - {"hutch.cli.containerops"} == set()


def test_other_command_lines_still_go_through_argparse(tmp_path: Path) -> None:
    code, modules = _imported(tmp_path, ["ps", "--sort", "names"])
    assert code == 0
    assert {"argparse", "hutch.cli.argparser"} & modules == set()  # still fastargs's
    assert "hutch.cli.psquery" in modules
    code, modules = _imported(tmp_path, ["rm", "nosuch", "--ignore"])  # an option after the list
    assert code == 0
    assert {"argparse", "hutch.cli.argparser", "hutch.cli.containerops"} <= modules
