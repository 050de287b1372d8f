"""A loopback TCP forwarder that adds a fixed one-way delay, to emulate a link's propagation delay.

This machine's kernel has no netem (``tc qdisc ... netem`` says "unknown
qdisc"), and sandbox hosts sit on a veth switch with no latency at all, where a
protocol's round trips cost nothing. :class:`DelayProxy` listens on
``127.0.0.1:<free port>`` and forwards every connection to one upstream address
(a sandbox host's sshd); each chunk read in either direction is written on at
its arrival time plus ``one_way_delay``, in order. Chunks are queued, not sent
one at a time, so a stream keeps flowing at full rate while a request that waits
for its answer pays the round trip, as on a long link. A new connection also
waits one round trip before the upstream connect (TCP's handshake). There is no
loss and no bandwidth cap; at most ``max_in_flight`` bytes wait per direction
(then that side is not read until they drain, so TCP's back-pressure still
reaches the sender).

Each connection is one thread waiting in ``select`` for bytes to read or for
the next chunk's due time: ``select`` keeps microseconds, where an asyncio
loop's timers (epoll) round up to whole milliseconds. :func:`probe_rtt`
and :func:`probe_rate` measure the forwarder itself on loopback against a
direct connection; ``python -m bench._latency`` prints both.
:func:`proxy_process` runs one in a child process, so a benchmark's own Python
work (imgbuild's tar stream is made in Python) does not compete with it for the
GIL.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Callable, Iterator

__all__ = ["DelayProxy", "proxy_process", "probe_rtt", "probe_rate"]

_CHUNK = 256 << 10
_PR_SET_TIMERSLACK = 29


class _Direction:
    """One direction of a connection: chunks read from ``src``, stamped due, and written to ``dst`` in order."""

    def __init__(self, src: socket.socket, dst: socket.socket, delay: float, max_in_flight: int) -> None:
        self.src, self.dst, self.delay, self.max_in_flight = src, dst, delay, max_in_flight
        self.queue: collections.deque[tuple[float, memoryview]] = collections.deque()
        self.queued = 0
        self.eof = False
        self.full = False  # dst took less than offered: wait until it can take more
        self.shut = False

    def reading(self) -> bool:
        """True while ``src`` may be read: not at its end, and not ``max_in_flight`` bytes waiting."""
        return not self.eof and self.queued < self.max_in_flight

    def next_due(self) -> float | None:
        """When the head chunk is due, or None when nothing waits for time (empty, or ``dst`` full)."""
        return self.queue[0][0] if self.queue and not self.full else None

    def read(self) -> None:
        """Read what ``src`` has (it is readable) and stamp it due ``delay`` from now."""
        data = self.src.recv(_CHUNK)
        if data:
            self.queue.append((time.perf_counter() + self.delay, memoryview(data)))
            self.queued += len(data)
        else:
            self.eof = True

    def send_due(self, now: float) -> None:
        """Send every chunk due by ``now``, without blocking; shut ``dst`` for writing after the last one."""
        while not self.full and self.queue and self.queue[0][0] <= now:
            due, data = self.queue[0]
            try:
                sent = self.dst.send(data)
            except BlockingIOError:
                sent = 0
            self.queued -= sent
            if sent < len(data):
                self.queue[0] = (due, data[sent:])
                self.full = True
            else:
                self.queue.popleft()
        if self.eof and not self.queue and not self.shut:
            self.dst.shutdown(socket.SHUT_WR)
            self.shut = True


def _exact_timers() -> None:
    """Ask Linux to wake this thread's timed waits on time (its default timer slack is 50 us per wait)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)  # 1 ns; a failure just leaves the default slack


class _Connection:
    """A client socket joined to its upstream socket, both directions delayed, served by one thread.

    One thread per connection (not per direction): a reply read right after a
    send never waits for the other direction's thread to let go of the GIL. It
    sends what is due, then waits in ``select`` for whichever comes first:
    bytes to read, the earliest due time (``select`` keeps microseconds), or
    room in a socket that was full. A timed wait ends early by the average
    lateness of the past ones (a busy machine wakes a sleeper 0.05-0.1 ms
    late), so chunks leave on time on average rather than always late.
    """

    def __init__(self, client: socket.socket, upstream: socket.socket, delay: float, max_in_flight: int) -> None:
        self.socks = (client, upstream)
        self.dirs = (_Direction(client, upstream, delay, max_in_flight),
                     _Direction(upstream, client, delay, max_in_flight))
        self.dead = False
        self.lateness = 0.0  # how late a timed select wakes, on average: timed waits end this much early

    def run(self) -> None:
        """Forward until both directions end (EOF each way, or an error), then close both sockets."""
        _exact_timers()
        for s in self.socks:
            s.setblocking(False)
        try:
            while True:
                now = time.perf_counter() + self.lateness  # what is due by the time a timed wait would end
                for d in self.dirs:
                    d.send_due(now)
                if self.dead or all(d.shut for d in self.dirs):
                    return
                self._wait()
        except OSError:
            pass
        finally:
            for s in self.socks:
                s.close()

    def _wait(self) -> None:
        dues = [due for d in self.dirs if (due := d.next_due()) is not None]
        wake = min(dues) - self.lateness if dues else None
        timeout = None if wake is None else max(0.0, wake - time.perf_counter())
        readable, writable, _ = select.select([d.src for d in self.dirs if d.reading()],
                                              [d.dst for d in self.dirs if d.full], [], timeout)
        if wake is not None and not readable and not writable:  # woken by the clock: learn how late
            late = min(time.perf_counter() - wake, self.dirs[0].delay / 2)
            self.lateness = 0.9 * self.lateness + 0.1 * late
        for d in self.dirs:
            if d.dst in writable:
                d.full = False
            if d.src in readable:
                d.read()

    def abort(self) -> None:
        """Tear the connection down from another thread: both sockets shut, so its ``select`` wakes."""
        self.dead = True
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class DelayProxy:
    """Listen on 127.0.0.1:``port`` and forward each connection to ``upstream`` with ``one_way_delay`` s each way."""

    def __init__(self, upstream: tuple[str, int], one_way_delay: float, *, max_in_flight: int = 16 << 20) -> None:
        self.upstream = upstream
        self.one_way_delay = one_way_delay
        self.max_in_flight = max_in_flight
        self.connections = 0
        self._live: set[_Connection] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # the accept loop checks for close() this often
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True, name=f"delay-proxy-{self.port}")
        self._acceptor.start()

    def close(self) -> None:
        """Stop listening and tear down every live connection."""
        self._closed = True
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            live = list(self._live)
        for conn in live:
            conn.abort()

    def __enter__(self) -> "DelayProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        client.setblocking(True)
        time.sleep(2 * self.one_way_delay)  # the SYN / SYN-ACK round trip of a real link
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait on top of the delay
        conn = _Connection(client, upstream, self.one_way_delay, self.max_in_flight)
        with self._lock:
            self._live.add(conn)
        try:
            conn.run()
        finally:
            with self._lock:
                self._live.discard(conn)


