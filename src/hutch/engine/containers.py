"""Containers of the engine: create one from an image, run it (in the foreground, where this process is its
monitor, or detached under a monitor process forked from it), find and list them.

A container lives in ROOT/containers/<id>/: `upper`, `work` and `merged` (the overlay of the image's layers,
its rootfs) and `userdata` (the bundle: config.json, the /etc files it binds, ctr.log of a detached run).
The runtime library runs it in-process, with its state under RUNTIME_ROOT. The monitor (the engine itself for
a foreground run) waits for the container's init as its subreaper, records the exit code, deletes the runtime
state and unmounts the rootfs; with --rm it then removes everything.

Engine is the facade: create, find and list live here; starting a created or exited one again is in
hutch.engine.starting, running and finishing in hutch.engine.monitor, stop, kill and rm in
hutch.engine.stopping, exec in hutch.engine.exec, wait in hutch.engine.waiting, the inspect document in
hutch.engine.inspect.
"""

from __future__ import annotations

import os
import time

from hutch.engine.db import ContainerDB, NoSuchContainer, Record
from hutch.engine.flock import Held
from hutch.errors import ExistsError, HutchError, NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hutch.engine import spec as _spec
    from hutch.image import db as _db
    from hutch.image.auth import Login
    from hutch.image.progress import Progress
    from hutch.image.storage import Storage
    from hutch.oci import image as _image

SUBDIRS = ("upper", "work", "merged", "userdata")
# The runtime state of every engine container (ids are unique across roots); tmpfs, so a reboot clears it
# and the containers show as exited. It must be traversable by a container user: the runtime reopens paths.
RUNTIME_ROOT = "/run/hutch/runtime"
# States in which the container's init lives (`paused`: its cgroup frozen by `pause`).
LIVE = ("running", "paused")

_ADJECTIVES = (
    "admiring", "agitated", "amazing", "awesome", "blissful", "bold", "brave", "charming", "clever", "cool",
    "dazzling", "determined", "eager", "ecstatic", "elegant", "epic", "fervent", "focused", "friendly",
    "gallant", "gifted", "happy", "hopeful", "jolly", "keen", "kind", "laughing", "lucid", "magical",
    "modest", "nice", "nostalgic", "optimistic", "peaceful", "practical", "quirky", "relaxed", "serene",
    "sharp", "stoic", "sweet", "tender", "trusting", "upbeat", "vibrant", "wizardly", "youthful", "zealous",
)  # fmt: skip
_NOUNS = (
    "albattani", "archimedes", "babbage", "bardeen", "bell", "bohr", "boyd", "curie", "darwin", "dijkstra",
    "einstein", "euclid", "faraday", "fermat", "feynman", "galileo", "gauss", "goldberg", "hamilton",
    "hopper", "hypatia", "johnson", "kepler", "knuth", "lamport", "leakey", "lovelace", "mayer", "mcclintock",
    "meitner", "morse", "newton", "noether", "pascal", "perlman", "pike", "ritchie", "shannon", "shaw",
    "tesla", "thompson", "torvalds", "turing", "volhard", "wilson", "wozniak", "wright", "yonath",
)  # fmt: skip

# Random picks of a name before the next step: while a tenth of the names is free, 1 in 10^3 gets there.
_NAME_TRIES = 64


