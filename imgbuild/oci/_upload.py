"""The blob upload half of the registry client: monolithic PUT, chunked PATCH, resume and cross-repo mount.

:class:`imgbuild.oci.registry.RegistryClient` keeps its public upload methods
(``push_blob``, ``mount_blob``, ``start_upload``, ``upload_status``) and delegates
to the functions here, which take the client as their first argument and use its
request, status-check and backoff helpers. Small blobs go up in one PUT; large
ones (or a resumed upload) as PATCH chunks and a closing PUT. After a dropped
PATCH the upload URL is asked for the range it holds and the upload goes on from
there; if the session is gone the whole upload starts over, a bounded number of
times. This module imports nothing from :mod:`imgbuild.oci.registry` at run time,
so the client can import it without a cycle. It also holds the two pieces the
client's download and request loop share with it: the :class:`Section` request
body and the :class:`Dropped` signal.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, BinaryIO, Callable
from urllib.parse import urlencode, urljoin

from imgbuild.errors import AuthError, DigestMismatch, RegistryError
from imgbuild.oci.model import Descriptor

if TYPE_CHECKING:
    from imgbuild.oci._http import Response
    from imgbuild.oci.image import OnBytes as ProgressFn
    from imgbuild.oci.registry import RegistryClient

__all__ = [
    "RETRY_STATUS", "Section", "Dropped", "noop", "location", "push_blob", "mount_blob", "start_upload",
    "upload", "patch_all", "patch", "upload_status", "range_end",
]

log = logging.getLogger("imgbuild.oci.registry")  # the client's logger: upload messages stay where they were

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class Section:
    """A read-only window ``[offset, offset+length)`` of a blob, reporting bytes as they are read."""

    def __init__(self, opener: Callable[[], BinaryIO], offset: int, length: int, on_bytes: ProgressFn) -> None:
        self._fh = opener()
        if offset and self._fh.seekable():
            self._fh.seek(offset)
        elif offset:  # a stream (another registry, an archive member): read up to the window
            while offset and (skipped := len(self._fh.read(min(offset, 1 << 20)))):
                offset -= skipped
        self._left = length
        self._length = length
        self._on_bytes = on_bytes
        self.sent = 0

    def __len__(self) -> int:
        return self._length

    def read(self, n: int = -1) -> bytes:
        """Read at most ``n`` bytes of the window."""
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._fh.read(n) if n else b""
        self._left -= len(data)
        self.sent += len(data)
        if data:
            self._on_bytes(len(data))
        return data

    def close(self) -> None:
        """Close the underlying file."""
        self._fh.close()


class Dropped(Exception):
    """A transfer lost its connection part way (internal: triggers a resume)."""


def noop(_: int) -> None:
    """A progress callback that ignores its byte count."""
    return None


def location(client: RegistryClient, r: Response, where: str) -> str:
    """The absolute upload URL from a response's ``Location`` header; RegistryError if it has none."""
    loc = r.headers.get("Location")
    if not loc:
        raise RegistryError("upload response has no Location", where=where, status=r.status_code)
    return urljoin(client.base + "/", loc)


def mount_blob(client: RegistryClient, repository: str, digest: str, source: str) -> str | None:
    """Mount ``digest`` from ``source`` into ``repository``; None if mounted, else an upload URL to use."""
    where = f"{client.registry}/{repository}@{digest}"
    query = urlencode({"mount": str(digest), "from": source})
    # the registry checks pull on the source too: ask for both scopes, and upload if the source is not ours to read
    scope = f"{client.scope(repository, True)} {client.scope(source)}"
    try:
        r = client.request("POST", f"/v2/{repository}/blobs/uploads/?{query}", scope=scope,
                            headers={"Content-Length": "0"}, where=where)
    except AuthError as exc:
        log.debug("mount of %s from %s refused (%s); uploading instead", digest, source, exc)
        return start_upload(client, repository)
    with r:
        if r.status_code == 201:
            return None
        client.check_response(r, (202,), "starting an upload", where)
        return location(client, r, where)


def start_upload(client: RegistryClient, repository: str) -> str:
    """Open an upload session; returns its URL."""
    where = f"{client.registry}/{repository}"
    r = client.request("POST", f"/v2/{repository}/blobs/uploads/", scope=client.scope(repository, True),
                        headers={"Content-Length": "0"}, where=where)
    with r:
        client.check_response(r, (202,), "starting an upload", where)
        return location(client, r, where)


