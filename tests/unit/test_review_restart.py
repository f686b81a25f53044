"""userdata/restart.json is changed by `stop`/`rm` (StoppedByUser) and conmon's cleanup (RestartCount) at
once: each change is kept (a save read-modify-writes it)."""

from __future__ import annotations

import os
from pathlib import Path

from hutch.engine import restart


def _saves(userdata: str, key: str, n: int) -> None:
    for i in range(n):
        restart.save(userdata, **{key: i})


def test_concurrent_saves_lose_no_change(tmp_path: Path) -> None:
    userdata = str(tmp_path)
    keys = [f"K{i}" for i in range(4)]
    pids = []
    for key in keys:
        pid = os.fork()
        if pid == 0:
            try:
                _saves(userdata, key, 300)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    assert restart.load(userdata) == {key: 299 for key in keys}
    assert sorted(os.listdir(userdata)) == [restart.STATE_FILE]  # no temporary file left
