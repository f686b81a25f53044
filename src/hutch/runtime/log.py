"""runc-style logging: text or JSON lines to --log FILE (containerd reads the last error line from there)."""

import os
import sys
import time

from hutch import jsonfast

_state: dict[str, object] = {"path": None, "format": "text", "debug": False}


def configure(path: str | None, fmt: str, debug: bool) -> None:
    _state.update(path=path, format=fmt, debug=debug)


def _timestamp() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def _line(level: str, msg: str) -> str:
    if _state["format"] == "json":
        return jsonfast.dumps({"level": level, "msg": msg, "time": _timestamp()}) + "\n"
    return f"time={jsonfast.dumps(_timestamp())} level={level} msg={jsonfast.dumps(msg)}\n"


def _write(level: str, msg: str) -> None:
    path = _state["path"]
    if path:
        try:
            fd = os.open(str(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, _line(level, msg).encode())
            finally:
                os.close(fd)
            return
        except OSError:
            pass
    sys.stderr.write(_line(level, msg))


def error(msg: str) -> None:
    """An error: to the log file when there is one, and always one plain line on stderr."""
    if _state["path"]:
        _write("error", msg)
    sys.stderr.write(msg + "\n" if _state["format"] == "text" or _state["path"] else _line("error", msg))


def warning(msg: str) -> None:
    _write("warning", msg)


def debug_enabled() -> bool:
    return bool(_state["debug"])


def debug(msg: str) -> None:
    if _state["debug"]:
        _write("debug", msg)
