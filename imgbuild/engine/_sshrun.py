"""One remote command over an open asyncssh connection: the command line, stdin, output, timeout.

:func:`remote_command` turns an argv (plus env and cwd) into the string sshd
hands to the login shell, and the bytes to send on its stdin before the
command's own input. Env values (``registryPassword`` among them) never appear
in a command line, where ``ps`` and ``/proc/PID/cmdline`` on the host would show
them: the line names the variables only, and the outer shell reads their values
from the first line of stdin (single-quoted assignments, one ``read`` and one
``eval``, shell builtins only, any byte but NUL kept exactly), exports them and
``exec``s the command. For a non-root user that is
``sudo`` (``-S -k -p ''`` with the password as the next line of stdin, or
``-n`` where sudo needs none) with ``--preserve-env=NAMES``, so neither the
password nor a value reaches an argv or sudo's log. :func:`run_process` runs it:
stdin fed from
text, bytes, a file or byte chunks (pulled on a worker thread, so a blocking
producer never stalls the event loop), stdout and stderr read as they come
(whole lines to ``on_line``) and kept apart as bounded tails, the timeout
enforced by signalling the command and closing its channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import threading
from concurrent.futures import Executor as ThreadPool
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Iterator, NamedTuple, Sequence

import asyncssh

from imgbuild.engine.exec import Input, Result
from imgbuild.errors import CommandFailed, InputError

__all__ = ["RemoteCommand", "remote_command", "run_process", "SUDO_NONE", "SUDO_NOPASSWD", "SUDO_PASSWORD",
           "Exited", "ENV_NOT_RECEIVED"]

SUDO_NONE, SUDO_NOPASSWD, SUDO_PASSWORD = "root", "nopasswd", "password"
_KEEP = 4 << 20
_CHUNK = 1 << 20
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ENV_NOT_RECEIVED = 125  # the exit code when stdin ended before every env value was read
_RESERVED = "_ib_"  # the reading shell's own variables start with this: not allowed as env names
# The values come as one line of shell assignments, each value single-quoted with its newlines spelled
# "$_ib_nl": one `read` and one `eval`. The shell reads a pipe a byte per syscall, so it leaves the rest of stdin
# (sudo's password line, the command's input) in place; that costs bash about 0.8 us a byte (1.3 ms for 40
# values of 40 bytes), and a `read` per value would add about 0.06 ms each on top.
_READER = "_ib_nl='\n'; { IFS= read -r _ib_env && eval \"$_ib_env\" && export %s; } || " \
          "{ echo 'imgbuild: the environment did not arrive on stdin' >&2; exit %d; }; "


class RemoteCommand(NamedTuple):
    """A command line for sshd and the bytes that must precede the command's input on its stdin."""

    line: str
    prefix: bytes


def remote_command(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                   sudo: str = SUDO_NONE, password: str | None = None) -> RemoteCommand:
    """How to run ``argv`` in ``cwd`` with ``env`` (through sudo unless ``sudo`` is root): line and stdin prefix.

    The prefix holds the env values, then (``SUDO_PASSWORD``) the sudo ``password`` line; neither is in the line.
    """
    if not argv:
        raise InputError("no command given to run over SSH")
    env = env or {}
    _check_env(env)
    if sudo == SUDO_PASSWORD and password is None:
        raise InputError("sudo needs a password and none was given for the remote command")
    prefix = _env_input(env) + (f"{password}\n".encode() if sudo == SUDO_PASSWORD else b"")
    return RemoteCommand(_env_reader(env) + _run_line(argv, env, cwd, sudo), prefix)


def _check_env(env: dict[str, str]) -> None:
    bad = [k for k in env if not _NAME.match(k) or k.startswith(_RESERVED)]
    if bad:
        raise InputError(f"invalid environment variable name for a remote command: {bad[0]!r}")
    nul = [k for k, v in env.items() if "\0" in v]
    if nul:
        raise InputError(f"environment variable {nul[0]} holds a NUL byte, which no process environment can carry")


