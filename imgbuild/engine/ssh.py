"""Commands on remote hosts over SSH: asyncssh on one event loop behind the synchronous Executor seam.

An :class:`SSHPool` owns one asyncio event loop on one background thread and
one connection per :class:`SSHTarget`, opened on first use, kept alive
(``keepalive`` seconds) and reused by every command; callers on any number of
threads block in :meth:`SSHExecutor.run` while the loop multiplexes them. At
most ``max_parallel`` SSH sessions (a command, a connection being made) are
open across the pool at once: a semaphore, so fanning out to 500 hosts opens
500 connections over time but never more than ``max_parallel`` sessions at a
time.

Logins use, in this order as asyncssh offers them: the target's key file
(``key_passphrase`` for an encrypted one), the ssh-agent (``SSH_AUTH_SOCK``)
and ~/.ssh default keys, then the password. A non-root user's commands run
through sudo (see :mod:`imgbuild.engine._sshrun`); on first use the pool finds
out whether sudo needs the password and checks it once, so a wrong one is a
clear login error rather than a confusing command failure.

Host keys are trusted on first use into the Home's ``known_hosts`` (OpenSSH
format); a host whose key changed is refused with :class:`HostUnreachable`
naming the host and the file; ``insecure_host_key`` skips the check (and
records nothing).

A command whose stdin is a stream (a file or byte chunks: the transfer's tar
streams) goes through OpenSSH's ``ssh`` program instead when the login needs
no password or key passphrase (``openssh``, default: when ``ssh`` is
installed): the same command line and stdin prefix (the env values), host
key checked against the same file, the same session slot, but the bytes
framed and encrypted in C, which costs half the CPU per byte (see
:mod:`imgbuild.engine._openssh`).

Failures: a refused or dropped connection or login is
``HostUnreachable`` (host:port); a command that exits non-zero is
``CommandFailed`` carrying its Result (host, command, exit code, output tail).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Coroutine, Sequence, TypeVar

import asyncssh

from imgbuild.engine._hostkeys import KnownHosts, TofuClient
from imgbuild.engine._openssh import have_ssh, run_ssh, ssh_argv, streamed
from imgbuild.engine._sshsock import CoalescingConnector
from imgbuild.engine._sshrun import SUDO_NONE, SUDO_NOPASSWD, SUDO_PASSWORD, remote_command, run_process
from imgbuild.engine.exec import Executor, Input, Result, tar_stream
from imgbuild.errors import CommandFailed, HostUnreachable, InputError

__all__ = ["SSHTarget", "SSHPool", "SSHExecutor", "executor_for", "is_local_address", "target_for",
           "run_all"]

T = TypeVar("T")
_ENCRYPTION = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
               "aes128-ctr", "aes256-ctr"]  # AES-GCM first: OpenSSL does it in hardware, fastest for tar streams


@dataclass(frozen=True)
class SSHTarget:
    """One host as a Clusterfile or flags name it: address, port, user and credentials."""

    host: str
    port: int = 22
    user: str = "root"
    password: str | None = field(default=None, repr=False)
    key_file: str | None = None
    key_passphrase: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """``host``, or ``host:port`` when the port is not 22 (``[v6]:port`` for IPv6)."""
        if self.port == 22:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass
class _Conn:
    """An open connection and how its user reaches root."""

    conn: asyncssh.SSHClientConnection
    sudo: str


class SSHPool:
    """One asyncio loop on one thread, one reused connection per target, at most ``max_parallel`` sessions."""

    def __init__(self, *, known_hosts: Path, insecure_host_key: bool = False, max_parallel: int = 32,
                 connect_timeout: float = 10.0, keepalive: float = 15.0, openssh: bool | None = None) -> None:
        if max_parallel < 1:
            raise InputError(f"--max-parallel must be at least 1, not {max_parallel}")
        self.known_hosts = KnownHosts(Path(known_hosts))
        self.insecure_host_key = insecure_host_key
        self.max_parallel = max_parallel
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.openssh = have_ssh() if openssh is None else openssh
        self.peak_sessions = 0
        self._open_sessions = 0
        self._gauge_lock = threading.Lock()
        self._conns: dict[SSHTarget, _Conn] = {}
        self._locks: dict[SSHTarget, asyncio.Lock] = {}
        self._executors: dict[SSHTarget, SSHExecutor] = {}
        self._feeders = ThreadPoolExecutor(max_workers=max_parallel + 2, thread_name_prefix="imgbuild-ssh-feed")
        self._loop = asyncio.new_event_loop()
        self._sem = asyncio.Semaphore(max_parallel)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="imgbuild-ssh")
        self._thread.start()
        self._closed = False

    def executor(self, target: SSHTarget) -> "SSHExecutor":
        """The executor for ``target`` (one per target; its connection opens on its first command)."""
        if target not in self._executors:
            self._executors[target] = SSHExecutor(self, target)
        return self._executors[target]

    def close(self) -> None:
        """Close every connection and stop the loop thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self.call(self._close_all())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
            self._feeders.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "SSHPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the pool's loop and wait for it; Ctrl-C cancels it."""
        if self._closed and not self._thread.is_alive():
            coro.close()
            raise RuntimeError("SSHPool is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()
            raise

    async def run(self, target: SSHTarget, argv: Sequence[str], *, input: Input, env: dict[str, str] | None,
                  cwd: str | None, on_line: Callable[[str], None] | None, timeout: float | None) -> Result:
        """Coroutine: run ``argv`` on ``target`` inside one of the ``max_parallel`` session slots."""
        argv_t = tuple(str(a) for a in argv)
        async with self._sem:
            self._gauge(1)
            try:
                conn = await self._connection(target)
                command = remote_command(argv_t, env=env, cwd=cwd, sudo=conn.sudo, password=target.password)
                exited = await run_process(conn.conn, command.line, argv_t, target.label, prefix=command.prefix,
                                           input=input, on_line=on_line, timeout=timeout, feeders=self._feeders)
            finally:
                self._gauge(-1)
        if exited.lost:
            self._conns.pop(target, None)
            raise HostUnreachable(f"connection to {target.label} lost while running: {exited.result.command_line()}",
                                  target.label)
        return exited.result

    def run_streamed(self, target: SSHTarget, argv: Sequence[str], *, input: Input, env: dict[str, str] | None,
                     cwd: str | None, on_line: Callable[[str], None] | None, timeout: float | None) -> Result:
        """Run ``argv`` with a streamed stdin through OpenSSH's ``ssh`` (see :mod:`~imgbuild.engine._openssh`).

        The asyncssh connection is made first (host key trusted or checked, sudo mode found) and a session slot
        is held for the whole command, so ``max_parallel`` bounds these too.
        """
        argv_t = tuple(str(a) for a in argv)
        self.call(self._sem.acquire())
        self._gauge(1)
        try:
            conn = self.call(self._connection(target))
            command = remote_command(argv_t, env=env, cwd=cwd, sudo=conn.sudo, password=target.password)
            base = ssh_argv(target.host, target.port, target.user, target.key_file,
                            None if self.insecure_host_key else self.known_hosts.path, self.connect_timeout,
                            self.keepalive)
            result = run_ssh(base, command.line, argv_t, target.label, prefix=command.prefix, input=input,
                             on_line=on_line, timeout=timeout)
            if result.exit_code == 255 and not self.call(self._answers(conn)):
                # ssh logs a closed connection at INFO, below its LogLevel: a silent 255 is that or a remote
                # command killed by a signal. The pool's own connection to the host tells which.
                self._conns.pop(target, None)
                raise HostUnreachable(f"connection to {target.label} lost while running {result.command_line()}",
                                      target.label)
            return result
        finally:
            self._gauge(-1)
            self._loop.call_soon_threadsafe(self._sem.release)

    async def _answers(self, held: _Conn) -> bool:
        """True when ``held``'s connection still runs a command (within the connect timeout)."""
        if held.conn.is_closed():
            return False
        try:
            async with asyncio.timeout(self.connect_timeout):
                await held.conn.run("true", check=False)
        except (asyncssh.Error, OSError, TimeoutError):
            return False
        return True

    def uses_openssh(self, target: SSHTarget, input: Input) -> bool:
        """True when a command with this stdin goes through ``ssh``: a stream, and a login without secrets.

        ``ssh`` runs in batch mode and cannot type a login password or key passphrase, hence the condition; env
        values and the sudo password travel on stdin (see :func:`remote_command`), never in ``ssh``'s argv.
        """
        return (self.openssh and streamed(input) and target.password is None and target.key_passphrase is None)

    def _gauge(self, delta: int) -> None:
        with self._gauge_lock:
            self._open_sessions += delta
            self.peak_sessions = max(self.peak_sessions, self._open_sessions)

    async def _connection(self, target: SSHTarget) -> _Conn:
        lock = self._locks.setdefault(target, asyncio.Lock())
        async with lock:
            held = self._conns.get(target)
            if held is not None and not held.conn.is_closed():
                return held
            conn = await self._connect(target)
            try:
                sudo = await _sudo_mode(conn, target)
            except BaseException:
                conn.close()
                raise
            self._conns[target] = _Conn(conn, sudo)
            return self._conns[target]

    async def _connect(self, target: SSHTarget) -> asyncssh.SSHClientConnection:
        trusted = [] if self.insecure_host_key else self.known_hosts.trusted(target.host, target.port)
        client = TofuClient(known=bool(trusted))
        options: dict[str, Any] = dict(
            username=target.user, password=target.password, passphrase=target.key_passphrase,
            known_hosts=None if self.insecure_host_key else (trusted, [], []), config=None,
            connect_timeout=self.connect_timeout, keepalive_interval=self.keepalive, keepalive_count_max=3,
            encryption_algs=_ENCRYPTION, compression_algs=None, tunnel=CoalescingConnector())
        if target.key_file:
            options["client_keys"] = [target.key_file]
        try:
            conn, _ = await asyncssh.create_connection(lambda: client, target.host, target.port, **options)
        except asyncssh.HostKeyNotVerifiable as exc:
            if client.refused:
                raise HostUnreachable(
                    f"host key of {target.label} does not match {self.known_hosts.path}: refused "
                    "(if the host was rebuilt, delete its line there)", target.label) from exc
            raise HostUnreachable(f"host key of {target.label} not accepted: {exc.reason}", target.label) from exc
        except asyncssh.PermissionDenied as exc:
            raise HostUnreachable(f"SSH login as {target.user} refused by {target.label}", target.label) from exc
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise InputError(f"cannot load SSH key {target.key_file}: {exc}", target.key_file) from exc
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise HostUnreachable(f"cannot connect to {target.label} over SSH: {reason}", target.label) from exc
        if client.offered is not None and not self.insecure_host_key:
            self.known_hosts.add(target.host, target.port, client.offered)
        return conn

    async def _close_all(self) -> None:
        conns = list(self._conns.values())
        self._conns.clear()
        for held in conns:
            held.conn.close()
        for held in conns:
            await held.conn.wait_closed()


async def _sudo_mode(conn: asyncssh.SSHClientConnection, target: SSHTarget) -> str:
    """How ``target.user`` reaches root: as root, sudo without a password, or sudo with (a checked) one."""
    if target.user == "root":
        return SUDO_NONE
    probe = await conn.run("sudo -n -k true", check=False)
    if probe.exit_status == 0:
        return SUDO_NOPASSWD
    if target.password is None:
        raise HostUnreachable(f"{target.user} needs a password for sudo on {target.label} and none was given",
                              target.label)
    probe = await conn.run("sudo -S -k -p '' true", input=f"{target.password}\n", check=False)
    if probe.exit_status != 0:
        said = (str(probe.stderr or "").strip().splitlines() or ["sudo refused"])[-1]
        raise HostUnreachable(f"{target.user} cannot sudo on {target.label}: {said}", target.label)
    return SUDO_PASSWORD


class SSHExecutor:
    """An :class:`~imgbuild.engine.exec.Executor` for one SSH target of an :class:`SSHPool`."""

    def __init__(self, pool: SSHPool, target: SSHTarget) -> None:
        self.pool = pool
        self.target = target
        self.host = target.label

    def __repr__(self) -> str:
        return f"SSHExecutor({self.target.user}@{self.host})"

    def run(self, argv: Sequence[str], *, check: bool = True, input: Input = None,
            env: dict[str, str] | None = None, cwd: str | None = None,
            on_line: Callable[[str], None] | None = None, timeout: float | None = None) -> Result:
        """Run ``argv`` on the host (as root, through sudo for other users); ``check`` raises CommandFailed."""
        if self.pool.uses_openssh(self.target, input):
            result = self.pool.run_streamed(self.target, argv, input=input, env=env, cwd=cwd, on_line=on_line,
                                            timeout=timeout)
        else:
            result = self.pool.call(self.pool.run(self.target, argv, input=input, env=env, cwd=cwd,
                                                  on_line=on_line, timeout=timeout))
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def send_tree(self, source: Path, dest: str, *, on_bytes: Callable[[int], None] | None = None) -> None:
        """Copy the tree under local ``source`` into ``dest`` on the host as one tar stream (owners, modes kept)."""
        def counted():
            for chunk in tar_stream(Path(source)):
                if on_bytes:
                    on_bytes(len(chunk))
                yield chunk

        self.run(["sh", "-c", 'mkdir -p -- "$1" && exec tar -x -p -f - -C "$1"', "sh", dest], input=counted())


def is_local_address(host: str) -> bool:
    """True when ``host`` is ``localhost``, a loopback address or an address assigned to this machine.

    An IP literal is checked by binding a UDP socket to it (no packet is sent); other names are not resolved.
    """
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((str(ip), 0))
        except OSError:
            return False
    return True


def executor_for(target: SSHTarget, pool: SSHPool, local: Executor) -> Executor:
    """``local`` for root on this machine's own address at port 22 (sealos' ``--single``), else an SSH executor.

    A non-default port on a local address is another sshd (a container's or a test's forwarded port), so it
    goes over SSH.
    """
    if target.user == "root" and target.port == 22 and is_local_address(target.host):
        return local
    return pool.executor(target)


def target_for(machine: Any) -> SSHTarget:
    """The target of a cluster host: anything with ``address``, ``port`` and sealos ``ssh`` settings
    (``user``, ``passwd``, ``pk``, ``pk_passwd``), as :class:`imgbuild.cluster.Machine` has; root by default."""
    ssh = machine.ssh
    key = os.path.expanduser(ssh.pk) if ssh.pk else None
    return SSHTarget(machine.address, machine.port, ssh.user or "root", password=ssh.passwd or None, key_file=key,
                     key_passphrase=ssh.pk_passwd or None)


def run_all(executors: Sequence[Executor], argv: Sequence[str], *, on_line: Callable[[str, str], None] | None = None,
            timeout: float | None = None) -> list[Result | Exception]:
    """Run ``argv`` on every executor at once (the pool bounds the sessions); per executor its Result or error.

    ``on_line(host, line)`` gets each output line as it comes; a non-zero exit is a Result, not an error.
    """
    from concurrent.futures import ThreadPoolExecutor as Threads

    def one(ex: Executor) -> Result | Exception:
        line = None if on_line is None else (lambda text: on_line(ex.host, text))
        try:
            return ex.run(argv, check=False, on_line=line, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - reported per host
            return exc

    if not executors:
        return []
    threads = Threads(min(len(executors), 256), thread_name_prefix="imgbuild-run-all")
    try:
        futures = [threads.submit(one, ex) for ex in executors]
        return [f.result() for f in futures]
    finally:  # on Ctrl-C do not wait: closing the pool ends the commands still running
        threads.shutdown(wait=False, cancel_futures=True)
