"""podman exec: a process in a running engine container, through the runtime library in this process. Its
process spec is the container's own, with the command, terminal, user, env and workdir of the exec."""

from __future__ import annotations

import os

from hutch.engine.containers import invoke_error
from hutch.errors import HutchError, NotFoundError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.engine.runtimes import Runtime


def exec_command(
    engine: Engine,
    name_or_id: str,
    command: Sequence[str],
    *,
    env: Sequence[str] | None = None,
    user: str = "",
    workdir: str = "",
    tty: bool = False,
    detach: bool = False,
) -> int:
    """podman exec through the runtime library, in this process: the process's exit code (0 with
    `detach`, once it runs); InvokeError (126, 127) when its command cannot be run."""
    from hutch import jsonfast
    from hutch.engine import spec as _spec
    from hutch.oci import config
    from hutch.runtime import container, execute, foreground, lifecycle

    if not command:
        raise HutchError("exec: a command is required")
    from hutch.engine.monitor import runtime_of

    rec = engine.find(name_or_id)
    runtime = runtime_of(rec)
    foreign = runtime.name != "hutch"
    try:
        if rec.state != "running" or (foreign and runtime.status(rec.id) != "running"):
            raise StateError("not running")
        c = None if foreign else container.load(engine.runtime_root, rec.id)
    except (NotFoundError, StateError):
        raise StateError(
            "can only create exec sessions on running containers: container state improper"
        ) from None
    if c is None:
        with open(engine.path(rec, "userdata/config.json")) as f:
            process = jsonfast.loads(f.read()).get("process") or {}
    else:
        spec = lifecycle.spec_of(c)
        process = spec.raw.get("process") or {}
    doc: dict[str, object] = jsonfast.loads(jsonfast.dumps(process))
    doc["args"] = list(command)
    doc["terminal"] = tty
    doc.pop("consoleSize", None)
    proc_env = [str(e) for e in doc.get("env") or []]  # type: ignore[attr-defined]
    if tty and not any(e.startswith("TERM=") for e in proc_env):
        proc_env.append("TERM=xterm")
    if user:
        who = _spec.resolve_user(engine.path(rec, "merged"), user)
        doc["user"] = {"uid": who.uid, "gid": who.gid}
        if who.additional_gids:
            doc["user"]["additionalGids"] = who.additional_gids  # type: ignore[index]
        proc_env = [e for e in proc_env if not e.startswith("HOME=")] + [f"HOME={who.home}"]
        caps = doc.get("capabilities")
        if isinstance(caps, dict):  # podman's rule: only uid 0 has effective and permitted caps
            bounding = list(caps.get("bounding") or [])
            for key in ("effective", "permitted"):
                caps[key] = bounding if who.uid == 0 else []
            caps.pop("ambient", None)
            caps.pop("inheritable", None)
    doc["env"] = _spec.merge_env(proc_env, list(env or []))
    if workdir:
        if not workdir.startswith("/"):
            raise HutchError(f"--workdir {workdir!r}: must be an absolute path")
        doc["cwd"] = workdir
    if c is None:
        return _exec_cli(engine, rec, runtime, doc, tty=tty, detach=detach)
    proc = config.parse_process(doc, "exec process")
    receiver = foreground.ConsoleReceiver() if tty else None
    if not detach:
        foreground.become_subreaper()
    try:
        try:
            pid = execute.exec_process(c, spec, proc, console_fd=receiver.their_fd if receiver else None)
        except HutchError as e:
            raise invoke_error(e) from None
        finally:
            if receiver is not None:
                os.close(receiver.their_fd)
        master = receiver.receive() if receiver else None
    finally:
        if receiver is not None:
            # Our end of the console socket: receive() closes it, but not when the exec failed first (a
            # second close is a no-op). ConsoleReceiver (runtime, not ours to change) has no close().
            receiver._ours.close()
    if detach:
        if master is not None:
            os.close(master)
        return 0
    return foreground.wait(pid, master)


def _exec_cli(
    engine: Engine, rec: Record, runtime: Runtime, process: dict[str, object], *, tty: bool, detach: bool
) -> int:
    """`RUNTIME exec --process FILE` with our stdio (the runtime relays a terminal itself); errors come
    from its json log, as its stderr is the process's."""
    import subprocess
    import tempfile

    from hutch import jsonfast
    from hutch.engine import foreign
    from hutch.engine.cliruntime import CliRuntime

    if not isinstance(runtime, CliRuntime):
        raise HutchError(f"runtime {runtime.name}: not a runtime CLI")
    userdata = engine.path(rec, "userdata")
    with tempfile.TemporaryDirectory(prefix="exec-", dir=userdata) as tmp:
        spec_path = os.path.join(tmp, "process.json")
        log = os.path.join(tmp, "runtime.log")
        with open(spec_path, "w") as f:
            f.write(jsonfast.dumps(process))
        args = ["--log", log, "--log-format", "json", "exec", "--process", spec_path]
        args += (["--tty"] if tty else []) + (["--detach"] if detach else [])
        code = subprocess.run(runtime.command(*args, rec.id), check=False).returncode
        error = foreign.last_error(log)
    if error and code != 0:
        raise invoke_error(HutchError(error))
    return code
