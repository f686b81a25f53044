"""A container's networking around the runtime: `prepare` at create (the plan, the /etc files), `setup`
before the runtime's create (the named netns, CNI ADD on each network, DNS names, the /etc files with the
addresses), `teardown` at finish (DNS names, CNI DEL in reverse, the netns, an idle bridge). Every step is
recorded in the plan before it is taken, so teardown after a crash undoes exactly what was done; it is
idempotent, which lets every finish and `rm -f` call it.
"""

from __future__ import annotations

import contextlib
import os
import sys

from hutch.engine.network import etcfiles, locks, netns, plan
from hutch.errors import ConfigError, HutchError, NotFoundError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from hutch.engine.containers import Engine
    from hutch.engine.db import Record
    from hutch.engine.spec import Options
    from hutch.oci.image import ContainerConfig


def prepare(
    engine: Engine,
    container_id: str,
    name: str,
    hostname: str,
    userdata: str,
    opts: Options,
    image: ContainerConfig,
) -> None:
    """At create: check the network flags, keep the plan, write /etc/hosts and resolv.conf (no address yet)."""
    net = getattr(opts, "net", None) or plan.NetOptions()
    pod = ""
    if net.pod:
        from hutch.engine import pods

        pod = pods.join(engine, net.pod, opts)  # opts now names the infra container's namespaces
    exposed = list(image.exposed_ports)
    bridge = plan.mode_of(opts.network) == "bridge"
    # network rm waits until the plan names the networks it found
    with locks.networks(engine.root, shared=True) if bridge else contextlib.nullcontext():
        doc = plan.build(engine.root, container_id, name, hostname, opts.network, net, exposed)
        doc["pod"] = pod
        if doc["mode"] == "container":
            doc["target"], doc["path"] = _container_netns(engine, doc["path"])
        plan.save(userdata, doc)
    _etc(userdata, doc, [], "", [])
    if doc.get("target"):
        _share_etc(engine, doc["target"], userdata, doc)


def _container_netns(engine: Engine, name: str) -> tuple[str, str]:
    """--network container:NAME: (its id, its named netns or its init's while it runs)."""
    from hutch.engine.db import NoSuchContainer

    try:
        other = engine.find(name)
    except NoSuchContainer:
        raise NotFoundError(f"--network container:{name}: no such container") from None
    other_plan = plan.load(engine.path(other, "userdata")) or {}
    if other_plan.get("mode") == "bridge":
        return other.id, netns.path(other.id)
    if other_plan.get("mode") == "container":
        return str(other_plan.get("target") or other.id), str(other_plan["path"])
    from hutch.runtime import container

    try:
        pid = container.load(engine.runtime_root, other.id).pid
    except NotFoundError:
        pid = 0
    from hutch.engine.containers import LIVE

    if other.state not in LIVE or not pid:
        raise StateError(f"--network container:{name}: the container must be running")
    return other.id, f"/proc/{pid}/ns/net"


def _share_etc(engine: Engine, target: str, userdata: str, doc: dict[str, Any]) -> None:
    """A container in another's netns sees that one's /etc/hosts (after its own --add-host entries) and
    resolv.conf, as podman gives it."""
    from hutch.engine.db import NoSuchContainer

    try:
        other = engine.db.get(target)
    except NoSuchContainer:
        return
    for name in ("hosts", "resolv.conf"):
        try:
            with open(engine.path(other, f"userdata/{name}")) as f:
                text = f.read()
        except OSError:
            continue
        if name == "hosts":
            text = "".join(f"{ip}\t{host}\n" for host, ip in doc["add_hosts"] if ip != "host-gateway") + text
        etcfiles.write(userdata, name, text)


def _etc(
    userdata: str, doc: dict[str, Any], addresses: list[str], gateway: str, dns_servers: list[str]
) -> None:
    etcfiles.write(userdata, "hosts", etcfiles.hosts(doc, addresses, gateway))
    etcfiles.write(userdata, "resolv.conf", etcfiles.resolv_conf(doc, dns_servers))


