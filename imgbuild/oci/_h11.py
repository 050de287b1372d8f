"""HTTP/1.1 on a socket, the client's side: send a request head, read an answer's head, read its body.

The registry transport's wire code (:mod:`imgbuild.oci._http` pools, redirects and maps errors). The
standard library's ``http.client`` does this job too, but importing it loads the email package and ssl:
15-20 ms of a CLI push's CPU on the 2-core CI machine (skopeo's whole start-up is ~50 ms), and a
plain-http registry needs neither (ssl is imported for the first https connection only).

What a client needs of RFC 9112 and no more: a status line ``HTTP/1.x NNN``, header fields (obsolete line
folding joined with a space, a repeated field read as its first value, as ``http.client`` reads it), interim
1xx answers skipped, no body for HEAD, 1xx, 204 and 304, ``Transfer-Encoding: chunked`` (chunk extensions and
trailers read and dropped) before ``Content-Length``, and otherwise a body up to the close. The connection is
kept for another exchange unless the server says ``Connection: close``, speaks HTTP/1.0 without keep-alive,
or ends its body by closing. Limits as ``http.client``'s: 64 KiB a line, 100 header fields. A request is
refused before a byte is sent when its target or a header would break the message (a space, CR, LF or NUL:
a Location header is the registry's text, not ours).
"""

from __future__ import annotations

import socket
from typing import BinaryIO, Iterable

__all__ = ["Connection", "Headers", "Body", "ProtocolError", "Closed", "request_head", "MAX_LINE", "MAX_FIELDS"]

MAX_LINE = 65536
MAX_FIELDS = 100
_HEX = b"0123456789abcdefABCDEF"


class ProtocolError(Exception):
    """The peer's bytes are not an HTTP/1.x answer, or its body ended before its framing said."""


class Closed(ConnectionResetError):
    """The server closed the connection before it began an answer (as it does to a kept-alive one it dropped)."""


