"""The blob download half of the registry client: a blob as a stream that resumes after a dropped connection.

:meth:`imgbuild.oci.registry.RegistryClient.open_blob` returns a :class:`BlobStream`:
reading it GETs the blob (streamed, ``READ_SIZE`` pieces) and, when the connection
drops part way, asks again with ``Range: bytes=<got>-`` and goes on from there, a
bounded number of times (a registry that ignores the Range and answers 200 has the
bytes already read skipped). A download that sends less than ``MIN_PROGRESS`` bytes in
a stall window (the client's ``timeout``) is resumed the same way, and resumes stop after
``retries`` drops or ``retry_budget`` seconds since the download last made progress,
whichever comes first. A blob longer than its descriptor says is an error; the
digest is checked by whoever stores the bytes. Like :mod:`imgbuild.oci._upload`, this
module uses only the client's public request helpers and imports nothing from
:mod:`imgbuild.oci.registry` at run time.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Iterator

from imgbuild.errors import AuthError, RegistryError
from imgbuild.oci._http import NetError, Response
from imgbuild.oci._upload import Dropped
from imgbuild.oci.image import ReadStream
from imgbuild.oci.model import Descriptor

if TYPE_CHECKING:
    from imgbuild.oci.registry import RegistryClient

__all__ = ["BlobStream", "Stalled", "READ_SIZE", "MIN_PROGRESS"]

log = logging.getLogger("imgbuild.oci.registry")  # the client's logger

READ_SIZE = 256 << 10  # download piece: what a cut connection can lose before a Range resume
MIN_PROGRESS = 1 << 10  # bytes a download must make in each stall window (client.timeout), or it has stalled


class Stalled(Dropped):
    """A download that keeps its connection but sends (almost) nothing: resumed like a drop."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "stalled"


class BlobStream(ReadStream):
    """A registry blob as a read-only stream; reads return at most one downloaded piece."""

    def __init__(self, client: RegistryClient, repository: str, desc: Descriptor) -> None:
        self._client, self._repository, self._desc = client, repository, desc
        self._where = f"{client.registry}/{repository}@{desc.digest}"
        self._response: Response | None = None
        self._pieces: Iterator[bytes] | None = None
        self._pending = b""
        self._got = self._skip = self._drops = 0
        self._ok_at = time.monotonic()  # when the download last made progress (or started)

    def read(self, n: int | None = -1) -> bytes:
        """Up to ``n`` bytes (all that is left when ``n`` is negative); b"" at the end."""
        if n is None or n < 0:
            return self.readall()
        if not self._pending and n:
            self._pending = self._next()
        out, self._pending = (self._pending, b"") if len(self._pending) <= n else \
            (self._pending[:n], self._pending[n:])
        return out

    def close(self) -> None:
        self._close_response()
        super().close()

    def _next(self) -> bytes:
        """The next piece of the blob, resuming after drops; b"" once all of it was read."""
        while self._got < self._desc.size:
            try:
                piece = self._piece()
            except (Dropped, NetError) as exc:
                self._dropped(exc)
                continue
            if piece:
                return piece
        self._check_end()
        return b""

    def _piece(self) -> bytes:
        if self._pieces is None:
            self._connect()
        piece = next(self._pieces, None)  # type: ignore[arg-type]
        if piece is None:
            raise Dropped(self._got)
        if self._skip:  # a 200 after a drop resends from the start
            cut = min(self._skip, len(piece))
            piece, self._skip = piece[cut:], self._skip - cut
        if self._got + len(piece) > self._desc.size:
            raise RegistryError(f"blob is larger than its descriptor's {self._desc.size} bytes", where=self._where)
        self._got += len(piece)
        return piece

    def _connect(self) -> None:
        """GET the blob (ranged from what was read when resuming)."""
        headers = {"Range": f"bytes={self._got}-"} if self._got else {}
        if not self._drops:
            self._ok_at = time.monotonic()  # the clock starts when the download does, not when it was opened
        try:
            r = self._client.request("GET", f"/v2/{self._repository}/blobs/{self._desc.digest}",
                                     scope=self._client.scope(self._repository), headers=headers, stream=True,
                                     where=self._where)
        except RegistryError as exc:
            if exc.status is None and not isinstance(exc, AuthError):
                raise Dropped(self._got) from exc
            raise
        try:
            if r.status_code == 404:
                raise RegistryError("blob not found in the registry", where=self._where, status=404)
            self._client.check_response(r, (200, 206), "downloading a blob", self._where)
        except RegistryError:
            r.close()
            raise
        self._response, self._pieces = r, self._arriving(r)
        self._skip = self._got if r.status_code == 200 else 0

    def _arriving(self, r: Response) -> Iterator[bytes]:
        """The body as it arrives (one socket read per piece); Stalled when a window brings too little."""
        window, since = self._client.timeout, time.monotonic()
        made = 0
        while piece := r.read1(READ_SIZE):
            made += len(piece)
            yield piece
            if time.monotonic() - since >= window:
                if made < MIN_PROGRESS:
                    raise Stalled(f"the registry sent {made} bytes in {window:.0f} s")
                since, made = time.monotonic(), 0
                self._ok_at = since

    def _dropped(self, exc: BaseException) -> None:
        self._close_response()
        self._drops += 1
        if self._drops > self._client.retries or time.monotonic() - self._ok_at > self._client.retry_budget:
            why = str(exc) if isinstance(exc, Stalled) else self._client.net_failure(exc)
            raise RegistryError(f"download kept failing after {self._drops} attempts: {why}",
                                where=self._where) from exc
        log.debug("download of %s dropped at %d bytes, resuming", self._desc.digest, self._got)
        self._client.wait_before_retry(self._drops - 1)

    def _check_end(self) -> None:
        """At the descriptor's size: the response must end here (more bytes mean a wrong descriptor)."""
        if self._pieces is not None:
            try:
                extra = next((p for p in self._pieces if p), b"")
            except NetError:
                extra = b""
            if extra:
                raise RegistryError(f"blob is larger than its descriptor's {self._desc.size} bytes",
                                    where=self._where)
        self._close_response()

    def _close_response(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response = self._pieces = None
