"""The transport's HTTP/1.1 wire code on a socket pair: answers' framing, keep-alive, and what it refuses."""

from __future__ import annotations

import socket

import pytest

from imgbuild.oci._h11 import Closed, Connection, ProtocolError, request_head


def _answer(raw: bytes, method: str = "GET", *, close: bool = True):
    """(status, reason, headers, body) of ``raw`` sent by a peer that then closes (or not) its end."""
    ours, peer = socket.socketpair()
    peer.sendall(raw)
    if close:
        peer.close()
    return Connection(ours).answer(method)


def test_a_chunked_body_with_extensions_and_trailers_and_the_connection_kept():
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 999\r\n\r\n"
           b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n")
    status, reason, _, body = _answer(raw)
    assert (status, reason) == (200, "OK")
    assert body.read1(3) == b"hel" and body.read() == b"lo, world"
    assert body.done and body.keep and body.read1(10) == b""


def test_content_length_body_interim_answers_skipped_and_no_body_for_head_204_304():
    status, _, headers, body = _answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                                       b"Content-Length: 3\r\nLocation: /x\r\n\r\nabc")
    assert status == 201 and headers.get("location") == "/x" and body.read() == b"abc" and body.keep
    for raw, method in ((b"HTTP/1.1 200 OK\r\nContent-Length: 120000000\r\n\r\n", "HEAD"),
                        (b"HTTP/1.1 204 No Content\r\n\r\n", "PUT"),
                        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "GET")):
        _, _, _, body = _answer(raw, method, close=False)
        assert body.done and body.keep and body.read() == b""


def test_keep_alive_rules_and_a_body_up_to_the_close():
    _, _, _, body = _answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
    assert body.read() == b"ok" and not body.keep
    _, _, _, body = _answer(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert not body.keep
    _, _, _, body = _answer(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok")
    assert body.keep
    _, _, _, body = _answer(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
    assert body.read1(5) == b"until" and body.read() == b" the end" and body.done and not body.keep


def test_header_fields_folded_repeated_and_in_any_case():
    _, _, headers, _ = _answer(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"a\",\r\n"
                               b"  service=\"b\"\r\nwww-authenticate: Basic\r\nContent-Length: 0\r\n\r\n")
    assert headers.get("Www-Authenticate") == 'Bearer realm="a", service="b"'
    assert "WWW-AUTHENTICATE" in headers and headers.get("Docker-Content-Digest", "-") == "-"
    _, _, headers, _ = _answer(b"HTTP/1.1 200 OK\r\nLocation : /v2/x\r\nContent-Length: 0\r\n\r\n")
    assert headers["location"] == "/v2/x"  # space before the colon, read as http.client reads it


@pytest.mark.parametrize("raw, match", [
    (b"", None),
    (b"\x15\x03\x01\x00\x02\x02\x46", "not an HTTP/1.x answer"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP/1.x answer"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "not a header field"),
    (b"HTTP/1.1 200 OK\r\n : empty name\r\n\r\n", "continuation line"),
    (b"HTTP/1.1 200 OK\r\nX: 1\r\n: empty name\r\n\r\n", "not a header field"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5", "inside the answer's header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "not a Content-Length"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100"),
])
def test_what_is_not_an_answer_is_refused(raw, match):
    if match is None:
        with pytest.raises(Closed):
            _answer(raw)
        return
    with pytest.raises(ProtocolError, match=match):
        _answer(raw)


@pytest.mark.parametrize("raw, match", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "7 bytes before the end of the body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not a chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n5\r\nhello", "not a chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "3 bytes before the end of a chunk"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY", "not followed by CRLF"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", "inside a chunked body"),
])
def test_a_body_cut_or_misframed_is_an_error_not_a_short_read(raw, match):
    _, _, _, body = _answer(raw)
    with pytest.raises(ProtocolError, match=match):
        body.read()


def test_a_request_that_would_break_the_message_is_refused_before_sending():
    head = request_head("PUT", "/v2/a/blobs/uploads/x?digest=sha256%3Aab", "r:5000", {"Content-Length": "0"})
    assert head == b"PUT /v2/a/blobs/uploads/x?digest=sha256%3Aab HTTP/1.1\r\nHost: r:5000\r\nContent-Length: 0\r\n\r\n"
    for args in (("GET", "/x HTTP/1.1\r\nEvil: 1", "r", {}), ("GET", "/x", "r", {"A": "b\r\nEvil: 1"}),
                 ("GET", "/x", "r", {"A\r\nB": "c"}), ("G T", "/x", "r", {}), ("GET", "/x", "r\n", {})):
        with pytest.raises(ValueError, match="refusing to send"):
            request_head(*args)


def test_the_host_header_names_the_port_unless_it_is_the_scheme_default():
    from imgbuild.oci._http import _Route

    assert _Route("http", "r", 80).host_header == "r" and _Route("https", "r", 443).host_header == "r"
    assert _Route("https", "r", 5000).host_header == "r:5000"
    assert _Route("http", "::1", 5000).host_header == "[::1]:5000"