class InvokeError(HutchError):
    """The container's command could not be run: podman exits 126 (cannot invoke) or 127 (not found)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def invoke_error(e: HutchError) -> HutchError:
    """A runtime error about the command itself, as podman maps it to 126 or 127; other errors as they are."""
    text = str(e)
    if "no such file or directory" in text or "executable file not found" in text:
        return InvokeError(f"{text}: OCI runtime attempted to invoke a command that was not found", 127)
    if "permission denied" in text.lower() or "exec format error" in text:
        return InvokeError(f"{text}: OCI permission denied", 126)
    return e


# The databases of engines closed with `leave_open`: referenced here, they stay open until the process exits.
_LEFT_OPEN: list[object] = []


class Engine:
    """The containers under `root` (the storage root); images come from the storage there. `leave_open`: see
    close."""

    def __init__(self, root: str, db_path: str | None = None, *, leave_open: bool = False) -> None:
        self.leave_open = leave_open
        self.root = os.path.abspath(root)
        self.image_db_path = db_path or os.path.join(self.root, "hutch.db")
        self.containers_dir = os.path.join(self.root, "containers")
        self.runtime_root = RUNTIME_ROOT
        os.makedirs(self.containers_dir, mode=0o700, exist_ok=True)
        self.db = ContainerDB(os.path.join(self.root, "containers.db"))
        self._storage: Storage | None = None

    def close(self) -> None:
        """Close the databases; with `leave_open` (a command whose process exits next) leave them to the exit.
        The last connection to close a WAL database checkpoints it (two fsyncs) and deletes the WAL, whose
        re-creation the next command syncs again (two more); left open, the WAL stays and is taken up by the
        next command as after a crash, and commits checkpoint it every few runs (ContainerDB)."""
        if self.leave_open:
            _LEFT_OPEN.extend((self.db, self._storage))
            return
        self.db.close()
        if self._storage is not None:
            self._storage.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def storage(self) -> Storage:
        if self._storage is None:
            from hutch.image.storage import Storage

            self._storage = Storage(self.root, self.image_db_path)
        return self._storage

    # --- paths and locks ------------------------------------------------------------------------------------

    def path(self, rec: Record, sub: str = "") -> str:
        return os.path.join(rec.dir, sub) if sub else rec.dir

    def lock(self, container_id: str) -> Held:
        """The container's lock: its state changes (finish, remove) happen under it."""
        return Held(os.path.join(self.containers_dir, f"{container_id}.lock"), reentrant=True)

    # --- create ---------------------------------------------------------------------------------------------

    def _name(self) -> str:
        """A free name of docker's kind (adjective_noun); once all 2304 are taken, one with a number after it
        (docker's generator adds a digit when it tries again; podman's loops on until one is free)."""
        taken = self.db.names()
        taken |= self._pod_names()
        for _ in range(_NAME_TRIES):
            a, n = os.urandom(2)  # `secrets` would import random and hashlib on the run path
            name = f"{_ADJECTIVES[a % len(_ADJECTIVES)]}_{_NOUNS[n % len(_NOUNS)]}"
            if name not in taken:
                return name
        free = [f"{a}_{n}" for a in _ADJECTIVES for n in _NOUNS if f"{a}_{n}" not in taken]
        if free:
            return free[int.from_bytes(os.urandom(4), "little") % len(free)]
        for _ in range(_NAME_TRIES):
            a, n, number = os.urandom(3)
            name = f"{_ADJECTIVES[a % len(_ADJECTIVES)]}_{_NOUNS[n % len(_NOUNS)]}{number}"
            if name not in taken:
                return name
        raise HutchError(f"cannot generate a container name: {len(taken)} are taken; give one with --name")

    def _pod_names(self) -> set[str]:
        """The pods' names: containers and pods share one name space, as in podman."""
        try:
            if not os.listdir(os.path.join(self.root, "pods")):
                return set()  # no pod here (now): no import, no reads
        except FileNotFoundError:
            return set()
        from hutch.engine import pods

        return {p["Name"] for p in pods.all_pods(self)}

    def _check_free(self, name: str) -> None:
        if name in self._pod_names():
            raise ExistsError(f'name "{name}" is in use: pod already exists')

    def _add(self, rec: Record, generated_name: bool) -> None:
        """Insert `rec`; a generated name that another `hutch` took meanwhile is replaced by a new one."""
        for _ in range(20):
            try:
                self.db.add(rec)
                return
            except ExistsError:
                if not generated_name:
                    raise
                rec.name = self._name()
        self.db.add(rec)

    def image(
        self,
        name: str,
        pull: str = "missing",
        tls_verify: bool = True,
        platform: str = "",
        progress: Callable[[], Progress | None] | None = None,
        login: Login | None = None,
    ) -> _db.Image:
        """The image `name` names, pulled as podman's --pull says (always, missing, never; newer is missing).
        A name no registry can resolve (a short name without search registries) is `image not known`. With
        `platform` (os/arch[/variant]) a stored image of another platform counts as missing. A pull reports
        to what `progress` makes (called only when pulling; None: silent); without it, plain lines. `login`:
        --creds and --authfile for the pull."""
        from hutch.oci.image import Platform

        storage = self.storage()
        if pull not in ("always", "missing", "never", "newer"):
            raise HutchError(f"--pull {pull!r}: expected always, missing, never or newer")
        try:
            wanted = Platform.parse(platform) if platform else None
        except HutchError:
            raise HutchError(f"--platform {platform!r}: expected os/arch[/variant]") from None
        if pull != "always":
            try:
                found = storage.find(name)
                if wanted is None or _has_platform(storage, found, wanted):
                    return found
                if pull == "never":
                    raise NotFoundError(f"{name}: no image for platform {wanted} (--pull never)")
            except NotFoundError:
                if pull == "never":
                    raise
        from hutch.image import reference
        from hutch.image.pull import pull as pull_image

        try:
            reference.resolve(name)
        except HutchError:
            if pull == "always":
                raise
            raise NotFoundError(f"{name}: image not known") from None
        report = _progress if progress is None else progress()
        return pull_image(
            name, storage=storage, platform=wanted, tls_verify=tls_verify, progress=report, login=login
        )

    def create(
        self,
        image_name: str,
        opts: _spec.Options,
        *,
        name: str = "",
        remove: bool = False,
        pull: str = "missing",
        tls_verify: bool = True,
        interactive: bool = False,
        platform: str = "",
        pull_progress: Callable[[], Progress | None] | None = None,
        login: Login | None = None,
    ) -> Record:
        """Make the container: its record, dirs, the rootfs mounted, config.json. Nothing is left on failure.
        `pull_progress` and `login` are image()'s `progress` and `login`."""
        from hutch.engine import spec as _spec
        from hutch.image import snapshot
        from hutch.oci.image import parse_config

        if name:
            _check_name(name)  # before any pull
            self._check_free(name)
        image = self.image(image_name, pull, tls_verify, platform, pull_progress, login)
        storage = self.storage()
        config = parse_config(storage.blobs.read(image.id), f"image config {image.id}")
        layers = storage.db.image_layers(image.id)
        if not layers:
            raise HutchError(f"{image_name}: the image has no layers")
        cid = os.urandom(32).hex()  # as secrets.token_hex(32), without its imports
        args = _spec.process_args(config.config, opts)
        entrypoint, cmd = _spec.entrypoint_and_cmd(config.config, opts)
        hostname = opts.hostname or cid[:12]
        created = {
            "Cmd": cmd,
            "Entrypoint": entrypoint,
            "User": opts.user or config.config.user,
            "Hostname": hostname,
            "Labels": {**config.config.labels, **opts.labels},
            "Tty": opts.tty,
            "OpenStdin": interactive,
            "ReadonlyRootfs": opts.read_only,
            "NetworkMode": opts.network,
            "Seccomp": opts.seccomp,
            "Image": image_name,
        }
        if config.config.healthcheck or _health_flags(opts):
            from hutch.engine import health

            check = health.resolve(config.config.healthcheck, **opts.health)
            if check is not None:
                created["Healthcheck"] = check
        rec = Record(
            id=cid,
            name=name or self._name(),
            image_id=image.id.hex,
            image_name=_display_name(image_name, image.tags),
            command=" ".join(args),
            created=time.time(),
            started=None,
            finished=None,
            state="created",
            exit_code=None,
            monitor_pid=None,
            remove=remove,
            dir=os.path.join(self.containers_dir, cid),
            stop_signal=opts.stop_signal or config.config.stop_signal,
        )
        from hutch.engine import mounts, specflags

        specflags.join_containers(self, opts)  # --pid/--ipc/--uts container:ID, before anything is made
        resolved = mounts.Resolved()
        new_pod = opts.net is not None and opts.net.pod.startswith("new:")
        self._add(rec, generated_name=not name)
        try:
            os.mkdir(rec.dir, 0o700)
            for sub in SUBDIRS:
                os.mkdir(self.path(rec, sub), 0o755 if sub == "merged" else 0o700)
            # The rootfs's / takes the upper dir's owner and mode: give it those of the image's top layer.
            top = os.stat(layers[-1].path)
            os.chmod(self.path(rec, "upper"), top.st_mode & 0o7777)
            os.chown(self.path(rec, "upper"), top.st_uid, top.st_gid)
            userdata = self.path(rec, "userdata")
            _spec.hostname_file(userdata, hostname)
            from hutch.engine.network.setup import prepare as prepare_network

            prepare_network(self, cid, rec.name, hostname, userdata, opts, config.config)
            merged = self.path(rec, "merged")
            snapshot.mount_rootfs(
                [layer.path for layer in reversed(layers)],
                self.path(rec, "upper"),
                self.path(rec, "work"),
                merged,
                volatile=remove,  # --rm: nothing of it outlives it, so nothing need reach the disk
            )
            mounts.resolve(self, opts, config.config, rootfs=merged, out=resolved)
            doc = _spec.generate(
                config.config,
                opts,
                rootfs=merged,
                userdata=userdata,
                container_id=cid,
                extra_mounts=resolved.mounts,
            )
            _write_json(os.path.join(userdata, "config.json"), doc)
            created.update(specflags.recorded(opts, config.config, resolved))
            created["Env"] = list(doc["process"]["env"])
            created["WorkingDir"] = doc["process"]["cwd"]
            from hutch import jsonfast

            rec.config = jsonfast.dumps(created)
            self.db.update(rec.id, config=rec.config)
            mounts.release(resolved)  # the record names its volumes: rm and prune may look now
        except BaseException:
            from hutch.engine import monitor

            monitor.remove_files(self, rec)
            self.db.remove(rec.id)
            mounts.discard_created(self, resolved)
            if new_pod and opts.net is not None and not opts.net.pod.startswith("new:"):
                # --pod new:NAME made the pod (its id is in opts now): it goes with the failed create
                from hutch.engine import pods

                try:
                    pods.remove(self, pods.find(self, opts.net.pod), force=True)
                except HutchError:
                    pass
            raise
        return rec

    # --- run (the monitor) ----------------------------------------------------------------------------------

    def run_foreground(
        self,
        rec: Record,
        *,
        tty: bool = False,
        interactive: bool = False,
        restore: str | None = None,
        sig_proxy: bool = True,
    ) -> int:
        """Run `rec` with our stdio, as its monitor (see hutch.engine.monitor); the container's exit code.
        `sig_proxy`: the signals we get go to the container (podman's --sig-proxy)."""
        from hutch.engine import monitor
        from hutch.engine.network.setup import before_launch

        # The netns the spec joins, before any runtime create; its plugins run while the runtime creates.
        before_launch(self, rec, restore, background=True)
        return monitor.run_foreground(
            self, rec, tty=tty, interactive=interactive, restore=restore, sig_proxy=sig_proxy
        )

    def run_detached(self, rec: Record, restore: str | None = None) -> None:
        """Start `rec` under a forked monitor (see hutch.engine.monitor); returns once the container runs."""
        from hutch.engine import detached
        from hutch.engine.network.setup import before_launch

        before_launch(self, rec, restore, background=True, any_runtime=True)
        detached.run_detached(self, rec, restore)

    # --- finish, find, list (stop, kill, rm: hutch.engine.stopping) -----------------------------------------

    def finish(
        self, container_id: str, exit_code: int | None, *, remove: bool = False, restore: str | None = None
    ) -> None:
        """After the container's init is gone: see hutch.engine.monitor.finish."""
        from hutch.engine import monitor

        monitor.finish(self, container_id, exit_code, remove=remove, restore=restore)

    def refresh(self, rec: Record) -> Record:
        """`rec` as it is now: a running container whose monitor is gone is finished here."""
        if rec.state not in LIVE:
            return rec
        if rec.monitor_pid and _alive(rec.monitor_pid):
            return rec
        status = self._runtime_status(rec.id, rec)
        if status in ("running", "paused"):
            return rec  # its engine or conmon was killed, but the container goes on
        from hutch.engine import detached, monitor

        monitor.finish(self, rec.id, detached.recorded_exit(self, rec), if_running=True)
        try:
            return self.db.get(rec.id)
        except NoSuchContainer:
            return rec

    def _runtime_status(self, container_id: str, rec: Record | None = None) -> str:
        from hutch.engine import monitor

        return monitor.runtime_of(rec or self.db.get(container_id)).status(container_id)

    def find(self, name_or_id: str) -> Record:
        return self.refresh(self.db.find(name_or_id))

    def list(self, all: bool = False) -> list[Record]:
        out = []
        for rec in self.db.all():
            rec = self.refresh(rec)
            if all or rec.state in LIVE:
                out.append(rec)
        return out

    # --- pause, unpause, rename (hutch.engine.pause has the freezer side) -----------------------------------

    def pause(self, name_or_id: str) -> Record:
        """podman pause: freeze every process of a running container; its state is then `paused`."""
        from hutch.engine import pause

        return pause.pause(self, self.find(name_or_id))

    def unpause(self, name_or_id: str) -> Record:
        """podman unpause: thaw a paused container; `running` again."""
        from hutch.engine import pause

        return pause.unpause(self, self.find(name_or_id))

    def rename(self, name_or_id: str, new_name: str) -> Record:
        """podman rename: a new name, unique among the containers and pods."""
        _check_name(new_name)
        self._check_free(new_name)
        rec = self.find(name_or_id)
        with self.lock(rec.id):
            self.db.rename(rec.id, new_name)
        return self.db.get(rec.id)

    def log_path(self, rec: Record) -> str:
        return self.path(rec, "userdata/ctr.log")

    # --- start, exec, inspect (wait: hutch.engine.waiting) --------------------------------------------------

    def claim_start(self, name_or_id: str) -> tuple[Record, str | None]:
        """See hutch.engine.starting.claim."""
        from hutch.engine import starting

        return starting.claim(self, name_or_id)

    def start_detached(self, rec: Record, previous: str) -> None:
        """See hutch.engine.starting.start_detached."""
        from hutch.engine import starting

        starting.start_detached(self, rec, previous)

    def exec(
        self,
        name_or_id: str,
        command: Sequence[str],
        *,
        env: Sequence[str] | None = None,
        user: str = "",
        workdir: str = "",
        tty: bool = False,
        detach: bool = False,
    ) -> int:
        """podman exec (see hutch.engine.exec): the process's exit code (0 with `detach`, once it runs)."""
        from hutch.engine.exec import exec_command

        return exec_command(
            self, name_or_id, command, env=env, user=user, workdir=workdir, tty=tty, detach=detach
        )

    def inspect(self, rec: Record) -> dict[str, object]:
        """podman's container inspect document (see hutch.engine.inspect)."""
        from hutch.engine.inspect import inspect

        return inspect(self, rec)


