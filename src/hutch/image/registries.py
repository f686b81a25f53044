"""Registry settings as containers-registries.conf(5) (version 2) gives them: short-name search registries,
and per-registry `[[registry]]` tables (prefix, location, insecure, blocked, `[[registry.mirror]]`).

Files: `$CONTAINERS_REGISTRIES_CONF` (or the `--registries-conf` path) alone when set; otherwise
~/.config/containers/registries.conf if present, else /etc/containers/registries.conf, then the drop-ins of
/etc/containers/registries.conf.d and ~/.config/containers/registries.conf.d, in name order. A later file's
`unqualified-search-registries` replaces an earlier one's; a later `[[registry]]` with the same prefix
replaces the earlier table. Read with the stdlib's tomllib, only by commands that pull or push.

`Config.endpoints(ref)` is where a pull goes: the mirrors of the longest matching prefix in order, then the
location (the prefix of the reference rewritten to each); each knows whether it is insecure (no TLS
verification, plain HTTP allowed). A blocked registry raises BlockedError. Not read: the version 1 tables
([registries.search] ...), short-name aliases and `mirror-by-digest-only`/`pull-from-mirror`.
"""

from __future__ import annotations

import os

from hutch.errors import HutchError
from hutch.image import reference as _reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from hutch.record import dataclass, field
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

ENV = "CONTAINERS_REGISTRIES_CONF"


class RegistriesConfError(_reference.ImageReferenceError):
    """A registries.conf that does not read or does not validate; the message names the file and the key."""


class BlockedError(HutchError):
    """The reference's registry is `blocked = true` in registries.conf."""


@dataclass(slots=True)
class Mirror:
    location: str
    insecure: bool = False


@dataclass(slots=True)
class Entry:
    """One `[[registry]]` table; `prefix` defaults to the location."""

    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirrors: list[Mirror] = field(default_factory=list)
    source: str = ""

    def matches(self, name: str) -> bool:
        """Whether the reference name `host[:port]/path` falls under this prefix (`*.example.com` matches
        any subdomain's registry, on any port)."""
        if self.prefix.startswith("*."):
            host = name.split("/", 1)[0].partition(":")[0]
            return host.endswith(self.prefix[1:])
        return name == self.prefix or name.startswith(self.prefix + "/")

    def rewrite(self, name: str, location: str) -> str:
        if self.prefix.startswith("*.") or not location:
            return name
        return location + name[len(self.prefix) :]


@dataclass(slots=True)
class Endpoint:
    """Where to fetch a reference from: the rewritten reference, and whether TLS is not verified there."""

    ref: _reference.Reference
    insecure: bool
    mirror: bool = False


@dataclass(slots=True)
class Config:
    search: list[str] = field(default_factory=list)
    registries: list[Entry] = field(default_factory=list)

    def find(self, name: str) -> Entry | None:
        """The `[[registry]]` of the longest prefix that `name` falls under."""
        found = [e for e in self.registries if e.matches(name)]
        return max(found, key=lambda e: len(e.prefix)) if found else None

    def endpoints(self, ref: _reference.Reference) -> list[Endpoint]:
        """Mirrors in order, then the location; BlockedError when the registry is blocked."""
        entry = self.find(ref.name)
        if entry is None:
            return [Endpoint(ref, False)]
        if entry.blocked:
            raise BlockedError(f"{ref}: registry {entry.prefix} is blocked in {entry.source}")
        out = [
            Endpoint(_rewritten(ref, entry.rewrite(ref.name, m.location), entry.source), m.insecure, True)
            for m in entry.mirrors
        ]
        out.append(
            Endpoint(_rewritten(ref, entry.rewrite(ref.name, entry.location), entry.source), entry.insecure)
        )
        return out

    def insecure(self, ref: _reference.Reference) -> bool:
        """Whether the reference's own registry (not a mirror) is insecure; BlockedError when blocked."""
        return self.endpoints(ref)[-1].insecure


def _rewritten(ref: _reference.Reference, name: str, source: str) -> _reference.Reference:
    try:
        new = _reference.parse(name, normalize=False)
    except _reference.ImageReferenceError as e:
        raise RegistriesConfError(f"{source}: rewriting {ref}: {e}") from None
    return _reference.Reference(new.domain or ref.domain, new.path, ref.tag, ref.digest)


def conf_paths(explicit: str | None = None) -> list[str]:
    """The files to read, in order: `explicit` or $CONTAINERS_REGISTRIES_CONF alone, else the main file and
    the drop-ins."""
    main = explicit or os.environ.get(ENV)
    if main:
        return [main]
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    user = os.path.join(config_home, "containers", "registries.conf")
    paths = [user if os.path.exists(user) else "/etc/containers/registries.conf"]
    for d in (
        "/etc/containers/registries.conf.d",
        os.path.join(config_home, "containers", "registries.conf.d"),
    ):
        try:
            paths += sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".conf"))
        except OSError:
            pass
    return paths


def load(paths: Iterable[str] | None = None, explicit: str | None = None) -> Config:
    """The settings of `paths` (default: conf_paths(explicit)). A missing file is skipped, unless it is the
    one `explicit` names."""
    import tomllib

    config = Config()
    by_prefix: dict[str, Entry] = {}
    for path in conf_paths(explicit) if paths is None else paths:
        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except FileNotFoundError:
            if explicit and path == explicit:
                raise RegistriesConfError(f"{path}: registries configuration not found") from None
            continue
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise RegistriesConfError(f"{path}: cannot read registries configuration: {e}") from None
        search = doc.get("unqualified-search-registries")
        if search is not None:
            if not isinstance(search, list) or not all(isinstance(v, str) for v in search):
                raise RegistriesConfError(
                    f"{path}: unqualified-search-registries: expected an array of strings"
                )
            config.search = list(search)
        tables = doc.get("registry", [])
        if not isinstance(tables, list):
            raise RegistriesConfError(f"{path}: registry: expected an array of tables ([[registry]])")
        for i, table in enumerate(tables):
            entry = _entry(table, f"{path}: registry[{i}]", path)
            by_prefix[entry.prefix] = entry
    config.registries = list(by_prefix.values())
    return config


def _bool(table: dict[str, Any], key: str, where: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise RegistriesConfError(f"{where}.{key}: expected true or false")
    return value


def _str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise RegistriesConfError(f"{where}.{key}: expected a string")
    return value.rstrip("/")


def _entry(table: object, where: str, source: str) -> Entry:
    if not isinstance(table, dict):
        raise RegistriesConfError(f"{where}: expected a table")
    location = _str(table, "location", where)
    prefix = _str(table, "prefix", where) or location
    if not prefix:
        raise RegistriesConfError(f"{where}: needs a location or a prefix")
    if not location and not prefix.startswith("*."):
        location = prefix
    mirrors_doc = table.get("mirror", [])
    if not isinstance(mirrors_doc, list):
        raise RegistriesConfError(f"{where}.mirror: expected an array of tables ([[registry.mirror]])")
    mirrors = []
    for j, m in enumerate(mirrors_doc):
        mwhere = f"{where}.mirror[{j}]"
        if not isinstance(m, dict):
            raise RegistriesConfError(f"{mwhere}: expected a table")
        mlocation = _str(m, "location", mwhere)
        if not mlocation:
            raise RegistriesConfError(f"{mwhere}.location: a mirror needs a location")
        mirrors.append(Mirror(mlocation, _bool(m, "insecure", mwhere)))
    return Entry(
        prefix=prefix,
        location=location,
        insecure=_bool(table, "insecure", where),
        blocked=_bool(table, "blocked", where),
        mirrors=mirrors,
        source=source,
    )