@contextlib.contextmanager
def _bridge_lock(saved: dict[str, Any]) -> Iterator[None]:
    """Host-wide, per bridge: an ADD never races the removal of the idle bridge it attaches to. The default
    network's bridge is never removed, so its containers do not queue behind each other's plugins."""
    from hutch.engine.network import config

    if saved["conf"]["name"] == config.DEFAULT_NETWORK:
        yield
        return
    with locks.held(os.path.join(locks.LOCK_DIR, saved["bridge"])):
        yield


def setup(engine: Engine, rec: Record, background: bool = False) -> None:
    """Before the runtime's create: the netns the spec names, and every network of the plan attached. With
    `background` the plugins run in a forked helper while the runtime creates the container; `ready`
    collects them (before start)."""
    userdata = engine.path(rec, "userdata")
    doc = plan.load(userdata)
    if doc is not None and doc.get("pod"):
        from hutch.engine import pods

        pods.before_start(engine, rec, doc["pod"])
    if doc is not None and doc.get("target"):
        _share_etc(engine, doc["target"], userdata, doc)  # as the other container's files are now
    if doc is None or doc["mode"] != "bridge":
        return
    if doc.get("active"):
        teardown_plan(rec.id, userdata, doc)  # what a crashed run left
    doc["active"] = True
    plan.save(userdata, doc)
    path = netns.create(rec.id)
    for i, entry in enumerate(doc["networks"]):
        _record(engine, doc, entry, first=i == 0)
    plan.save(userdata, doc)  # before ADD: a crash during it still gets its DEL
    if background:
        _pending[rec.id] = _fork_adds(rec.id, doc, path)
        return
    for entry, result in zip(doc["networks"], _add_all(rec.id, doc, path), strict=True):
        _added(rec.id, userdata, doc, entry, result)
    write_etc(engine, userdata, doc)


# Container id -> (helper pid, the pipe its results come through), between setup and ready.
_pending: dict[str, tuple[int, int]] = {}


def _fork_adds(container_id: str, doc: dict[str, Any], path: str) -> tuple[int, int]:
    from hutch import jsonfast
    from hutch.engine.network import cni  # noqa: F401  (imported before fork: the helper runs the plugins)

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            results = _add_all(container_id, doc, path)
            out = jsonfast.dumps({"results": results})
        except BaseException as e:
            out = jsonfast.dumps({"error": str(e) or type(e).__name__})
        with contextlib.suppress(OSError):
            os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    return pid, r


def ready(engine: Engine, rec: Record) -> None:
    """The background ADDs of setup: their results recorded, the names served, the /etc files written.
    Raises the first plugin's error. A no-op when nothing is pending."""
    pending = _pending.pop(rec.id, None)
    if pending is None:
        return
    from hutch import jsonfast
    from hutch.engine.network import cni

    pid, r = pending
    with os.fdopen(r, "rb") as f:
        report = f.read()
    os.waitpid(pid, 0)
    try:
        doc_in = jsonfast.loads(report.decode(errors="replace") or "{}")
    except jsonfast.DecodeError:
        doc_in = {}
    if "results" not in doc_in:
        raise cni.PluginError(str(doc_in.get("error") or "network setup: its helper died"))
    userdata = engine.path(rec, "userdata")
    doc = plan.load(userdata) or {}
    for entry, result in zip(doc["networks"], doc_in["results"], strict=True):
        _added(rec.id, userdata, doc, entry, result)
    write_etc(engine, userdata, doc)


def _runtime(doc: dict[str, Any], entry: dict[str, Any], first: bool) -> dict[str, Any]:
    runtime: dict[str, Any] = {}
    if first and doc["ports"]:
        runtime["portMappings"] = doc["ports"]
    if entry.get("ip"):
        runtime["ips"] = [entry["ip"]]
    if entry.get("mac"):
        runtime["mac"] = entry["mac"]
    return runtime


