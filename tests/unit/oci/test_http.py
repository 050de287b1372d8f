"""The registry client's HTTP transport against small loopback servers: pooling, bodies, redirects, proxies."""

from __future__ import annotations

import base64
import contextlib
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from imgbuild.oci._http import NetError, RedirectError, Transport


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _answer(self) -> None:
        server = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server.seen.append((self.command, self.path, dict(self.headers), body, self.client_address[1]))
        status, headers, payload = server.routes.get(urlsplit(self.path).path, (200, {}, b"ok"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        if server.close_after_each:
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _answer


@contextlib.contextmanager
def _server(routes=None, *, close_after_each=False):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.seen, srv.routes, srv.close_after_each = [], routes or {}, close_after_each
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_connections_are_kept_alive_and_one_the_server_closed_is_not_reused():
    with _server() as (srv, base):
        t = Transport()
        for _ in range(3):
            with t.request("GET", f"{base}/a") as r:
                assert r.status_code == 200 and r.read() == b"ok"
        assert len({s[4] for s in srv.seen}) == 1  # one client port: one connection
    with _server(close_after_each=True) as (srv, base):
        t = Transport()
        for _ in range(3):
            assert t.request("GET", f"{base}/a").status_code == 200
        assert len({s[4] for s in srv.seen}) == 3


def test_streamed_body_and_content_lengths():
    with _server() as (srv, base):
        t = Transport(blocksize=7)
        t.request("PUT", f"{base}/empty")
        t.request("PATCH", f"{base}/file", body=_Sized(b"x" * 100))
        r = t.request("GET", f"{base}/s", stream=True)
        assert r.read1(1) == b"o" and r.read() == b"k"
        r.close()
    (_, _, empty, body0, _), (_, _, sized, body1, _), _ = srv.seen
    assert empty["Content-Length"] == "0" and body0 == b""
    assert sized["Content-Length"] == "100" and body1 == b"x" * 100


class _Sized(io.BytesIO):
    def __len__(self) -> int:
        return len(self.getvalue())


def test_redirects_keep_auth_on_the_same_host_only_and_refuse_other_schemes():
    with _server() as (other, other_base), _server({
        "/same": (307, {"Location": "/final"}, b""),
        "/away": (302, {"Location": f"{other_base}/blob"}, b""),
        "/file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
    }) as (srv, base):
        t = Transport()
        auth = {"Authorization": "Bearer secret"}
        assert t.request("GET", f"{base}/same", headers=auth).url == f"{base}/final"
        assert srv.seen[-1][2].get("Authorization") == "Bearer secret"
        assert t.request("GET", f"{base}/away", headers=auth).url == f"{other_base}/blob"
        assert "Authorization" not in other.seen[-1][2]
        with pytest.raises(RedirectError, match="not an http"):
            t.request("GET", f"{base}/file")
        with pytest.raises(RedirectError, match="loop"):
            t.request("GET", f"{base}/loop")
        assert t.request("PUT", f"{base}/same", body=b"x").status_code == 307  # only GET/HEAD follow


def test_http_proxy_from_the_environment_and_no_proxy(monkeypatch):
    with _server() as (proxy, proxy_base), _server() as (origin, origin_base):
        monkeypatch.setenv("http_proxy", proxy_base.replace("http://", "http://bob:p%40ss@"))
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        Transport().request("GET", f"{origin_base}/v2/")
        method, target, headers, _, _ = proxy.seen[-1]
        assert target == f"{origin_base}/v2/" and not origin.seen
        assert headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"bob:p@ss").decode()
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        Transport().request("GET", f"{origin_base}/v2/")
        assert origin.seen and len(proxy.seen) == 1


def test_a_refused_connection_is_a_net_error():
    with _server() as (_, base):
        pass  # closed: nothing listens there now
    with pytest.raises(NetError, match="ConnectionRefused"):
        Transport().request("GET", f"{base}/v2/")


def test_a_body_cut_short_is_a_net_error_not_a_short_read():
    import socket

    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 40)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    r = Transport().request("GET", f"http://127.0.0.1:{srv.getsockname()[1]}/m", stream=True)
    got = b""
    with pytest.raises(NetError, match="60 bytes before the end"):
        while piece := r.read1(1 << 16):
            got += piece
    assert got == b"x" * 40
    srv.close()



def test_authorization_follows_a_redirect_only_to_the_same_origin_or_up_to_https():
    from imgbuild.oci._http import keeps_auth

    assert keeps_auth("https://r:5000/v2/a", "https://r:5000/v2/b")
    assert keeps_auth("http://r:5000/v2/a", "https://r:5000/v2/b")
    assert not keeps_auth("https://r:5000/v2/a", "http://r:5000/v2/b")  # never in clear once it was not
    assert not keeps_auth("https://r:5000/v2/a", "https://s3.example/blob")
    assert not keeps_auth("https://r:5000/v2/a", "https://r:5001/v2/a")


def test_a_chunked_answer_through_the_transport_and_its_connection_reused():
    import socket

    srv = socket.create_server(("127.0.0.1", 0))
    served: list[bytes] = []

    def serve():
        conn, _ = srv.accept()
        for _ in range(2):
            served.append(conn.recv(65536))
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    t = Transport()
    url = f"http://127.0.0.1:{srv.getsockname()[1]}/v2/"
    assert t.request("GET", url).read() == b"abcde"
    assert t.request("GET", url, headers={"Accept": "x"}).read() == b"abcde"  # the same connection, kept
    assert served[0].startswith(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:") and b"Accept: x" in served[1]
    srv.close()


class _Answer:
    def __init__(self, status: int, url: str) -> None:
        self.status_code, self.url, self.headers = status, url, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("registry, answers, base", [
    # a named port where http is allowed: plain http first
    ("127.0.0.1:5000", {"http://127.0.0.1:5000/v2/": _Answer(200, "http://127.0.0.1:5000/v2/")},
     "http://127.0.0.1:5000"),
    # a TLS port refuses plain http with 400: https next
    ("127.0.0.1:5000", {"http://127.0.0.1:5000/v2/": _Answer(400, "http://127.0.0.1:5000/v2/"),
                        "https://127.0.0.1:5000/v2/": _Answer(401, "https://127.0.0.1:5000/v2/")},
     "https://127.0.0.1:5000"),
    # a TLS port that redirects plain http to itself over https (nginx's 497 page): https
    ("127.0.0.1:5000", {"http://127.0.0.1:5000/v2/": _Answer(200, "https://127.0.0.1:5000/v2/")},
     "https://127.0.0.1:5000"),
    # no port: http and https are two ports, https first as docker tries them
    ("localhost", {"https://localhost/v2/": _Answer(200, "https://localhost/v2/")}, "https://localhost"),
])
def test_the_ping_finds_the_scheme(registry, answers, base):
    from imgbuild.oci.registry import RegistryClient

    client = RegistryClient(registry)
    asked: list[str] = []

    def get(url: str):
        asked.append(url)
        return answers[url]

    client._ping_get = get
    assert client.base == base
    assert asked == list(answers)


def test_an_http_answer_other_than_400_is_reported_not_retried_over_https():
    from imgbuild.errors import RegistryError
    from imgbuild.oci.registry import RegistryClient

    client = RegistryClient("127.0.0.1:5000")
    asked: list[str] = []
    client._ping_get = lambda url: asked.append(url) or _Answer(503, url)
    with pytest.raises(RegistryError, match="answered HTTP 503"):
        client.ping()
    assert asked == ["http://127.0.0.1:5000/v2/"]
