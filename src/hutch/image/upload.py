"""Writing to a registry through a hutch.image.registry client: blob uploads and manifest PUTs.

`push_blob(reg, repo, digest, size, source)` sends a blob (bytes, or the path of a file): a HEAD skips what is
there, a cross-repository mount is tried when a source repository of the same registry is named, then the blob
goes up as a monolithic POST+PUT or, with `chunk_size`, as a chunked PATCH upload closed by a PUT.
`put_manifest(reg, repo, reference, data, media_type)` stores a manifest or index under a tag or its digest.

Auth, retries and TLS are the client's: every request goes through `Registry.request`, with the
`repository:NAME:pull,push` scope. A PATCH is never replayed (see `Registry.request`).
"""

from __future__ import annotations

import os
import urllib.parse

from hutch.image.registry import RegistryError, scope
from hutch.oci.digest import Digest, of_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO

    from urllib3.response import BaseHTTPResponse

    from hutch.image.registry import Registry


def _location(reg: Registry, resp: BaseHTTPResponse, base: str) -> str:
    location = resp.headers.get("Location")
    if not location:
        raise RegistryError(f"{reg.host}: upload answered {resp.status} without a Location")
    return urllib.parse.urljoin(base, location)


def push_blob(
    reg: Registry,
    repo: str,
    digest: Digest,
    size: int,
    source: bytes | str,
    *,
    chunk_size: int = 0,
    mount_from: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Upload a blob (bytes, or the path of a file) unless `repo` has it; returns what was done.

    "exists": the registry had it. "mounted": it was mounted from `mount_from`, a repository of the same
    registry. "uploaded": sent in one PUT (or in PATCHes of `chunk_size` bytes when that is set).
    `progress` is told the length of each piece read for sending (negative when a retry starts over).
    """
    if reg.head_blob(repo, digest) is not None:
        return "exists"
    scopes: tuple[str, ...] = (scope(repo, "pull,push"),)
    uploads = reg.url(f"/v2/{repo}/blobs/uploads/")
    if mount_from and mount_from != repo:
        scopes = (*scopes, scope(mount_from))
        query = urllib.parse.urlencode({"mount": str(digest), "from": mount_from})
        resp = reg.request(
            "POST", f"{uploads}?{query}", repo=repo, scopes=scopes, ok=(201, 202), what=f"mount {digest}"
        )
        if resp.status == 201:
            return "mounted"
        location = _location(reg, resp, uploads)
    else:
        resp = reg.request("POST", uploads, repo=repo, scopes=scopes, ok=(202,), what=f"upload {digest}")
        location = _location(reg, resp, uploads)

    def with_digest(loc: str) -> str:
        return f"{loc}{'&' if '?' in loc else '?'}{urllib.parse.urlencode({'digest': str(digest)})}"

    what = f"upload of {reg.host}/{repo}@{digest}"
    if not chunk_size:
        with open(os.devnull if isinstance(source, bytes) else source, "rb") as f:
            counted = _Counted(f, progress)

            def from_start() -> Any:
                counted.rewind()
                return counted

            reg.request(
                "PUT",
                with_digest(location),
                repo=repo,
                scopes=scopes,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                body=source if isinstance(source, bytes) else from_start,
                ok=(201,),
                what=what,
            )
        return "uploaded"
    offset = 0
    with open(os.devnull if isinstance(source, bytes) else source, "rb") as reader:
        while offset < size:
            piece = (
                reader.read(chunk_size) if isinstance(source, str) else source[offset : offset + chunk_size]
            )
            if not piece:
                raise RegistryError(f"{what}: the source ended at {offset} of {size} bytes")
            resp = reg.request(
                "PATCH",
                location,
                repo=repo,
                scopes=scopes,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(piece) - 1}",
                    "Content-Length": str(len(piece)),
                },
                body=piece,
                ok=(202,),
                what=what,
            )
            location = _location(reg, resp, location)
            offset += len(piece)
            if progress is not None:
                progress(len(piece))
    reg.request(
        "PUT",
        with_digest(location),
        repo=repo,
        scopes=scopes,
        headers={"Content-Length": "0"},
        body=b"",
        ok=(201,),
        what=what,
    )
    return "uploaded"


class _Counted:
    """A file as a request body (urllib3 reads it in blocks), telling `report` each block's length."""

    def __init__(self, f: BinaryIO, report: Callable[[int], None] | None) -> None:
        self._f = f
        self._report = report
        self._sent = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if data and self._report is not None:
            self._sent += len(data)
            self._report(len(data))
        return data

    def rewind(self) -> None:
        self._f.seek(0)
        if self._sent and self._report is not None:
            self._report(-self._sent)
        self._sent = 0


def put_manifest(reg: Registry, repo: str, reference: str, data: bytes, media_type: str) -> Digest:
    """Store a manifest or index under a tag (or its digest); returns its digest."""
    digest = of_bytes(data)
    reg.request(
        "PUT",
        f"/v2/{repo}/manifests/{reference}",
        repo=repo,
        scopes=(scope(repo, "pull,push"),),
        headers={"Content-Type": media_type},
        body=data,
        ok=(200, 201),
        what=f"manifest {reg.host}/{repo}:{reference}",
    )
    return digest
