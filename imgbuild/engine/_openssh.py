"""Bulk streams over OpenSSH's ``ssh``: the same remote command, with the byte pushing done in C.

asyncssh encrypts and frames in Python: a tar stream costs this machine about
twice the CPU per byte that OpenSSH's client does, which shows when the
machine is busy or its cores are shared with the hosts (sandbox hosts, small
CI runners). So a command whose stdin is a stream (a file or byte chunks, as
the transfer's tar streams are) goes through the ``ssh`` program when the
login needs no password and no key passphrase (a key file, the agent or
default keys): host keys come from the same known_hosts file the asyncssh
connection filled on first use (``StrictHostKeyChecking=yes``), user config is
ignored (``-F /dev/null``), and the command line is the one asyncssh would
send, sudo included: it holds no env value (those come first on stdin, the
``prefix``), so the local ``ssh`` process's argv shows none. ``ssh`` exiting
255 with its own complaint is a lost or refused connection
(:class:`HostUnreachable`); anything else is the command's own result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from imgbuild.engine.exec import Input, LocalExecutor, Result, which
from imgbuild.errors import CommandFailed, HostUnreachable

__all__ = ["ssh_argv", "run_ssh", "have_ssh", "streamed"]

_CIPHERS = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr"
_SSH_SAYS = ("ssh:", "Connection ", "connection ", "Host key", "Permission denied", "Broken pipe", "closed by")


def have_ssh() -> bool:
    """True when OpenSSH's client is installed."""
    return which("ssh") is not None


def streamed(data: Input) -> bool:
    """True for stdin that is a stream (a file or an iterable of chunks), not text, bytes or nothing."""
    return data is not None and not isinstance(data, (str, bytes, bytearray, memoryview))


def ssh_argv(host: str, port: int, user: str, key_file: str | None, known_hosts: Path | None,
             connect_timeout: float, keepalive: float) -> list[str]:
    """The ``ssh`` argv up to (not including) the remote command; ``known_hosts`` None skips host key checks."""
    checks = (["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}"] if known_hosts else
              ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
    key = ["-i", key_file, "-o", "IdentitiesOnly=yes"] if key_file else []
    return ["ssh", "-F", "/dev/null", "-T", "-x", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-o", f"ConnectTimeout={max(1, int(connect_timeout))}", "-o", f"ServerAliveInterval={max(1, int(keepalive))}",
            "-o", "ServerAliveCountMax=3", "-o", "GlobalKnownHostsFile=/dev/null", *checks, *key, "-c", _CIPHERS,
            "-p", str(port), "-l", user, host]


def run_ssh(base: list[str], command: str, argv: tuple[str, ...], label: str, *, prefix: bytes, input: Input,
            on_line: Callable[[str], None] | None, timeout: float | None) -> Result:
    """Run ``command`` through ``ssh``; the Result names ``argv`` and the host ``label``."""
    broken: list[BaseException] = []
    try:
        got = LocalExecutor().run([*base, "--", command], check=False, input=_chain(prefix, input, broken),
                                  on_line=on_line, timeout=timeout)
    except CommandFailed as exc:  # the timeout: re-said with the remote command and host
        old = exc.result
        raise CommandFailed(Result(argv, old.stdout, old.stderr, -1, label),
                            f"command timed out after {timeout}s: {Result(argv, '', '', -1).command_line()}") from None
    if broken:  # the input failed (a file changed while read...): that is the error, not the cut-off stream
        raise broken[0]
    result = Result(argv, got.stdout, got.stderr, got.exit_code, label)
    if got.exit_code == 255 and any(s in got.stderr for s in _SSH_SAYS):
        said = got.stderr.strip().splitlines()[-1]
        raise HostUnreachable(f"connection to {label} lost while running {result.command_line()}: {said}", label)
    return result


def _chain(prefix: bytes, data: Input, broken: list[BaseException]) -> Iterator[bytes]:
    """``prefix`` then ``data``'s chunks; an error of ``data`` ends the stream and is kept in ``broken``."""
    try:
        if prefix:
            yield prefix
        if hasattr(data, "read"):
            while chunk := data.read(1 << 20):  # type: ignore[union-attr]
                yield chunk
        else:
            yield from data  # type: ignore[misc]
    except Exception as exc:  # noqa: BLE001 - raised by run_ssh once ssh has exited
        broken.append(exc)