@contextlib.contextmanager
def proxy_process(upstream: tuple[str, int], one_way_delay: float) -> Iterator[int]:
    """A DelayProxy in a child process (sharing no GIL with the caller's own Python work); yields its port.

    The child serves until its stdin closes, so it also ends when the caller dies;
    it ignores Ctrl-C, which the caller's exit from this block answers.
    """
    host, port = upstream
    proc = subprocess.Popen([sys.executable, __file__, "serve", host, str(port), repr(one_way_delay)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        said = proc.stdout.readline().strip() if proc.stdout else ""
        if not said.isdigit():
            raise RuntimeError(f"the delay proxy to {host}:{port} did not start (it said {said!r})")
        yield int(said)
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serve_until_stdin_closes(host: str, port: int, one_way_delay: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with DelayProxy((host, port), one_way_delay) as proxy:
        print(proxy.port, flush=True)
        sys.stdin.read()


def _serve_once(handler: Callable[[socket.socket], None]) -> tuple[socket.socket, threading.Thread]:
    """A loopback listener whose first connection is handed to ``handler`` on a thread."""
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        conn, _ = listener.accept()
        with conn:
            handler(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return listener, thread


def _echo(conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while data := conn.recv(4096):
        conn.sendall(data)


def _sink(conn: socket.socket) -> None:
    while conn.recv(_CHUNK):
        pass
    conn.sendall(b"k")


def _via(listener: socket.socket, one_way_delay: float | None) -> contextlib.AbstractContextManager[int]:
    """The port to connect to: a DelayProxy's in front of ``listener``, or ``listener``'s own for None."""
    if one_way_delay is None:
        return contextlib.nullcontext(listener.getsockname()[1])
    return proxy_process(listener.getsockname()[:2], one_way_delay)


def probe_rtt(one_way_delay: float | None, pings: int = 200) -> float:
    """The median round trip, in seconds, of a 64-byte ping to a loopback echo server (None: without a proxy)."""
    listener, thread = _serve_once(_echo)
    with listener, _via(listener, one_way_delay) as port:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            took = []
            for _ in range(pings):
                start = time.perf_counter()
                s.sendall(b"x" * 64)
                got = 0
                while got < 64:
                    got += len(s.recv(64 - got))
                took.append(time.perf_counter() - start)
        thread.join(timeout=5)
    return statistics.median(took)


def probe_rate(one_way_delay: float | None, total: int = 1 << 30) -> tuple[float, float]:
    """One ``total``-byte stream to a loopback sink (None: no proxy): bytes per second, forwarder CPU s per GB.

    The CPU time is the forwarder process's own (user + system, read when it
    has been waited for), so it holds on a busy machine where the rate does not.
    """
    listener, thread = _serve_once(_sink)
    block = b"\0" * (1 << 20)
    before = _children_cpu()
    with listener, _via(listener, one_way_delay) as port:
        with socket.create_connection(("127.0.0.1", port)) as s:
            start = time.perf_counter()
            for _ in range(total // len(block)):
                s.sendall(block)
            s.shutdown(socket.SHUT_WR)
            s.recv(1)
            took = time.perf_counter() - start
        thread.join(timeout=5)
    return total / took, (_children_cpu() - before) / (total / 1e9)


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _probe_all() -> None:
    for rtt_ms in (None, 0.0, 0.5, 2.0):
        d = None if rtt_ms is None else rtt_ms / 2000
        label = "direct (no proxy)" if rtt_ms is None else f"proxy, RTT {rtt_ms:.1f} ms"
        rate, cpu = probe_rate(d)
        print(f"{label:<20} ping {probe_rtt(d) * 1e3:6.3f} ms, 1 GiB stream {rate / 1e6:6.0f} MB/s"
              + ("" if d is None else f", forwarder CPU {cpu:.2f} s/GB"), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        _serve_until_stdin_closes(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        _probe_all()
