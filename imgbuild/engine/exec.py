"""One seam for running commands: on this machine, over SSH, or canned in unit tests.

Every command imgbuild starts (buildah, skopeo, the registry, mount, a host's
lifecycle script) goes through an :class:`Executor`. Callers receive the
executor as an argument, as invoke passes its context: nothing below the CLI
reaches for a module-level one. An executor names its ``host``, runs an argv
(``run``) and sends a local file tree to a directory on its host
(``send_tree``). A command's outcome is a :class:`Result`; ``check=True``
turns a non-zero exit into :class:`~imgbuild.errors.CommandFailed`, which
carries that result as evidence (host, command, exit code, output tail).

``input`` may be text, bytes, a binary file object or an iterable of byte
chunks (a tar stream, say): it is fed to the command's stdin on a thread, so a
large stream never sits in memory whole. ``on_line`` receives each output line
(stdout and stderr interleaved as they come) while ``stdout`` and ``stderr``
are still returned separately. ``timeout`` is enforced in every mode.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Protocol, Sequence, Union

from imgbuild.errors import CommandFailed, ToolMissing

__all__ = [
    "Result", "Call", "Executor", "LocalExecutor", "FakeExecutor", "Input", "which", "require_tool",
    "tar_stream",
]

Input = Union[str, bytes, IO[bytes], Iterable[bytes], None]
"""What a command may read on stdin: text, bytes, a binary file or an iterable of byte chunks."""

_KEEP = 4 << 20  # at most this many characters of each stream are kept in a Result (the tail)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Result:
    """What a command did: its argv, captured output, exit code and the host it ran on."""

    command: tuple[str, ...]
    stdout: str
    stderr: str
    exit_code: int
    host: str = "localhost"

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.exit_code == 0

    def command_line(self) -> str:
        """The command as a shell would show it."""
        return shlex.join(self.command)

    def tail(self, lines: int = 5) -> str:
        """The last lines of stderr (or stdout when stderr is empty), indented."""
        text = (self.stderr or self.stdout).rstrip()
        if not text:
            return ""
        return "\n".join("  " + ln for ln in text.splitlines()[-lines:])


class Executor(Protocol):
    """Runs commands on one host and sends file trees there."""

    host: str

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: Input = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_line: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run ``argv``; with ``check`` a non-zero exit raises CommandFailed; ``on_line`` streams output."""
        ...

    def send_tree(self, source: Path, dest: str, *, on_bytes: Callable[[int], None] | None = None) -> None:
        """Copy the tree under local ``source`` into directory ``dest`` on the host (created if missing)."""
        ...


def tar_stream(source: Path, *, chunk: int = _CHUNK) -> Iterator[bytes]:
    """An uncompressed tar of the tree under ``source`` (names relative to it), as byte chunks."""
    import tarfile  # here: every command imports this module, few stream a tree

    pipe = _ChunkPipe()

    def write() -> None:
        try:
            with tarfile.open(fileobj=pipe, mode="w|", format=tarfile.PAX_FORMAT, bufsize=chunk) as tar:
                for name in sorted(os.listdir(source)):
                    tar.add(source / name, arcname=name)
        except BaseException as exc:  # delivered to the reader
            pipe.fail(exc)
        finally:
            pipe.close()

    threading.Thread(target=write, daemon=True, name="tar-stream").start()
    yield from pipe


class _ChunkPipe(io.RawIOBase):
    """A one-writer one-reader byte pipe with a small bound, iterated as chunks."""

    def __init__(self) -> None:
        import queue

        self._q: "queue.Queue[bytes | BaseException | None]" = queue.Queue(maxsize=8)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self._q.put(bytes(data))
        return len(data)

    def fail(self, exc: BaseException) -> None:
        self._q.put(exc)

    def close(self) -> None:
        if not self.closed:
            self._q.put(None)
        super().close()

    def __iter__(self):  # type: ignore[override]
        while True:
            item = self._q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class LocalExecutor:
    """Runs commands on this machine with subprocess."""

    host = "localhost"

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: Input = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_line: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run ``argv``; raise ToolMissing if the program is absent, CommandFailed if check fails."""
        argv = [str(a) for a in argv]
        full_env = {**os.environ, **env} if env else None
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=cwd, process_group=0,
            )
        except FileNotFoundError as exc:
            if cwd and not os.path.isdir(cwd):
                raise
            raise ToolMissing(argv[0]) from exc
        result = _communicate(proc, tuple(argv), input, on_line, timeout, self.host)
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def send_tree(self, source: Path, dest: str, *, on_bytes: Callable[[int], None] | None = None) -> None:
        """Copy ``source``'s tree into ``dest`` with tar (owners, modes, links and times kept)."""
        os.makedirs(dest, exist_ok=True)
        self.run(["tar", "-x", "-p", "-f", "-", "-C", dest], input=_counted(tar_stream(Path(source)), on_bytes))


def _counted(chunks: Iterable[bytes], on_bytes: Callable[[int], None] | None) -> Iterator[bytes]:
    for chunk in chunks:
        if on_bytes:
            on_bytes(len(chunk))
        yield chunk


