"""The registry client's HTTP/1.1 transport, on sockets (the wire format is :mod:`imgbuild.oci._h11`'s).

What the distribution API needs and no more: pooled keep-alive connections per
host (at most ``pool_size`` idle ones kept, each used by one thread at a time, a
pooled connection the server closed is dropped before use), verified TLS with one
:class:`ssl.SSLContext` per transport (made on the first https connection), a
request body sent from ``bytes`` or a sized file-like in ``blocksize`` writes,
a response read whole or streamed (``read1``), GET/HEAD redirects followed
within http(s) (the ``Authorization`` header is not sent to another host, nor from https to http), and
proxies from the environment (``https_proxy``, ``http_proxy``, ``no_proxy``) as
curl and requests read them. Nothing here retries or authenticates: the registry
client does that, on the errors below.

Why not requests: a CLI push spent ~0.1 s of its start-up importing requests and
urllib3, about what skopeo's whole run adds to the upload, and requests loaded
its CA bundle again for every new connection. Why not ``http.client``: it imports
the email package and ssl (15-20 ms of a push's CPU); here ssl is imported for https only.

Errors: :class:`NetError` for anything that cut or stalled the exchange
(:class:`Timeout` when the peer sent nothing for the timeout, :class:`TLSError`
for a failed handshake, with ``verify_failed`` for an untrusted certificate),
:class:`RedirectError` for a redirect that is not followed.
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import unquote, urljoin, urlsplit

from imgbuild.oci._h11 import Body, Closed, Connection, Headers, ProtocolError, request_head

if TYPE_CHECKING:
    import ssl

__all__ = ["Transport", "Response", "NetError", "Timeout", "TLSError", "RedirectError", "system_context",
           "keeps_auth"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 30


class NetError(Exception):
    """The connection failed, dropped or stalled before the exchange completed."""


class Timeout(NetError):
    """The peer sent nothing (or took no data) for the timeout."""


class TLSError(NetError):
    """The TLS handshake failed; ``verify_failed`` when the peer's certificate was not trusted."""

    def __init__(self, message: str, verify_failed: bool) -> None:
        super().__init__(message)
        self.verify_failed = verify_failed


class RedirectError(Exception):
    """A redirect that is not followed: off http(s), or more than ``MAX_REDIRECTS`` in a row."""

    def __init__(self, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


def _net_error(exc: BaseException) -> NetError:
    """``exc`` (an OSError, ssl or wire error) as a NetError that keeps it as its cause."""
    ssl = sys.modules.get("ssl")  # not imported: no TLS was spoken, so no TLS error
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return TLSError(f"certificate not trusted: {exc.verify_message or exc}", True)
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return TLSError(f"TLS failed: {exc.reason or exc}", False)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return Timeout("timed out")
    if isinstance(exc, ProtocolError):
        return NetError(str(exc))
    return NetError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


_ERRORS = (OSError, ProtocolError, ValueError)  # ValueError: a request that would break the message


def system_context() -> ssl.SSLContext:
    """A verifying context with the system's CAs (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured), or certifi's
    bundle on a system that has none."""
    import ssl

    ctx = ssl.create_default_context()
    if not ctx.cert_store_stats()["x509_ca"] and not os.environ.get("SSL_CERT_DIR"):
        try:
            import certifi
        except ImportError:
            return ctx
        ctx.load_verify_locations(cafile=certifi.where())
    return ctx


class Response:
    """One answer: ``status_code``, ``headers`` (case-insensitive ``get``), the body by ``read``/``read1``/``json``.

    Closing it (or a ``with`` block) hands a fully read keep-alive connection back to the pool and closes any
    other. A response that was not asked to stream is read whole before it is returned.
    """

    def __init__(self, status: int, headers: Headers, body: Body, conn: Connection, url: str, release) -> None:
        self._body, self._conn, self._release = body, conn, release
        self.status_code = status
        self.headers = headers
        self.url = url
        self._content: bytes | None = None

    def read1(self, n: int) -> bytes:
        """At most ``n`` bytes of the body as they arrive (b"" at its end)."""
        if self._content is not None:
            out, self._content = self._content[:n], self._content[n:]
            return out
        return self._reading(self._body.read1, max(1, n))

    def read(self) -> bytes:
        """The rest of the body."""
        if self._content is not None:
            out, self._content = self._content, b""
            return out
        return self._reading(self._body.read)

    def _reading(self, read, *args) -> bytes:
        try:
            return read(*args)
        except _ERRORS as exc:
            self._drop()
            raise _net_error(exc) from exc

    def json(self) -> Any:
        """The body parsed as JSON (ValueError if it is not)."""
        return json.loads(self.read() or b"null")

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Give the connection back when the body was read to its end and the server keeps it open."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._body.done and self._body.keep:
            self._release(conn)
        else:
            conn.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Route:
    """Where a request to an origin goes: straight there, or through a proxy (CONNECT for https)."""

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        name = f"[{host}]" if ":" in host else host
        self.host_header = name if port == (443 if scheme == "https" else 80) else f"{name}:{port}"
        self.proxy: tuple[str, int, dict[str, str]] | None = _proxy_for(scheme, host, port)


def _proxy_for(scheme: str, host: str, port: int) -> tuple[str, int, dict[str, str]] | None:
    """The proxy the environment names for this origin (host, port, headers), or None."""
    if not any(k.lower().endswith("_proxy") for k in os.environ):
        return None
    import urllib.request  # only when some *_proxy variable is set: it costs start-up time

    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme) or proxies.get("all")
    if not url or urllib.request.proxy_bypass_environment(f"{host}:{port}", proxies) \
            or urllib.request.proxy_bypass_environment(host, proxies):
        return None
    if "://" not in url:
        url = f"http://{url}"
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise NetError(f"proxy {parts.scheme}://{parts.hostname}: only http:// proxies are supported")
    headers = {}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(pair).decode()
    return parts.hostname or "", parts.port or 80, headers


