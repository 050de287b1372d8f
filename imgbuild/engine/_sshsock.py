"""A TCP connector for asyncssh that hands the socket one write per loop turn instead of one per SSH packet.

asyncssh writes every SSH packet (at most 32 KiB: sshd's limit for session
channels) to its transport separately, and asyncio's transport sends each one
at once: a bulk stream costs a ``send`` system call, and the kernel a TCP
segment, per packet. :class:`CoalescingConnector` is passed to asyncssh as its
``tunnel`` (any object with ``create_connection(factory, host, port)``): it
opens the TCP connection itself and gives asyncssh a transport that gathers
the writes of one event-loop turn and passes them on joined, so a window's
worth of packets leaves in one call. Order and flow control are unchanged (the
real transport still pauses the protocol when its buffer is full).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

__all__ = ["CoalescingConnector"]


class _Transport(asyncio.Transport):
    """The real transport, with writes gathered until the loop's next turn."""

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._inner, self._loop = inner, loop
        self._pending: list[bytes] = []

    def write(self, data: Any) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if self._pending and not self._inner.is_closing():
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._inner.write(data)
        self._pending.clear()

    def write_eof(self) -> None:
        self._flush()
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def close(self) -> None:
        self._flush()
        self._inner.close()

    def abort(self) -> None:
        self._pending.clear()
        self._inner.abort()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + sum(len(d) for d in self._pending)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()


class _Protocol(asyncio.Protocol):
    """Passes every event to asyncssh's connection, which sees the gathering transport."""

    def __init__(self, inner: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.inner, self._loop = inner, loop

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(_Transport(transport, self._loop))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class CoalescingConnector:
    """An asyncssh ``tunnel``: a plain TCP connection whose writes are gathered per loop turn."""

    async def create_connection(self, session_factory: Callable[[], Any], remote_host: str,
                                remote_port: int) -> tuple[asyncio.BaseTransport, Any]:
        """Connect to ``remote_host``:``remote_port`` and attach asyncssh's connection object."""
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_connection(lambda: _Protocol(session_factory(), loop),
                                                        remote_host, remote_port)
        return transport, proto.inner
