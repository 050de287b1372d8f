"""A real OpenSSH server on loopback for the SSH executor's tests, and throw-away sudo users.

:func:`start_sshd` runs ``/usr/sbin/sshd -D -e -f <config>`` on 127.0.0.1 with its
own host key, a client key authorized for root (root logs in by key only) and
password logins for other users. With ``LogLevel VERBOSE`` sshd logs
``Starting session`` / ``Close session`` for every session channel, which
:meth:`Sshd.max_open_sessions` replays to count how many sessions were open at
once, on the server side. :func:`make_user` creates a user with a password and
``sudo`` rights (password required) and removes it afterwards.

The server sets ``SHLVL=1`` for its sessions, so bash does not read root's
``~/.bashrc`` for each command: on this machine that file runs ``pyenv init``
(0.3-0.8 s per command, minutes when many sessions wait on pyenv's rehash lock).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

__all__ = ["Sshd", "start_sshd", "make_user", "free_port", "descendants", "SSHD"]

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_MAX_LISTEN = 16  # sshd's MAX_LISTEN_SOCKS (ports x addresses must stay under it): more ports take more sshd processes (one shared log)


@dataclass
class Sshd:
    """Running sshd process(es) sharing one config and one log: where they listen, the client key."""

    dir: Path
    ports: list[int]
    key_file: Path
    procs: list[subprocess.Popen]
    log: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        """The first (usually only) port it listens on."""
        return self.ports[0]

    @property
    def host_pub(self) -> str:
        """The server's host public key line."""
        return (self.dir / "host_ed25519.pub").read_text().strip()

    def stop(self) -> None:
        """Stop the server and everything it started (connection children make their own sessions)."""
        self.kill_connections()
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, 9)
            proc.wait(timeout=10)

    def kill_connections(self) -> None:
        """Kill every process below the listeners, as a host dying mid-transfer would drop them."""
        for proc in self.procs:
            for pid in descendants(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)

    def max_open_sessions(self) -> int:
        """Replay the log: the most session channels open at the same moment."""
        open_now = peak = 0
        for line in list(self.log):
            if "Starting session:" in line:
                open_now += 1
                peak = max(peak, open_now)
            elif "Close session:" in line:
                open_now -= 1
        return peak

    def sessions_started(self) -> int:
        """How many session channels were opened so far."""
        return sum("Starting session:" in line for line in list(self.log))


def descendants(root: int) -> list[int]:
    """Every process below ``root``."""
    table = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split()
    children: dict[int, list[int]] = {}
    for pid, ppid in zip(table[::2], table[1::2]):
        children.setdefault(int(ppid), []).append(int(pid))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "imgbuild-test", "-f", str(path)],
                   check=True)


def start_sshd(workdir: Path, ports: int | list[int] = 1, addresses: tuple[str, ...] = ("127.0.0.1",)) -> Sshd:
    """Start sshd on ``ports`` (a count of free ports, or the ports) of each loopback address; wait till it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    _keygen(workdir / "host_ed25519")
    _keygen(workdir / "client_ed25519")
    (workdir / "authorized_keys").write_text((workdir / "client_ed25519.pub").read_text())
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    port_list = [free_port() for _ in range(ports)] if isinstance(ports, int) else list(ports)
    read_end, write_end = os.pipe()  # every sshd logs into one pipe: its lines are in real-time order
    procs = []
    for i in range(0, len(port_list), _MAX_LISTEN):
        config = workdir / f"sshd_config.{i}"
        config.write_text(_config(workdir, port_list[i:i + _MAX_LISTEN], addresses))
        procs.append(subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=write_end, process_group=0))
    os.close(write_end)
    server = Sshd(workdir, port_list, workdir / "client_ed25519", procs)
    threading.Thread(target=_collect, args=(read_end, server.log), daemon=True).start()
    deadline = time.monotonic() + 10
    while not all(_listening(a, p) for a in addresses for p in port_list):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("sshd did not start:\n" + "\n".join(server.log[-10:]))
        time.sleep(0.02)
    return server


def _config(workdir: Path, ports: list[int], addresses: tuple[str, ...]) -> str:
    listen = "".join(f"ListenAddress {a}:{p}\n" for p in ports for a in addresses)
    return (f"{listen}HostKey {workdir}/host_ed25519\nAuthorizedKeysFile {workdir}/authorized_keys\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
            "UsePAM no\nStrictModes no\nUseDNS no\nPidFile none\nLogLevel VERBOSE\nMaxSessions 100\n"
            "MaxStartups 100\nSubsystem sftp internal-sftp\n"
            # bash reads ~/.bashrc for commands sshd runs unless SHLVL says it is nested; this machine's root
            # .bashrc runs pyenv init (and a rehash behind a lock) on every command: not what these tests measure
            "SetEnv SHLVL=1\n")


def _collect(fd: int, log: list[str]) -> None:
    with open(fd, encoding="utf-8", errors="replace") as pipe:
        for line in pipe:
            log.append(line.rstrip("\n"))


def _listening(address: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((address, port)) == 0


@contextlib.contextmanager
def make_user(*, sudo: bool = True, nopasswd: bool = False) -> Iterator[tuple[str, str]]:
    """A fresh local user with a random password (and sudo rights); yields (name, password), removes it after."""
    name = f"imgbt{secrets.token_hex(3)}"
    password = "pw-" + secrets.token_hex(6)
    subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
    sudoers = Path(f"/etc/sudoers.d/{name}")
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        if sudo:
            sudoers.write_text(f"{name} ALL=(ALL) {'NOPASSWD: ' if nopasswd else ''}ALL\n")
            sudoers.chmod(0o440)
        yield name, password
    finally:
        sudoers.unlink(missing_ok=True)
        subprocess.run(["pkill", "-9", "-u", name], check=False)
        subprocess.run(["userdel", "-r", "-f", name], check=False, capture_output=True)

