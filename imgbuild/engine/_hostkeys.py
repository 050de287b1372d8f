"""SSH host keys trusted on first use, kept in an OpenSSH ``known_hosts`` file (the Home's).

A host seen for the first time is trusted with the key it offers, and a line
``host ssh-ed25519 AAAA...`` (``[host]:port`` when the port is not 22) is
appended, so ``ssh -o UserKnownHostsFile=<file>`` agrees with imgbuild. A host
that is already listed must offer one of its listed keys: any other key is
refused (a changed key is a rebuilt host or a man in the middle; the user
removes the stale line to accept it).
"""

from __future__ import annotations

import threading
from pathlib import Path

import asyncssh

from imgbuild.fsutil import atomic_write

__all__ = ["KnownHosts", "TofuClient", "host_pattern"]


def host_pattern(host: str, port: int) -> str:
    """The name OpenSSH writes in known_hosts for ``host``:``port``."""
    return host if port == 22 else f"[{host}]:{port}"


class KnownHosts:
    """One known_hosts file: look up a host's trusted keys, add a first-seen key (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def trusted(self, host: str, port: int) -> list[asyncssh.SSHKey]:
        """The keys listed for ``host``:``port`` (empty when the host was never seen)."""
        with self._lock:
            data = self._read()
        if not data.strip():
            return []
        known = asyncssh.import_known_hosts(data)
        return list(asyncssh.match_known_hosts(known, host, host, port if port != 22 else None)[0])

    def add(self, host: str, port: int, key: asyncssh.SSHKey) -> None:
        """Append ``key`` for ``host``:``port`` unless that exact line is already there."""
        algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
        line = f"{host_pattern(host, port)} {algorithm} {blob}"
        with self._lock:
            data = self._read()
            if line in data.splitlines():
                return
            if data and not data.endswith("\n"):
                data += "\n"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, (data + line + "\n").encode(), mode=0o600)

    def _read(self) -> str:
        try:
            return self.path.read_text()
        except FileNotFoundError:
            return ""


class TofuClient(asyncssh.SSHClient):
    """An asyncssh client that accepts an unknown host's key (first use) and refuses a changed one."""

    def __init__(self, known: bool) -> None:
        self.known = known
        self.offered: asyncssh.SSHKey | None = None
        self.refused = False

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        """Called only for a key not among the listed ones: trust it if the host has none listed."""
        self.offered = key
        self.refused = self.known
        return not self.known