def push_blob(client: RegistryClient, repository: str, desc: Descriptor, opener: Callable[[], BinaryIO], *,
              mount_from: str | None = None, on_bytes: ProgressFn | None = None, check_exists: bool = True) -> str:
    """Upload a blob unless present (``"exists"``, asked only if ``check_exists``); mount it (``"mounted"``)
    or stream it (``"pushed"``)."""
    if check_exists and client.has_blob(repository, str(desc.digest)):
        return "exists"
    where = f"{client.registry}/{repository}@{desc.digest}"
    url = None
    if mount_from and mount_from != repository:
        url = mount_blob(client, repository, str(desc.digest), mount_from)
        if url is None:
            return "mounted"
    on_bytes = on_bytes or noop
    for attempt in range(client.retries + 1):
        url = url or start_upload(client, repository)
        sent = [0]

        def count(n: int) -> None:
            sent[0] += n
            on_bytes(n)
        try:
            upload(client, url, desc, opener, count, where, client.scope(repository, True))
            return "pushed"
        except Dropped as exc:
            on_bytes(-sent[0])
            if attempt == client.retries:
                raise RegistryError(f"upload kept failing after {attempt + 1} attempts", where=where) from exc
            log.debug("upload of %s broke (%s); starting over", desc.digest, exc)
            url = None
            client.wait_before_retry(attempt)
    raise AssertionError("unreachable")


def upload(client: RegistryClient, url: str, desc: Descriptor, opener, on_bytes: ProgressFn, where: str,
           scope: str, offset: int = 0) -> None:
    """Monolithic PUT for small blobs, PATCH chunks (resumable, from ``offset``) then PUT for large ones."""
    if desc.size > client.monolithic_max or offset:
        url = patch_all(client, url, desc, opener, on_bytes, where, scope, offset)
        body: object = None
    else:
        body = Section(opener, 0, desc.size, on_bytes)
    sep = "&" if "?" in url else "?"
    try:
        r = client.request("PUT", f"{url}{sep}{urlencode({'digest': str(desc.digest)})}",
                            scope=scope, headers={"Content-Type": "application/octet-stream",
                                                  **({} if body is not None else {"Content-Length": "0"})},
                            data=body, retry_net=False, where=where)
    except RegistryError as exc:
        if exc.status is None:
            raise Dropped(str(exc)) from exc
        raise
    finally:
        if isinstance(body, Section):
            body.close()
    with r:
        if r.status_code in RETRY_STATUS or r.status_code == 404:
            raise Dropped(f"HTTP {r.status_code}")
        client.check_response(r, (201, 204), "completing an upload", where)
        returned = r.headers.get("Docker-Content-Digest")
    if returned and returned != str(desc.digest):
        raise DigestMismatch(str(desc.digest), returned, where)


def patch_all(client: RegistryClient, url: str, desc: Descriptor, opener, on_bytes: ProgressFn, where: str,
              scope: str, offset: int = 0) -> str:
    """PATCH the blob in chunks; after a drop ask the upload URL for its range and go on from there."""
    resumes = 0
    while offset < desc.size:
        n = min(client.chunk_size, desc.size - offset)
        section = Section(opener, offset, n, on_bytes)
        try:
            url, offset = patch(client, url, section, offset, where, scope)
        except Dropped:
            # docker-registry 2.8 cancels an upload whose PATCH body was cut (the session then answers
            # 404 and we start over); registries that keep the received bytes, or a PATCH whose answer
            # was lost, resume here from the range the upload URL reports.
            resumes += 1
            status = upload_status(client, url, scope) if resumes <= client.retries else None
            if status is None:
                raise
            on_bytes(status[1] - offset - section.sent)
            url, offset = status
        finally:
            section.close()
    return url


def patch(client: RegistryClient, url: str, section: Section, offset: int, where: str,
          scope: str) -> tuple[str, int]:
    """One PATCH of ``section`` at ``offset``; returns the next upload URL and offset."""
    end = offset + len(section) - 1
    try:
        r = client.request("PATCH", url, scope=scope, data=section, retry_net=False, where=where,
                            headers={"Content-Type": "application/octet-stream",
                                     "Content-Range": f"{offset}-{end}"})
    except RegistryError as exc:
        if exc.status is None:
            raise Dropped(str(exc)) from exc
        raise
    with r:
        if r.status_code != 202:
            raise Dropped(f"PATCH answered HTTP {r.status_code}")
        return location(client, r, where), range_end(r) or end + 1


def upload_status(client: RegistryClient, url: str, scope: str) -> tuple[str, int] | None:
    """Ask an upload URL how much it holds: (new location, next offset), or None if the session is gone."""
    try:
        r = client.request("GET", url, scope=scope, where=client.registry)
    except RegistryError:
        return None
    with r:
        if r.status_code != 204:
            return None
        return location(client, r, client.registry), range_end(r) or 0


def range_end(r: Response) -> int | None:
    """The next offset from a ``Range: 0-N`` upload header (N+1), or None."""
    value = r.headers.get("Range", "")
    _, _, end = value.partition("-")
    return int(end) + 1 if end.isdigit() else None
