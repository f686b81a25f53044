"""Image references: `[domain[:port]/]path[:tag][@digest]`, by the distribution project's reference grammar.

`parse(text)` reads a reference and normalises it as docker and podman do: no domain means docker.io, and a
one-component path on docker.io gets `library/`. `parse(text, normalize=False)` keeps a short name short
(domain ""), for `resolve`, which turns a short name into one candidate per search registry, in order, as the
`unqualified-search-registries` of containers-registries.conf(5) say. ImageReferenceError names the reference.

The grammar's regexes are compiled on first use: a name of plain parts (lower-case path components, a
domain of lower-case labels and a port, an ASCII tag, a sha256/sha512 digest) is checked without them, as
`hutch run NAME:TAG` needs not pay for `re` and `enum` (~3 ms). Anything else goes to the regexes, which
alone decide what is refused, so both ways give the same answers.
"""

from __future__ import annotations

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

_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"

_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TAG_CHARS = _LOWER_ALNUM | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_.-")
_PORT_CHARS = frozenset("0123456789")
_PLAIN_DIGEST_HEX = {"sha256:": 64, "sha512:": 128}
_HEX = frozenset("0123456789abcdef")


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


# --- the grammar: plain forms checked by hand, the rest by the regexes -------------------------------------


def _fullmatch(pattern: str, text: str) -> bool:
    import re  # its own cache keeps the compiled patterns

    return re.fullmatch(pattern, text) is not None


def _is_path(path: str) -> bool:
    return all(map(_plain_component, path.split("/"))) or _fullmatch(_PATH, path)


def _is_domain(domain: str) -> bool:
    return _plain_domain(domain) or _fullmatch(_DOMAIN, domain)


def _is_tag(tag: str) -> bool:
    return _plain_tag(tag) or _fullmatch(_TAG, tag)


def _is_digest(text: str) -> bool:
    return _plain_digest(text) or _fullmatch(_DIGEST, text)


def _plain_component(part: str) -> bool:
    """A path component: lower-case alphanumeric runs joined by `.`, `_`, `__` or dashes."""
    if not part or part[0] not in _LOWER_ALNUM or part[-1] not in _LOWER_ALNUM:
        return False
    separator = ""
    for ch in part:
        if ch in _LOWER_ALNUM:
            if separator not in ("", ".", "_", "__") and separator.strip("-"):
                return False
            separator = ""
        elif ch in "._-":
            separator += ch
        else:
            return False
    return True


def _plain_domain(domain: str) -> bool:
    """Lower-case labels (alphanumeric, inner dashes) joined by dots, with an optional :port."""
    host, colon, port = domain.partition(":")
    if colon and not (port and all(ch in _PORT_CHARS for ch in port)):
        return False
    for label in host.split("."):
        if (
            not label
            or "-" in (label[0], label[-1])
            or not all(ch in _LOWER_ALNUM or ch == "-" for ch in label)
        ):
            return False
    return True


def _plain_tag(tag: str) -> bool:
    """An ASCII tag: a word character, then up to 127 of those, dots and dashes."""
    return 0 < len(tag) <= 128 and tag[0] not in ".-" and all(ch in _TAG_CHARS for ch in tag)


def _plain_digest(text: str) -> bool:
    """sha256: or sha512: and its lower-case hex."""
    length = _PLAIN_DIGEST_HEX.get(text[:7])
    return length is not None and len(text) == 7 + length and all(ch in _HEX for ch in text[7:])


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
        if not _is_digest(digest_text):
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
        if not _is_tag(tag):
            raise ImageReferenceError(f"invalid reference {text!r}: malformed tag {tag!r}")
    domain, path = _split_domain(rest)
    if domain and not _is_domain(domain):
        raise ImageReferenceError(f"invalid reference {text!r}: malformed domain {domain!r}")
    if not _is_path(path):
        if path.lower() != path and _is_path(path.lower()):
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
        if not _is_domain(domain):
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
