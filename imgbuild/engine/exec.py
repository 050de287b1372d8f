"""One seam for running commands: locally now, over SSH later, canned in unit tests.

Every subprocess imgbuild starts (buildah, skopeo, the registry, mount) goes
through an :class:`Executor`, so tests can swap in :class:`FakeExecutor` and the
run engine can add an SSH executor with the same shape. A command's outcome is
a :class:`Result`; ``check=True`` turns a non-zero exit into
:class:`~imgbuild.errors.CommandFailed`, which carries that result as evidence.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from imgbuild.errors import CommandFailed, ToolMissing

__all__ = ["Result", "Executor", "LocalExecutor", "FakeExecutor", "which", "require_tool", "LOCAL"]


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
    """Runs a command and returns its :class:`Result`."""

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_line: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run ``argv``; with ``check`` a non-zero exit raises CommandFailed; ``on_line`` streams output."""
        ...


class LocalExecutor:
    """Runs commands on this machine with subprocess; streams lines to ``on_line`` if given."""

    host = "localhost"

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_line: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run ``argv``; raise ToolMissing if the program is absent, CommandFailed if check fails."""
        argv = [str(a) for a in argv]
        full_env = {**os.environ, **env} if env else None
        try:
            if on_line is None:
                proc = subprocess.run(
                    argv, input=input, capture_output=True, text=True,
                    env=full_env, cwd=cwd, timeout=timeout, errors="replace",
                )
                result = Result(tuple(argv), proc.stdout, proc.stderr, proc.returncode, self.host)
            else:
                result = self._stream(argv, input, full_env, cwd, on_line, timeout)
        except FileNotFoundError as exc:
            if cwd and not os.path.isdir(cwd):
                raise
            raise ToolMissing(argv[0]) from exc
        except subprocess.TimeoutExpired as exc:
            result = Result(tuple(argv), "", f"timed out after {timeout}s", -1, self.host)
            raise CommandFailed(result) from exc
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def _stream(self, argv, input, env, cwd, on_line, timeout) -> Result:
        """Run with stdout+stderr merged and passed line by line to ``on_line``; keep a tail."""
        tail: deque[str] = deque(maxlen=200)
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd,
            errors="replace", bufsize=1,
        )
        if input is not None:
            threading.Thread(target=_feed, args=(proc, input), daemon=True).start()
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                on_line(line)
            code = proc.wait(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        return Result(tuple(argv), "", "\n".join(tail), code, self.host)


def _feed(proc: subprocess.Popen, data: str) -> None:
    try:
        assert proc.stdin is not None
        proc.stdin.write(data)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass


@dataclass
class FakeExecutor:
    """A test double: answers commands from canned results matched by argv prefix, records calls."""

    responses: list[tuple[tuple[str, ...], Result]] = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    host: str = "fake"

    def expect(self, prefix: Iterable[str], stdout: str = "", stderr: str = "", exit_code: int = 0) -> None:
        """Answer any command starting with ``prefix`` with the given output and code."""
        prefix = tuple(prefix)
        self.responses.append((prefix, Result(prefix, stdout, stderr, exit_code, self.host)))

    def run(self, argv: Sequence[str], *, check: bool = True, on_line=None, **_: object) -> Result:
        """Return the first canned result whose prefix matches; fail loudly if none does."""
        argv_t = tuple(str(a) for a in argv)
        self.calls.append(argv_t)
        for prefix, canned in self.responses:
            if argv_t[: len(prefix)] == prefix:
                result = Result(argv_t, canned.stdout, canned.stderr, canned.exit_code, self.host)
                if on_line:
                    for line in (canned.stdout + canned.stderr).splitlines():
                        on_line(line)
                if check and not result.ok:
                    raise CommandFailed(result)
                return result
        raise AssertionError(f"FakeExecutor: unexpected command {shlex.join(argv_t)}")


LOCAL = LocalExecutor()


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
