"""The CNI protocol, as the runtime side (libcni's role): exec a plugin with CNI_COMMAND, CNI_CONTAINERID,
CNI_NETNS, CNI_IFNAME, CNI_PATH in its environment and its network config on stdin; read its result or its
error from stdout. A conflist runs its plugins in order for ADD and CHECK (each gets the previous one's
result as prevResult) and in reverse for DEL (each gets the ADD's final result). Capabilities a plugin
declares (portMappings, ips, mac) reach it as runtimeConfig, as libcni passes them.
"""

from __future__ import annotations

import os

from hutch.engine.network import spawn
from hutch.errors import HostError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CNI_PATH = "/usr/lib/cni"
CNI_VERSION = "1.0.0"


class PluginError(HostError):
    """A plugin failed: its CNI error (code, msg, details) or how it died."""


def _plugin_conf(
    netconf: dict[str, Any], plugin: dict[str, Any], prev: dict[str, Any] | None, runtime: dict[str, Any]
) -> dict[str, Any]:
    conf = dict(plugin)
    conf["name"] = netconf["name"]
    conf["cniVersion"] = netconf.get("cniVersion", CNI_VERSION)
    caps = {k: runtime[k] for k, on in plugin.get("capabilities", {}).items() if on and k in runtime}
    if caps:
        conf["runtimeConfig"] = caps
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def invoke(
    command: str, conf: dict[str, Any], *, container_id: str, netns: str, ifname: str, plugin: str = ""
) -> dict[str, Any] | None:
    """One plugin call (`plugin`, else the conf's type); its result (ADD), or None (CHECK, DEL). Raises
    PluginError with the plugin's message."""
    from hutch import jsonfast

    kind = plugin or conf.get("type", "")
    binary = os.path.join(CNI_PATH, kind)
    if not kind or "/" in kind or not os.access(binary, os.X_OK):
        raise PluginError(f"network {conf.get('name')}: CNI plugin {kind!r} not found in {CNI_PATH}")
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": CNI_PATH,
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    }
    try:
        code, stdout, stderr = spawn.run([binary], env=env, stdin=jsonfast.dumps(conf).encode())
    except OSError as e:
        raise PluginError(f"network {conf.get('name')}: plugin {kind}: {e.strerror}") from None
    out = stdout.decode(errors="replace").strip()
    if code != 0:
        raise PluginError(
            f"network {conf.get('name')}: plugin {kind} {command}: {_error_text(out, code, stderr)}"
        )
    if command != "ADD":
        return None
    try:
        result = jsonfast.loads(out)
    except jsonfast.DecodeError:
        raise PluginError(
            f"network {conf.get('name')}: plugin {kind} ADD: bad result {out[:200]!r}"
        ) from None
    if not isinstance(result, dict):
        raise PluginError(f"network {conf.get('name')}: plugin {kind} ADD: result is not an object")
    return result


def _error_text(out: str, code: int, stderr: bytes) -> str:
    from hutch import jsonfast

    try:
        doc = jsonfast.loads(out)
    except jsonfast.DecodeError:
        doc = None
    if isinstance(doc, dict) and "msg" in doc:
        details = f": {doc['details']}" if doc.get("details") else ""
        return f"{doc['msg']}{details} (CNI error {doc.get('code')})"
    text = (out or stderr.decode(errors="replace")).strip()
    return " ".join(text.split()) or f"exit status {code}"


def add(
    netconf: dict[str, Any],
    *,
    container_id: str,
    netns: str,
    ifname: str,
    runtime: dict[str, Any],
    prev: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """ADD through the list; the final result. `prev`: the result a list that starts past the interface's
    plugin builds on. A failing plugin's predecessors are undone (DEL)."""
    for i, plugin in enumerate(netconf["plugins"]):
        conf = _plugin_conf(netconf, plugin, prev, runtime)
        try:
            prev = invoke("ADD", conf, container_id=container_id, netns=netns, ifname=ifname) or prev
        except PluginError:
            partial = dict(netconf, plugins=netconf["plugins"][: i + 1])
            delete(partial, prev, container_id=container_id, netns=netns, ifname=ifname, runtime=runtime)
            raise
    return prev or {}


def check(
    netconf: dict[str, Any],
    result: dict[str, Any],
    *,
    container_id: str,
    netns: str,
    ifname: str,
    runtime: dict[str, Any],
) -> None:
    """CHECK through the list, each plugin given the ADD's result."""
    for plugin in netconf["plugins"]:
        conf = _plugin_conf(netconf, plugin, result, runtime)
        invoke("CHECK", conf, container_id=container_id, netns=netns, ifname=ifname)


def _deleter(plugin: dict[str, Any], netns: str) -> str:
    """Without a netns the bridge plugin's DEL only hands its config to its IPAM plugin (the interface went
    with the namespace): that one is exec'd directly, one program start saved."""
    ipam = plugin.get("ipam")
    if not netns and plugin.get("type") == "bridge" and isinstance(ipam, dict):
        return str(ipam.get("type", ""))
    return ""


def delete(
    netconf: dict[str, Any],
    result: dict[str, Any] | None,
    *,
    container_id: str,
    netns: str,
    ifname: str,
    runtime: dict[str, Any],
) -> list[str]:
    """DEL through the list in reverse; every plugin is called even if one fails (each frees what is its
    own). Returns the failures' messages."""
    errors = []
    for plugin in reversed(netconf["plugins"]):
        conf = _plugin_conf(netconf, plugin, result, runtime)
        try:
            invoke(
                "DEL",
                conf,
                container_id=container_id,
                netns=netns,
                ifname=ifname,
                plugin=_deleter(plugin, netns),
            )
        except PluginError as e:
            errors.append(str(e))
    return errors
