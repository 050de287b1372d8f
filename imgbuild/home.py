"""Where imgbuild keeps its state: ``$IMGBUILD_HOME`` (default ``~/.imgbuild``).

One directory, created 0700, holds the image store, registry credentials,
mount records, layer caches and cluster state. :func:`home` reads the
environment and is called only at the edge (the CLI, once per command, and
tests); the library takes the :class:`Home` it is given, or the one its
:class:`~imgbuild.oci.store.Store` carries (``open_store(home)``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from imgbuild.errors import StoreError

__all__ = ["Home", "home"]


@dataclass(frozen=True)
class Home:
    """The paths under one imgbuild home directory."""

    root: Path

    @property
    def store(self) -> Path:
        """The OCI image layout holding every local image."""
        return self.root / "store"

    @property
    def auth_file(self) -> Path:
        """Registry credentials, docker config.json format, 0600."""
        return self.root / "auth.json"

    @property
    def mounts(self) -> Path:
        """Mount records and mount points."""
        return self.root / "mounts"

    @property
    def cache(self) -> Path:
        """Caches: unpacked layers, build-step layers, downloads."""
        return self.root / "cache"

    @property
    def clusters(self) -> Path:
        """Per-cluster state (Clusterfile, 0600)."""
        return self.root / "clusters"

    @property
    def sandbox(self) -> Path:
        """Local sandbox hosts: per sandbox its SSH key pair, overlays and records."""
        return self.root / "sandbox"

    @property
    def known_hosts(self) -> Path:
        """SSH host keys trusted on first use (OpenSSH known_hosts format)."""
        return self.root / "known_hosts"

    def cluster_dir(self, name: str) -> Path:
        """The state directory of cluster ``name`` (Clusterfile, logs, pki)."""
        return self.clusters / name

    def ensure(self) -> "Home":
        """Create the home directory (0700) if missing and return self."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create imgbuild home: {exc.strerror}", str(self.root)) from exc
        return self


def home(create: bool = True) -> Home:
    """The home named by ``IMGBUILD_HOME`` (or ``~/.imgbuild``), created 0700 unless ``create`` is False."""
    root = Path(os.environ.get("IMGBUILD_HOME") or Path.home() / ".imgbuild").expanduser()
    h = Home(root.absolute())
    return h.ensure() if create else h