def _env_input(env: dict[str, str]) -> bytes:
    """The stdin line that carries ``env``'s values: ``NAME='value' ...`` (newlines as ``"$_ib_nl"``)."""
    if not env:
        return b""
    words = []
    for name, value in env.items():
        raw = value.encode("utf-8", errors="surrogateescape")
        parts = (b"'" + part.replace(b"'", b"'\\''") + b"'" for part in raw.split(b"\n"))
        words.append(name.encode() + b"=" + b'"$_ib_nl"'.join(parts))
    return b" ".join(words) + b"\n"


def _env_reader(env: dict[str, str]) -> str:
    """Shell code that reads ``env``'s values from stdin and exports them; stdin ending early exits 125."""
    return _READER % (" ".join(env), ENV_NOT_RECEIVED) if env else ""


def _run_line(argv: Sequence[str], env: dict[str, str], cwd: str | None, sudo: str) -> str:
    """The part that changes directory and ``exec``s ``argv`` (through sudo, keeping ``env``)."""
    words = [str(a) for a in argv]
    if sudo == SUDO_NONE:
        run = f"exec {shlex.join(words)}"
        return f"cd -- {shlex.quote(cwd)} && {run}" if cwd else run
    flags = ["-S", "-k", "-p", ""] if sudo == SUDO_PASSWORD else ["-n"]
    if env:
        flags.append("--preserve-env=" + ",".join(env))
    if cwd:
        words = ["sh", "-c", f"cd -- {shlex.quote(cwd)} && exec \"$@\"", "sh", *words]
    return f"exec sudo {shlex.join(flags)} -- {shlex.join(words)}"


@dataclass
class _Stream:
    """One output stream: a bounded tail of bytes, and whole lines for ``on_line``."""

    on_line: Callable[[str], None] | None
    parts: list[bytes] = field(default_factory=list)
    kept: int = 0
    partial: bytes = b""

    def add(self, chunk: bytes) -> None:
        """Keep ``chunk`` (dropping the oldest beyond the bound) and pass on the lines it completes."""
        self.parts.append(chunk)
        self.kept += len(chunk)
        while self.kept > 2 * _KEEP and len(self.parts) > 1:
            self.kept -= len(self.parts.pop(0))
        if self.on_line is not None:
            lines = (self.partial + chunk).split(b"\n")
            self.partial = lines.pop()
            for raw in lines:
                self.on_line(raw.decode("utf-8", errors="replace").rstrip("\r"))

    def finish(self) -> str:
        """Pass on a last unterminated line; the kept tail as text."""
        if self.on_line is not None and self.partial:
            self.on_line(self.partial.decode("utf-8", errors="replace").rstrip("\r"))
            self.partial = b""
        return b"".join(self.parts).decode("utf-8", errors="replace")[-_KEEP:]


@dataclass(frozen=True)
class Exited:
    """How the remote command ended: its result, and whether the connection dropped under it."""

    result: Result
    lost: bool = False


async def run_process(conn: asyncssh.SSHClientConnection, command: str, argv: tuple[str, ...], host: str, *,
                      prefix: bytes, input: Input, on_line: Callable[[str], None] | None,
                      timeout: float | None, feeders: ThreadPool) -> Exited:
    """Run ``command`` on ``conn``: feed ``prefix`` + ``input``, stream output, enforce ``timeout``."""
    proc = await conn.create_process(command, encoding=None)
    proc.channel.set_write_buffer_limits(high=_CHUNK * 4, low=_CHUNK * 2)  # keep the link fed across hand-offs
    out, err = _Stream(on_line), _Stream(on_line)
    work = asyncio.gather(_read(proc.stdout, out), _read(proc.stderr, err),
                          _feed(proc.stdin, prefix, input, feeders))
    lost = False
    try:
        async with asyncio.timeout(timeout):
            await work
            await proc.wait_closed()
    except TimeoutError:
        _stop(proc)
        work.cancel()
        result = Result(argv, out.finish(), (err.finish() + f"\ntimed out after {timeout}s").lstrip("\n"), -1, host)
        raise CommandFailed(result, f"command timed out after {timeout}s: {shlex.join(argv)}") from None
    except (asyncssh.DisconnectError, asyncssh.ConnectionLost, ConnectionError):
        lost = True
    except BaseException:
        _stop(proc)
        work.cancel()
        raise
    code = proc.exit_status
    if code is None:
        lost = lost or proc.exit_signal is None
        code = -1
    return Exited(Result(argv, out.finish(), err.finish(), code, host), lost)