def prepare_launch() -> None:
    """Before a command that launches a process into a container (run, start, restart, exec).

    CVE-2019-5736: a container must never get to write the interpreter that runs it. From hutch's own copy
    of the interpreter (`hutch-python`, the launcher's), seal it as hutch-runtime does (this may re-exec us,
    so it comes before anything else); the shared interpreter of `python -m hutch.cli.main` is left alone.
    Then start paying the cgroup migration lock's RCU grace period in the background (see
    hutch.runtime.cgroup_warmup), while the image is found and the rootfs mounted (`hutch` starts it
    before its imports already: the grace period, 10-15 ms, is then over by the time init is moved)."""
    from hutch.runtime import cgroup_warmup

    if os.path.basename(os.readlink("/proc/self/exe")) == "hutch-python":
        from hutch.runtime import selfprotect

        selfprotect.ensure_sealed()
    cgroup_warmup.start()


def _progress(line: str) -> None:
    import sys

    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _has_platform(storage: Storage, image: _db.Image, wanted: _image.Platform) -> bool:
    """Whether a stored image is for `wanted` (os, architecture, and the variant when one is asked)."""
    from hutch.oci.image import normalize, parse_config

    have = normalize(parse_config(storage.blobs.read(image.id), f"image config {image.id}").platform)
    w = normalize(wanted)
    return (
        have.os == w.os
        and have.architecture == w.architecture
        and (not w.variant or have.variant == w.variant)
    )


def _health_flags(opts: _spec.Options) -> bool:
    """Whether a --health-* flag or --no-healthcheck was given: without them and without the image's
    healthcheck, health.resolve has nothing to resolve."""
    return any(v is not None and v is not False for v in opts.health.values())


def _check_name(name: str) -> None:
    ok = name.isascii() and name[:1].isalnum() and all(ch.isalnum() or ch in "_.-" for ch in name)
    if not ok:
        raise HutchError(f"names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument: {name!r}")


def _display_name(name: str, tags: list[str]) -> str:
    if name in tags:  # a stored tag is normalized already (and reference imports re)
        return name
    from hutch.image import reference

    try:
        ref = str(reference.parse(name).with_default_tag())
    except HutchError:
        ref = name
    if ref in tags:
        return ref
    suffix = [t for t in tags if t.endswith("/" + name) or t.endswith("/" + name + ":latest")]
    return suffix[0] if len(suffix) == 1 else (tags[0] if tags and name in tags else name)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    from hutch.runtime.container import process_start_time

    return process_start_time(pid) is not None


def _write_json(path: str, doc: object) -> None:
    from hutch import jsonfast

    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(jsonfast.dumps(doc))
    os.rename(tmp, path)