def _communicate(proc: subprocess.Popen, argv: tuple[str, ...], input: Input,
                 on_line: Callable[[str], None] | None, timeout: float | None, host: str) -> Result:
    """Feed stdin, read both pipes on threads (lines to ``on_line``), enforce ``timeout``."""
    out: list[bytes] = []
    err: list[bytes] = []
    lock = threading.Lock()
    readers = [threading.Thread(target=_drain, args=(proc.stdout, out, on_line, lock), daemon=True),
               threading.Thread(target=_drain, args=(proc.stderr, err, on_line, lock), daemon=True)]
    if input is not None:
        readers.append(threading.Thread(target=_feed, args=(proc.stdin, input), daemon=True))
    for t in readers:
        t.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            try:
                code = proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    if timed_out:
        _kill_group(proc)  # children that kept the pipes open go too
    for t in readers:
        t.join(timeout=None if not timed_out else 2)
    stdout = _text(out)
    stderr = _text(err)
    if timed_out:
        stderr = (stderr + f"\ntimed out after {timeout}s").lstrip("\n")
        result = Result(argv, stdout, stderr, -1, host)
        raise CommandFailed(result, f"command timed out after {timeout}s: {shlex.join(argv)}")
    return Result(argv, stdout, stderr, code, host)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the command and everything it started (it runs in its own process group)."""
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def _text(parts: list[bytes]) -> str:
    text = b"".join(parts).decode("utf-8", errors="replace")
    return text[-_KEEP:]


def _drain(pipe, sink: list[bytes], on_line: Callable[[str], None] | None, lock: threading.Lock) -> None:
    """Read ``pipe`` to its end; keep a bounded tail; pass whole lines to ``on_line``."""
    kept = 0
    try:
        for raw in iter(pipe.readline, b""):
            sink.append(raw)
            kept += len(raw)
            while kept > 2 * _KEEP and len(sink) > 1:
                kept -= len(sink.pop(0))
            if on_line is not None:
                with lock:
                    on_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    except (OSError, ValueError):
        pass
    finally:
        pipe.close()


def _feed(stdin, data: Input) -> None:
    """Write ``data`` to the command's stdin and close it; a command that stops reading is not an error."""
    try:
        if isinstance(data, str):
            stdin.write(data.encode())
        elif isinstance(data, (bytes, bytearray, memoryview)):
            stdin.write(data)
        elif hasattr(data, "read"):
            shutil.copyfileobj(data, stdin, _CHUNK)  # type: ignore[arg-type]
        else:
            for chunk in data:  # type: ignore[union-attr]
                stdin.write(chunk)
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        try:
            stdin.close()
        except OSError:
            pass


@dataclass(frozen=True)
class Call:
    """One command a :class:`FakeExecutor` was asked to run."""

    host: str
    argv: tuple[str, ...]
    env: dict[str, str] | None = None
    cwd: str | None = None
    input: object = None


@dataclass
class FakeExecutor:
    """A test double: answers from canned results matched by command pattern, records every call.

    A pattern is an argv prefix (a sequence) or a shell-style glob matched
    against the whole command line (a str). The first match wins; with no
    match the ``default`` result is served, or, without one, the test fails.
    """

    responses: list[tuple[tuple[str, ...] | str, Result]] = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    log: list[Call] = field(default_factory=list)
    host: str = "fake"
    default: Result | None = None

    def expect(self, pattern: Iterable[str] | str, stdout: str = "", stderr: str = "", exit_code: int = 0) -> None:
        """Answer any command matching ``pattern`` with the given output and code."""
        key = pattern if isinstance(pattern, str) else tuple(pattern)
        command = (key,) if isinstance(key, str) else key
        self.responses.append((key, Result(command, stdout, stderr, exit_code, self.host)))

    def run(self, argv: Sequence[str], *, check: bool = True, input: Input = None,
            env: dict[str, str] | None = None, cwd: str | None = None,
            on_line: Callable[[str], None] | None = None, timeout: float | None = None) -> Result:
        """Return the first canned result whose pattern matches; fail loudly if none does."""
        argv_t = tuple(str(a) for a in argv)
        self.calls.append(argv_t)
        self.log.append(Call(self.host, argv_t, dict(env) if env else None, cwd, input))
        canned = self._match(argv_t)
        result = Result(argv_t, canned.stdout, canned.stderr, canned.exit_code, self.host)
        if on_line:
            for line in (canned.stdout + canned.stderr).splitlines():
                on_line(line)
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def send_tree(self, source: Path, dest: str, *, on_bytes: Callable[[int], None] | None = None) -> None:
        """Record the send as a call ``("<send_tree>", source, dest)``; nothing is copied."""
        argv = ("<send_tree>", str(source), dest)
        self.calls.append(argv)
        self.log.append(Call(self.host, argv))

    def _match(self, argv: tuple[str, ...]) -> Result:
        line = shlex.join(argv)
        for pattern, canned in self.responses:
            if isinstance(pattern, str):
                if fnmatchcase(line, pattern):
                    return canned
            elif argv[: len(pattern)] == pattern:
                return canned
        if self.default is not None:
            return self.default
        raise AssertionError(f"FakeExecutor({self.host}): unexpected command {line}")


def which(tool: str) -> str | None:
    """The full path of ``tool`` on PATH (plus /usr/sbin, /sbin), or None."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin"
    return shutil.which(tool, path=path)


def require_tool(tool: str, hint: str | None = None) -> str:
    """The full path of ``tool``, or ToolMissing with an install hint."""
    found = which(tool)
    if not found:
        raise ToolMissing(tool, hint or f"install it (Debian: apt-get install {tool})")
    return found