def _record(engine: Engine, doc: dict[str, Any], entry: dict[str, Any], first: bool) -> None:
    """The conflist and runtime config the network's ADD (and later its DEL) get, into the plan."""
    from hutch.engine.network import config

    net = config.load(engine.root, entry["name"])
    runtime = _runtime(doc, entry, first)
    conf = config.conflist(net)
    # portmap and tuning act only on their capabilities: without them, two plugin runs saved each way.
    unused = {"portmap": "portMappings", "tuning": "mac"}
    conf["plugins"] = [p for p in conf["plugins"] if p["type"] not in unused or unused[p["type"]] in runtime]
    rules = {"subnets": [x.subnet for x in net.subnets], "internal": net.internal}
    doc["confs"][net.name] = {
        "conf": conf,
        "runtime": runtime,
        "bridge": net.bridge,
        "dns": net.dns,
        "rules": rules,
    }


def _add(container_id: str, doc: dict[str, Any], entry: dict[str, Any], path: str) -> dict[str, Any]:
    from hutch.engine.network import cni

    saved = doc["confs"][entry["name"]]
    # The rules' check (an iptables-save) runs beside the plugins: the container starts only after both.
    from hutch.engine.network import firewall

    check = firewall.check_saved(saved)
    try:
        with _bridge_lock(saved):
            result = cni.add(
                saved["conf"],
                container_id=container_id,
                netns=path,
                ifname=entry["ifname"],
                runtime=saved["runtime"],
            )
    except BaseException:
        if check is not None:
            check.reap()  # the plugin's error is the one to report
        raise
    if check is not None:
        check.finish()
    return result


