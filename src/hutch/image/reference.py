"""Image references: `[domain[:port]/]path[:tag][@digest]`, by the distribution project's reference grammar.

`parse(text)` reads a reference and normalises it as docker and podman do: no domain means docker.io, and a
one-component path on docker.io gets `library/`. `parse(text, normalize=False)` keeps a short name short
(domain ""), for `resolve`, which turns a short name into one candidate per search registry, in order, as the
`unqualified-search-registries` of containers-registries.conf(5) say. ImageReferenceError names the reference.
"""

from __future__ import annotations

import re

from hutch.errors import HutchError
from hutch.oci import digest as _digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    from hutch.record import dataclass
if TYPE_CHECKING:
    from collections.abc import Iterable

    from hutch.oci.digest import Digest

DOCKER_HUB = "docker.io"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)


class ImageReferenceError(HutchError):
    """An image reference that does not parse, or a short name that cannot be resolved."""


@dataclass(slots=True)
class Reference:
    """A parsed reference. `domain` is "" for an unnormalised short name; `tag` and `digest` may both be set."""

    domain: str
    path: str
    tag: str = ""
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """The repository name with its domain: `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def repository(self) -> str:
        """The repository within its registry: `library/busybox`."""
        return self.path

    @property
    def qualified(self) -> bool:
        return bool(self.domain)

    def with_default_tag(self) -> Reference:
        """This reference, or with tag `latest` when it has neither tag nor digest."""
        if self.tag or self.digest is not None:
            return self
        return Reference(self.domain, self.path, DEFAULT_TAG, None)

    @property
    def object(self) -> str:
        """What a registry's /manifests/ endpoint takes: the digest if there is one, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += ":" + self.tag
        if self.digest is not None:
            text += "@" + str(self.digest)
        return text

    def familiar(self) -> str:
        """As docker prints it: without `docker.io/` and `library/`."""
        text = str(self)
        if self.domain == DOCKER_HUB:
            text = text[len(DOCKER_HUB) + 1 :]
            if text.startswith("library/") and "/" not in self.path[len("library/") :]:
                text = text[len("library/") :]
        return text


def _split_domain(name: str) -> tuple[str, str]:
    """docker's rule: the first component is a domain if it has a `.` or `:`, is localhost, or has upper case."""
    first, sep, rest = name.partition("/")
    if sep and (("." in first or ":" in first) or first == "localhost" or first.lower() != first):
        return first, rest
    return "", name


def parse(text: str, normalize: bool = True) -> Reference:
    """Parse an image reference; with `normalize`, a short name becomes docker.io/[library/]NAME."""
    if not text:
        raise ImageReferenceError("invalid reference format: empty reference")
    rest, at, digest_text = text.partition("@")
    found: Digest | None = None
    if at:
        if not _DIGEST_RE.fullmatch(digest_text):
            raise ImageReferenceError(f"invalid reference {text!r}: malformed digest {digest_text!r}")
        try:
            found = _digest.parse(digest_text, f"reference {text!r}")
        except _digest.DigestError as e:
            raise ImageReferenceError(str(e)) from None
    # A tag follows the last colon after the last slash (a colon before a slash is the port).
    tag = ""
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise ImageReferenceError(f"invalid reference {text!r}: malformed tag {tag!r}")
    domain, path = _split_domain(rest)
    if domain and not _DOMAIN_RE.fullmatch(domain):
        raise ImageReferenceError(f"invalid reference {text!r}: malformed domain {domain!r}")
    if not _PATH_RE.fullmatch(path):
        if path.lower() != path and _PATH_RE.fullmatch(path.lower()):
            raise ImageReferenceError(f"invalid reference {text!r}: repository name must be lowercase")
        raise ImageReferenceError(f"invalid reference {text!r}: malformed repository name {path!r}")
    if len(rest) > NAME_MAX:
        raise ImageReferenceError(
            f"invalid reference {text!r}: repository name is longer than {NAME_MAX} characters"
        )
    if normalize and not domain:
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    return Reference(domain, path, tag, found)


def resolve(text: str, search_registries: Iterable[str] | None = None) -> list[Reference]:
    """The references a user's `text` may mean, in the order to try them.

    A qualified reference is itself. A short name gets one candidate per search registry (default: those of
    registries.conf); with none configured, a ImageReferenceError says so, as podman does.
    """
    ref = parse(text, normalize=False)
    if ref.qualified:
        return [ref]
    registries = list(load_search_registries() if search_registries is None else search_registries)
    if not registries:
        raise ImageReferenceError(
            f"short-name {text!r} did not resolve: no unqualified-search registries are defined "
            "in registries.conf; use a fully qualified name"
        )
    out: list[Reference] = []
    for registry in registries:
        domain = (
            DOCKER_HUB if registry in ("docker.io", "index.docker.io", "registry-1.docker.io") else registry
        )
        if not _DOMAIN_RE.fullmatch(domain):
            raise ImageReferenceError(f"unqualified-search registry {registry!r} is not a valid domain")
        path = "library/" + ref.path if domain == DOCKER_HUB and "/" not in ref.path else ref.path
        out.append(Reference(domain, path, ref.tag, ref.digest))
    return out


def registries_conf_paths() -> list[str]:
    """containers-registries.conf(5) files in the order read (hutch.image.registries decides)."""
    from hutch.image import registries

    return registries.conf_paths()


def load_search_registries(paths: Iterable[str] | None = None) -> list[str]:
    """`unqualified-search-registries` from registries.conf files; a later file that sets it wins."""
    from hutch.image import registries

    return registries.load(paths).search
