"""A small fault-injecting TCP proxy between a client and a registry, for resilience tests.

It forwards 127.0.0.1:<port> to the upstream registry, one thread pair per connection,
and can (a) answer the first ``fail_first`` requests with ``503 Service Unavailable``,
(b) cut the first ``cut_responses`` connections whose response carries more than
``cut_after`` body bytes once that many have passed (a download dropped mid-blob), and
(c) cut the first ``cut_requests`` connections whose request carries more than
``cut_after`` body bytes (an upload dropped mid-blob). Faults are bounded counts, so a
retrying client always gets through; the proxy stops with :meth:`stop` (or ``with``).
HTTP parsing is just enough for this: request/status line and Content-Length.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from dataclasses import dataclass, field

__all__ = ["FaultProxy"]

_503 = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 0\r\n"
        b"Connection: close\r\n\r\n")


@dataclass
class FaultProxy:
    """Forward to ``upstream`` (``host:port``) with bounded injected faults; counters tell what happened."""

    upstream: str
    fail_first: int = 0
    cut_responses: int = 0
    cut_requests: int = 0
    cut_after: int = 1 << 20
    served_503: int = 0
    cut_down: int = 0
    cut_up: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list = field(default_factory=list)

    def start(self) -> "FaultProxy":
        """Listen on a free 127.0.0.1 port and start accepting."""
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(64)
        self._srv.settimeout(0.2)
        self.host = f"127.0.0.1:{self._srv.getsockname()[1]}"
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop accepting and close the listener (open connections end on their own)."""
        self._stop.set()
        self._srv.close()
        for t in self._threads[:1]:
            t.join(5)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take(self, counter: str, limit: str) -> bool:
        """Atomically use up one fault of a kind; False when none is left."""
        with self._lock:
            if getattr(self, counter) < getattr(self, limit):
                setattr(self, counter, getattr(self, counter) + 1)
                return True
            return False

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._srv.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        host, port = self.upstream.rsplit(":", 1)
        try:
            upstream = socket.create_connection((host, int(port)), timeout=30)
        except OSError:
            client.close()
            return
        client.settimeout(60)
        done = threading.Event()
        methods: deque[bytes] = deque()
        threading.Thread(target=self._pump, args=(client, upstream, "up", done, methods), daemon=True).start()
        self._pump(upstream, client, "down", done, methods)

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str, done: threading.Event,
              methods: deque) -> None:
        """Copy ``src`` to ``dst``, watching HTTP messages to inject faults; close both at the end."""
        buf = b""
        body_left = 0   # bytes of the current message body still to pass
        body_seen = 0
        cutting = raw = False
        try:
            while not done.is_set():
                data = src.recv(1 << 16)
                if not data:
                    break
                if raw or (not buf and body_left == 0 and data[:1] == b"\x16"):
                    raw = True  # TLS or anything not HTTP: pass it through untouched
                    dst.sendall(data)
                    continue
                if body_left == 0:
                    buf += data
                    head, sep, rest = buf.partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    buf = b""
                    if direction == "up" and self._take("served_503", "fail_first"):
                        src.sendall(_503)
                        break
                    length = _content_length(head)
                    if direction == "up":
                        methods.append(head.split(b" ", 1)[0])
                    elif (methods.popleft() if methods else b"") == b"HEAD" or head[9:12] in (b"204", b"304"):
                        length = 0
                    cutting = length > self.cut_after and self._take(
                        "cut_up" if direction == "up" else "cut_down",
                        "cut_requests" if direction == "up" else "cut_responses")
                    dst.sendall(head + sep)
                    body_left, body_seen, data = length, 0, rest
                if data:
                    if cutting and body_seen + len(data) > self.cut_after:
                        dst.sendall(data[: self.cut_after - body_seen])
                        break
                    dst.sendall(data)
                    body_seen += len(data)
                    body_left = max(0, body_left - len(data))
        except OSError:
            pass
        finally:
            done.set()
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return 0
    return 0