def keeps_auth(url: str, target: str) -> bool:
    """Whether a redirect from ``url`` to ``target`` may carry the Authorization header: same host and port, and
    not from https down to http (a token is not sent to others, nor in clear once it was not)."""
    old, new = urlsplit(url), urlsplit(target)
    return new.netloc == old.netloc and not (old.scheme == "https" and new.scheme != "https")


class Transport:
    """Pooled HTTP/1.1 connections for one client (thread-safe)."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, verify: bool = True, pool_size: int = 10,
                 blocksize: int = 1 << 20, connect_timeout: float = 10.0) -> None:
        self.verify, self.pool_size, self.blocksize, self.connect_timeout = verify, pool_size, blocksize, \
            connect_timeout
        self._ctx = ssl_context
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._routes: dict[tuple[str, str, int], _Route] = {}
        self._lock = threading.Lock()

    def context(self) -> ssl.SSLContext:
        """The TLS context: the one given, the system's CAs, or (verify off) one that checks nothing."""
        with self._lock:
            if self._ctx is None:
                if self.verify:
                    self._ctx = system_context()
                else:
                    import ssl

                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                    self._ctx = ctx
            return self._ctx

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None, body: object = None,
                timeout: float = 60.0, stream: bool = False) -> Response:
        """Send one request; follow GET/HEAD redirects. NetError/RedirectError on failure, any status returned."""
        hdrs = dict(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            r = self._exchange(method, url, hdrs, body, timeout)
            location = r.headers.get("Location")
            if method not in ("GET", "HEAD") or r.status_code not in _REDIRECTS or not location:
                if not stream:
                    self._read_whole(r)
                return r
            self._discard(r)
            target = urljoin(url, location)
            if urlsplit(target).scheme not in ("http", "https"):
                raise RedirectError(f"redirected to {target!r}, which is not an http(s) URL", target)
            if not keeps_auth(url, target):
                hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
            url = target
        raise RedirectError(f"redirected in a loop (more than {MAX_REDIRECTS} redirects)", url)

    @staticmethod
    def _read_whole(r: Response) -> None:
        r._content = r.read()
        r.close()

    @staticmethod
    def _discard(r: Response) -> None:
        """A redirect's body: read if small (the connection is kept), else the connection is closed."""
        length = r.headers.get("Content-Length", "")
        if length.isdigit() and int(length) <= 64 << 10:
            try:
                r.read()
            except NetError:
                pass
        r.close()

    def _exchange(self, method: str, url: str, headers: dict[str, str], body: object, timeout: float) -> Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RedirectError(f"not an http(s) URL: {url!r}", url)
        key = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        route = self._route(key)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if route.proxy and route.scheme == "http":
            target = url  # a plain-http request through a proxy names the whole URL
        replayable = body is None or isinstance(body, (bytes, bytearray, str))
        for attempt in (0, 1):
            conn, reused = self._take(key, route)
            try:
                conn.sock.settimeout(timeout)
                self._send(conn, method, target, headers, body, route)
                status, _, fields, content = conn.answer(method)
            except _ERRORS as exc:
                conn.close()
                # a kept-alive connection the server had just closed: once more on a new one when it is safe
                if reused and attempt == 0 and replayable and isinstance(exc, (Closed, ConnectionResetError,
                                                                               BrokenPipeError)):
                    continue
                raise _net_error(exc) from exc
            return Response(status, fields, content, conn, url, lambda c, k=key: self._give_back(k, c))
        raise AssertionError("unreachable")

    def _send(self, conn: Connection, method: str, target: str, headers: dict[str, str], body: object,
              route: _Route) -> None:
        lower = {k.lower() for k in headers}
        fields = dict(route.proxy[2]) if route.proxy and route.scheme == "http" else {}
        if isinstance(body, str):
            body = body.encode()
        if "content-length" not in lower and (body is not None or method in ("POST", "PUT", "PATCH")):
            fields["Content-Length"] = str(0 if body is None else len(body))  # type: ignore[arg-type]
        fields.update(headers)
        head = request_head(method, target, route.host_header, fields)
        if body is None or isinstance(body, (bytes, bytearray)):
            conn.send(head, body)
            return
        conn.send(head)
        while chunk := body.read(self.blocksize):  # type: ignore[attr-defined]
            conn.sock.sendall(chunk)

    def _route(self, key: tuple[str, str, int]) -> _Route:
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = _Route(*key)
        return route

    def _take(self, key: tuple[str, str, int], route: _Route) -> tuple[Connection, bool]:
        """An idle connection to ``key`` that the server has not closed, or a new one: (connection, reused)."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return self._connect(route), False
            if conn.sock is not None and not _readable(conn.sock):
                return conn, True
            conn.close()  # closed by the server (or it sent something unasked): not reusable

    def _give_back(self, key: tuple[str, str, int], conn: Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.pool_size:
                idle.append(conn)
                return
        conn.close()

    def _connect(self, route: _Route) -> Connection:
        host, port = (route.proxy[0], route.proxy[1]) if route.proxy else (route.host, route.port)
        sock = None
        try:
            # getaddrinfo encodes a str host with the idna codec, importing it and unicodedata: ASCII goes as bytes
            sock = socket.create_connection((host.encode() if host.isascii() else host, port),
                                            timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if route.scheme == "https":
                if route.proxy:
                    _tunnel(sock, route)
                sock = self.context().wrap_socket(sock, server_hostname=route.host)
        except _ERRORS as exc:
            if sock is not None:
                sock.close()
            raise _net_error(exc) from exc
        return Connection(sock)


def _tunnel(sock: socket.socket, route: _Route) -> None:
    """Ask the proxy on ``sock`` for a tunnel to the origin (CONNECT); NetError if it will not open one."""
    assert route.proxy is not None
    origin = f"[{route.host}]:{route.port}" if ":" in route.host else f"{route.host}:{route.port}"
    conn = Connection(sock)
    conn.send(request_head("CONNECT", origin, origin, route.proxy[2]))
    status, reason, _, _ = conn.answer("CONNECT")
    conn.drop_reader()  # nothing comes after the answer until the TLS handshake starts
    if not 200 <= status < 300:
        raise NetError(f"the proxy at {route.proxy[0]}:{route.proxy[1]} refused a tunnel to {origin}: "
                       f"HTTP {status} {reason}".rstrip())


def _readable(sock: socket.socket) -> bool:
    """True when an idle socket has something to read: the server closed it (EOF) or broke protocol."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True