def _stop(proc: asyncssh.SSHClientProcess) -> None:
    """Kill the command (sshd signals the session's process) and close its channel."""
    try:
        proc.send_signal("KILL")
    except (OSError, asyncssh.Error, ValueError):
        pass
    proc.close()


async def _read(reader: asyncssh.SSHReader, stream: _Stream) -> None:
    while chunk := await reader.read(1 << 16):
        stream.add(chunk)


async def _feed(writer: asyncssh.SSHWriter, prefix: bytes, data: Input, feeders: ThreadPool) -> None:
    """Write ``prefix`` then ``data`` to the command's stdin and send EOF; a closed stdin ends it quietly."""
    try:
        if prefix:
            writer.write(prefix)
        async for chunk in _chunks(data, feeders):
            writer.write(chunk)
            await writer.drain()
        writer.write_eof()
    except (BrokenPipeError, ConnectionError, asyncssh.Error):
        pass


async def _chunks(data: Input, feeders: ThreadPool) -> AsyncIterator[bytes]:
    """``data`` as byte chunks; files and iterables are read ahead on a worker thread."""
    if data is None:
        return
    if isinstance(data, str):
        data = data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), _CHUNK):
            yield bytes(view[start:start + _CHUNK])
        return
    if hasattr(data, "read"):
        reader = data

        def from_file() -> Iterator[bytes]:
            while chunk := reader.read(_CHUNK):  # type: ignore[union-attr]
                yield chunk

        data = from_file()
    async for chunk in _read_ahead(iter(data), feeders):  # type: ignore[arg-type]
        yield chunk


async def _read_ahead(it: Iterator[bytes], feeders: ThreadPool, depth: int = 4) -> AsyncIterator[bytes]:
    """Chunks of ``it`` pulled on a worker thread up to ``depth`` batches ahead of the writer.

    The producer runs while the channel sends, so the link never waits for a thread hand-off per chunk
    (which costs a scheduler slice each on a loaded machine).
    """
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[tuple[bytes, bool, BaseException | None]] = asyncio.Queue()
    room = threading.Semaphore(depth)
    stop = threading.Event()

    def hand(item: tuple[bytes, bool, BaseException | None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is reading any more
            loop.call_soon_threadsafe(ready.put_nowait, item)

    def produce() -> None:
        try:
            ended = False
            while not ended and not stop.is_set():
                room.acquire()
                if stop.is_set():
                    return
                chunk, ended = _pull(it)
                hand((chunk, ended, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the writer, which raises it
            hand((b"", True, exc))

    loop.run_in_executor(feeders, produce)
    try:
        while True:
            chunk, ended, exc = await ready.get()
            room.release()
            if exc is not None:
                raise exc
            if chunk:
                yield chunk
            if ended:
                return
    finally:
        stop.set()
        room.release()


def _pull(it: Iterator[bytes]) -> tuple[bytes, bool]:
    """Up to about a quarter of a chunk from ``it`` (small pieces batched: one thread hop each); True at its end."""
    parts: list[bytes] = []
    size = 0
    while size < _CHUNK // 4:
        piece = next(it, None)
        if piece is None:
            return b"".join(parts), True
        parts.append(piece)
        size += len(piece)
    return (parts[0] if len(parts) == 1 else b"".join(parts)), False