class Headers:
    """An answer's header fields: ``get`` by name in any case; a field given twice reads as its first value."""

    __slots__ = ("_first",)

    def __init__(self, fields: Iterable[tuple[str, str]]) -> None:
        self._first: dict[str, str] = {}
        for name, value in fields:
            self._first.setdefault(name.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The field's value, or ``default``."""
        return self._first.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __repr__(self) -> str:
        return f"Headers({self._first!r})"


def _clean(what: str, text: str, forbidden: str) -> str:
    if any(c in text for c in forbidden):
        raise ValueError(f"refusing to send a {what} with a control character or space: {text[:80]!r}")
    return text


_NOT_IN_TOKEN = " \t:/\r\n\0"  # method and header names
_NOT_IN_TARGET = " \t\r\n\0"
_NOT_IN_VALUE = "\r\n\0"


def request_head(method: str, target: str, host: str, headers: dict[str, str]) -> bytes:
    """The request line, ``Host`` and ``headers`` as bytes ending in the blank line; ValueError if any would break
    the message."""
    lines = [f"{_clean('method', method, _NOT_IN_TOKEN)} {_clean('target', target, _NOT_IN_TARGET)} HTTP/1.1",
             f"Host: {_clean('Host', host, _NOT_IN_TARGET)}"]
    for name, value in headers.items():
        value = _clean("header value", str(value), _NOT_IN_VALUE)
        lines.append(f"{_clean('header name', name, _NOT_IN_TOKEN)}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _line(rfile: BinaryIO, what: str) -> bytes:
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ProtocolError(f"{what} longer than {MAX_LINE} bytes")
    return line


def _fields(rfile: BinaryIO) -> list[tuple[str, str]]:
    """Header (or trailer) fields up to the blank line."""
    fields: list[tuple[str, str]] = []
    while True:
        line = _line(rfile, "a header line")
        if line in (b"\r\n", b"\n"):
            return fields
        if not line:
            raise ProtocolError("connection closed inside the answer's header")
        text = line.decode("latin-1").rstrip("\r\n")
        if text[:1] in (" ", "\t"):
            if not fields:
                raise ProtocolError(f"a header begins with a continuation line: {text[:40]!r}")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {text.strip()}")
            continue
        name, sep, value = text.partition(":")
        if not sep or not name.strip():
            raise ProtocolError(f"not a header field: {text[:40]!r}")
        if len(fields) == MAX_FIELDS:
            raise ProtocolError(f"more than {MAX_FIELDS} header fields")
        fields.append((name.strip(), value.strip()))  # "Name : value" read as http.client reads it


class Body:
    """An answer's body, read by its framing. ``done`` once read to its end; ``keep`` if the connection may then
    carry another exchange."""

    def __init__(self, rfile: BinaryIO, length: int | None, chunked: bool, keep: bool) -> None:
        self._rfile = rfile
        self.left = length          # bytes still to come of a Content-Length body
        self._chunked = chunked
        self._chunk = 0             # bytes still to come of the current chunk
        self.keep = keep
        self.done = length == 0 and not chunked

    def read1(self, n: int) -> bytes:
        """At most ``n`` (>= 1) bytes as they arrive; b"" at the end. ProtocolError if the connection ends early."""
        if self.done:
            return b""
        if self._chunked:
            return self._read_chunked(n)
        if self.left is None:  # up to the close
            data = self._rfile.read1(n)
            self.done = not data
            return data
        data = self._rfile.read1(min(n, self.left))
        if not data:
            raise ProtocolError(f"connection closed {self.left} bytes before the end of the body")
        self.left -= len(data)
        self.done = not self.left
        return data

    def read(self) -> bytes:
        """The rest of the body."""
        if self.left is not None and not self.done:
            data = self._rfile.read(self.left)
            if len(data) < self.left:
                self.left -= len(data)
                raise ProtocolError(f"connection closed {self.left} bytes before the end of the body")
            self.left, self.done = 0, True
            return data
        parts = []
        while piece := self.read1(1 << 20):
            parts.append(piece)
        return b"".join(parts)

    def _read_chunked(self, n: int) -> bytes:
        if not self._chunk:
            line = _line(self._rfile, "a chunk size line")
            if not line:
                raise ProtocolError("connection closed inside a chunked body")
            size = line.split(b";", 1)[0].strip()
            if not size or size.strip(_HEX):
                raise ProtocolError(f"not a chunk size: {line[:20]!r}")
            self._chunk = int(size, 16)
            if not self._chunk:
                _fields(self._rfile)  # trailers, dropped
                self.done = True
                return b""
        data = self._rfile.read1(min(n, self._chunk))
        if not data:
            raise ProtocolError(f"connection closed {self._chunk} bytes before the end of a chunk")
        self._chunk -= len(data)
        if not self._chunk and _line(self._rfile, "a chunk's end") not in (b"\r\n", b"\n"):
            raise ProtocolError("a chunk is not followed by CRLF")
        return data


def _framing(method: str, status: int, version: str, headers: Headers) -> tuple[int | None, bool, bool]:
    """(Content-Length or None, chunked, keep-alive) of an answer."""
    tokens = {t.strip().lower() for t in (headers.get("Connection") or "").split(",")}
    keep = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)
    if method == "HEAD" or status in (204, 304) or status < 200:
        return 0, False, keep
    encoding = headers.get("Transfer-Encoding")
    if encoding is not None:
        if encoding.rsplit(",", 1)[-1].strip().lower() == "chunked":
            return None, True, keep
        return None, False, False  # another coding last: the body ends with the connection
    length = headers.get("Content-Length")
    if length is None:
        return None, False, False
    values = {v.strip() for v in length.split(",")}
    value = values.pop()
    if values or not value.isdigit():
        raise ProtocolError(f"not a Content-Length: {length[:40]!r}")
    return int(value), False, keep


class Connection:
    """One connection (``sock``: a TCP or TLS socket) carrying one exchange at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._rfile: BinaryIO | None = None

    def send(self, head: bytes, body: bytes | None = None) -> None:
        """Send a request head (and a body given as bytes, in the same write)."""
        self.sock.sendall(head + body if body else head)

    def answer(self, method: str) -> tuple[int, str, Headers, Body]:
        """Read the answer to a ``method`` request: (status, reason, headers, body). Interim 1xx answers are
        skipped. Closed when the server closed the connection before answering; ProtocolError on bytes that are
        not an answer."""
        self.drop_reader()
        rfile = self._rfile = self.sock.makefile("rb")
        while True:
            line = _line(rfile, "a status line")
            if not line:
                raise Closed("the server closed the connection without answering")
            parts = line.decode("latin-1").rstrip("\r\n").split(None, 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or len(parts[1]) != 3 \
                    or not parts[1].isdigit():
                raise ProtocolError(f"not an HTTP/1.x answer: {line[:40]!r}")
            status, headers = int(parts[1]), Headers(_fields(rfile))
            if 100 <= status < 200 and status != 101:
                continue
            length, chunked, keep = _framing(method, status, parts[0], headers)
            return status, parts[2] if len(parts) > 2 else "", headers, Body(rfile, length, chunked, keep)

    def drop_reader(self) -> None:
        """Drop the last answer's reader (and any bytes it had buffered beyond that answer)."""
        if self._rfile is not None:
            self._rfile.close()
            self._rfile = None

    def close(self) -> None:
        """Close the connection."""
        self.drop_reader()
        self.sock.close()