def _add_all(container_id: str, doc: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """ADD on every network of the plan; several at once (each has its own bridge and interface)."""
    entries = doc["networks"]
    if len(entries) == 1:
        return [_add(container_id, doc, entries[0], path)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(entries)) as pool:
        futures = [pool.submit(_add, container_id, doc, e, path) for e in entries]
        return [f.result() for f in futures]


def _added(
    container_id: str, userdata: str, doc: dict[str, Any], entry: dict[str, Any], result: dict[str, Any]
) -> None:
    doc["results"][entry["name"]] = result
    plan.save(userdata, doc)
    if doc["confs"][entry["name"]].get("dns"):
        from hutch.engine.network import dns

        names = [doc["name"], container_id[:12], *entry.get("aliases", [])]
        gateways = _gateways(result)
        dns.add(doc["confs"][entry["name"]]["bridge"], gateways, container_id, _addresses(result), names)
        v4 = [g for g in gateways if ":" not in g]
        if v4 and not dns.wait_answering(netns.path(container_id), v4[0], doc["name"]):
            sys.stderr.write(f"WARN: aardvark-dns on {v4[0]} does not answer {doc['name']} yet\n")


def _addresses(result: dict[str, Any]) -> list[str]:
    return [str(ip["address"]).split("/")[0] for ip in result.get("ips", []) if "address" in ip]


def _gateways(result: dict[str, Any]) -> list[str]:
    return [str(ip["gateway"]) for ip in result.get("ips", []) if ip.get("gateway")]


def write_etc(engine: Engine, userdata: str, doc: dict[str, Any]) -> None:
    """/etc/hosts and resolv.conf with the addresses the networks gave."""
    addresses: list[str] = []
    gateway = ""
    dns_servers: list[str] = []
    for entry in doc["networks"]:
        result = doc["results"].get(entry["name"])
        if result is None:
            continue
        addresses += _addresses(result)
        gateway = gateway or next(iter(_gateways(result)), "")
        if doc["confs"].get(entry["name"], {}).get("dns"):
            dns_servers += [g for g in _gateways(result) if g not in dns_servers]
    _etc(userdata, doc, addresses, gateway, dns_servers)


def teardown(engine: Engine, rec: Record) -> None:
    """At finish: undo setup (idempotent; a no-op for a container that has nothing set up)."""
    if rec.id in _pending:  # a launch that failed before `ready`: let the helper's ADDs finish first
        with contextlib.suppress(HutchError):
            ready(engine, rec)
    userdata = engine.path(rec, "userdata")
    doc = plan.load(userdata)
    if doc is None or not doc.get("active"):
        if os.path.exists(netns.path(rec.id)):
            netns.remove(rec.id)
        return
    teardown_plan(rec.id, userdata, doc)


def teardown_plan(container_id: str, userdata: str, doc: dict[str, Any]) -> None:
    errors: list[str] = []
    if any(c.get("dns") for c in doc["confs"].values()):
        from hutch.engine.network import dns

        dns.remove(container_id)
    path = netns.path(container_id)
    path = path if os.path.exists(path) else ""
    if path and _leave_to_kernel(container_id, doc):
        netns.remove(container_id)
        path = ""  # DEL without a netns: the plugins free the lease (and portmap its DNAT), no interface
    for entry in reversed(doc["networks"]):
        errors += _detach(container_id, doc, entry, path)
    netns.remove(container_id)
    doc["active"] = False
    doc["results"] = {}
    doc["confs"] = {}
    plan.save(userdata, doc)
    for e in errors:  # the container is gone either way: say what could not be undone
        sys.stderr.write(f"WARN: teardown of container {container_id[:12]}: {e}\n")


def _leave_to_kernel(container_id: str, doc: dict[str, Any]) -> bool:
    """Whether the namespace may take the container's interfaces with it: the kernel deletes them when
    its last reference goes (~15-40 ms later, off our path) where the bridge plugin's DEL waits ~20 ms
    for each. Not while a process still lives in it, nor for a plan saved before the per-network rules
    (that bridge plugin tears down its masquerade chain only with the interface in hand)."""
    for saved in doc["confs"].values():
        bridge: dict[str, Any] = next((p for p in saved["conf"]["plugins"] if p["type"] == "bridge"), {})
        if bridge.get("ipMasq") or saved.get("rules") is None:
            return False
    return not netns.in_use(container_id)


def _detach(container_id: str, doc: dict[str, Any], entry: dict[str, Any], path: str) -> list[str]:
    from hutch.engine.network import cni

    saved = doc["confs"].get(entry["name"])
    if saved is None:
        return []
    with _bridge_lock(saved):
        errors = cni.delete(
            saved["conf"],
            doc["results"].get(entry["name"]),
            container_id=container_id,
            netns=path,
            ifname=entry["ifname"],
            runtime=saved["runtime"],
        )
        remove_idle_bridge(saved["conf"]["name"], saved["bridge"])
    return errors


def remove_idle_bridge(name: str, bridge: str) -> None:
    """A user network's bridge with no lease left goes (podman's netavark does the same), so no interface
    outlives the last container; its firewall chains stay with the network (network rm takes them). The
    default network's stays, as podman's cni-podman0 does: deleting a bridge waits for the kernel (~100 ms)
    on every `run --rm`. The caller holds the bridge's lock."""
    from hutch.engine.network import config

    if name == config.DEFAULT_NETWORK:
        return
    import ipaddress

    from hutch.engine.network import spawn

    try:
        leases = os.listdir(os.path.join(config.IPAM_DIR, name))
    except FileNotFoundError:
        leases = []
    for lease in leases:
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(lease)
            return
    if os.path.exists(f"/sys/class/net/{bridge}"):
        with contextlib.suppress(OSError):
            spawn.run(["ip", "link", "delete", bridge, "type", "bridge"])


# --- connect, disconnect, reload -------------------------------------------------------------------------


def _running_plan(engine: Engine, rec: Record) -> tuple[str, dict[str, Any], bool]:
    userdata = engine.path(rec, "userdata")
    doc = plan.load(userdata)
    if doc is None or doc["mode"] != "bridge":
        mode = doc["mode"] if doc else "none"
        raise ConfigError(f"container {rec.name}: network mode {mode} cannot join bridge networks")
    running = bool(doc.get("active")) and os.path.exists(netns.path(rec.id))
    return userdata, doc, running


def connect(engine: Engine, rec: Record, network: str, aliases: list[str], ip: str, mac: str) -> None:
    """`network connect`: into the plan; attached at once when the container runs."""
    with locks.networks(engine.root, shared=True):  # network rm waits until the plan names it
        _connect(engine, rec, network, aliases, ip, mac)


def _connect(engine: Engine, rec: Record, network: str, aliases: list[str], ip: str, mac: str) -> None:
    from hutch.engine.network import config

    net = config.find(engine.root, network)
    userdata, doc, running = _running_plan(engine, rec)
    if any(e["name"] == net.name for e in doc["networks"]):
        raise ConfigError(
            f"container {rec.id} is already connected to network {net.name}: network already exists"
        )
    used = {e["ifname"] for e in doc["networks"]}
    ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
    entry = {"name": net.name, "ifname": ifname, "aliases": list(aliases), "ip": "", "mac": ""}
    if ip:
        entry["ip"] = plan._static_ip(ip, net)
    if mac:
        entry["mac"] = plan._mac(mac)
    doc["networks"].append(entry)
    plan.save(userdata, doc)
    if running:
        try:
            _record(engine, doc, entry, first=False)
            plan.save(userdata, doc)
            _attach(rec.id, userdata, doc, entry)
        except BaseException:
            doc["networks"].remove(entry)
            doc["confs"].pop(net.name, None)
            plan.save(userdata, doc)
            raise
        write_etc(engine, userdata, doc)


def _attach(container_id: str, userdata: str, doc: dict[str, Any], entry: dict[str, Any]) -> None:
    """ADD on a running container, then its names on the network's DNS: all or nothing, so when the names
    fail the interface goes again (DEL) and the other networks' names are served as before."""
    path = netns.path(container_id)
    result = _add(container_id, doc, entry, path)
    try:
        _added(container_id, userdata, doc, entry, result)
    except BaseException:
        doc["results"].pop(entry["name"], None)
        with contextlib.suppress(HutchError, OSError):  # the first error is the one to report
            if doc["confs"][entry["name"]].get("dns"):
                from hutch.engine.network import dns

                dns.remove(container_id)
                _re_register_dns(container_id, doc)
        with contextlib.suppress(HutchError, OSError):
            _detach(container_id, doc, entry, path)
        raise


def disconnect(engine: Engine, rec: Record, network: str) -> None:
    """`network disconnect`: detached at once when the container runs, and out of the plan."""
    from hutch.engine.network import config

    net = config.find(engine.root, network)
    userdata, doc, running = _running_plan(engine, rec)
    entry = next((e for e in doc["networks"] if e["name"] == net.name), None)
    if entry is None:
        raise NotFoundError(f"container {rec.id} is not connected to network {net.name}")
    errors: list[str] = []
    if running and net.name in doc["confs"]:
        if doc["confs"][net.name].get("dns"):
            from hutch.engine.network import dns

            dns.remove(rec.id)
        errors = _detach(rec.id, doc, entry, netns.path(rec.id))
        doc["confs"].pop(net.name, None)
        doc["results"].pop(net.name, None)
    doc["networks"].remove(entry)
    plan.save(userdata, doc)
    if running:
        _re_register_dns(rec.id, doc)
        write_etc(engine, userdata, doc)
    if errors:
        raise StateError("; ".join(errors))


def _re_register_dns(container_id: str, doc: dict[str, Any]) -> None:
    from hutch.engine.network import dns

    for entry in doc["networks"]:
        saved, result = doc["confs"].get(entry["name"]), doc["results"].get(entry["name"])
        if saved and saved.get("dns") and result:
            names = [doc["name"], container_id[:12], *entry.get("aliases", [])]
            dns.add(saved["bridge"], _gateways(result), container_id, _addresses(result), names)


def reload(engine: Engine, rec: Record) -> None:
    """`network reload`: each network's rules made again, the container keeping its interfaces: the
    network's own chains (ensured) and the per-container plugins' (portmap: DEL, then ADD on the same
    result); then CHECK of the whole list. A plan from before the per-network rules gets its whole list
    again (DEL, ADD with the addresses and MAC it had)."""
    from hutch.engine.containers import LIVE
    from hutch.engine.network import firewall

    if rec.state in LIVE and (plan.load(engine.path(rec, "userdata")) or {}).get("mode") == "none":
        return  # a netns with lo only: no rules of its own (podman's reload of it succeeds, doing nothing)
    userdata, doc, running = _running_plan(engine, rec)
    if not running:
        raise StateError(f"container {rec.id} is not running")
    path = netns.path(rec.id)
    for entry in doc["networks"]:
        saved, result = doc["confs"].get(entry["name"]), doc["results"].get(entry["name"])
        if not saved or not result:
            continue
        firewall.ensure_saved(saved)
        with _bridge_lock(saved):
            doc["results"][entry["name"]] = _redo(rec.id, saved, result, entry["ifname"], path)
        plan.save(userdata, doc)
        # Then the plugins verify what they set up (CNI CHECK): an interface, address or MAC that is not
        # there is the reload's error. Not portmap, just made again above: Debian's (bookworm's) fails CHECK on
        # an IPv4-only container, looking for the IPv6 DNAT chain it never made.
        from hutch.engine.network import cni

        conf = saved["conf"]
        cni.check(
            dict(conf, plugins=[p for p in conf["plugins"] if p["type"] != "portmap"]),
            doc["results"][entry["name"]],
            container_id=rec.id,
            netns=path,
            ifname=entry["ifname"],
            runtime=saved["runtime"],
        )


_KEEPS_INTERFACE = ("portmap", "firewall")  # their DEL and ADD leave the veth and address alone


def _redo(
    container_id: str, saved: dict[str, Any], result: dict[str, Any], ifname: str, path: str
) -> dict[str, Any]:
    from hutch.engine.network import cni

    conf = saved["conf"]
    runtime = dict(saved["runtime"])
    if saved.get("rules") is not None:
        conf = dict(conf, plugins=[p for p in conf["plugins"] if p["type"] in _KEEPS_INTERFACE])
        if not conf["plugins"]:
            return result
    else:
        runtime["ips"] = [str(ip["address"]) for ip in result.get("ips", [])]
        mac = next((x.get("mac") for x in result.get("interfaces", []) if x.get("sandbox")), "")
        if mac:
            runtime["mac"] = mac
    cni.delete(conf, result, container_id=container_id, netns=path, ifname=ifname, runtime=runtime)
    prev = result if saved.get("rules") is not None else None
    return cni.add(conf, container_id=container_id, netns=path, ifname=ifname, runtime=runtime, prev=prev)


def ports(engine: Engine, rec: Record) -> list[dict[str, Any]]:
    """The ports published for the container: its own, or those of the container whose netns it joined."""
    from hutch.engine.db import NoSuchContainer

    doc = plan.load(engine.path(rec, "userdata")) or {}
    if doc.get("target"):
        with contextlib.suppress(NoSuchContainer):
            doc = plan.load(engine.path(engine.db.get(doc["target"]), "userdata")) or {}
    return list(doc.get("ports", []))


def before_launch(
    engine: Engine, rec: Record, restore: str | None, background: bool = False, any_runtime: bool = False
) -> None:
    """setup, and on failure what a failed launch does: the container finished (removed, or with `restore`
    put back in that state), which tears down whatever setup had done. `background`: the caller calls
    `ready` before the runtime starts the container (a foreground run does only with the in-process
    runtime; a detached one, under conmon, with any: `any_runtime`)."""
    try:
        setup(engine, rec, background and (any_runtime or _in_process(rec)))
    except BaseException:
        from hutch.engine import monitor

        monitor.failed_launch(engine, rec.id, restore)
        raise


def _in_process(rec: Record) -> bool:
    """Whether the runtime library runs the container in this process (then launch_container calls `ready`
    between create and start); another runtime's CLI gets its networks before its create."""
    from hutch import jsonfast

    try:
        cfg = jsonfast.loads(rec.config or "{}")
    except jsonfast.DecodeError:
        cfg = {}
    return not isinstance(cfg, dict) or cfg.get("OCIRuntime") in (None, "", "hutch")
