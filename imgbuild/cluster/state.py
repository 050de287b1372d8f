"""What a cluster has: the applied Clusterfile plus per-host facts, saved atomically after every phase.

The state of cluster NAME is one file, ``home.cluster_dir(NAME)/Clusterfile``
(0600: it keeps the SSH password of the applied spec; print only
:meth:`ClusterState.masked`). It is the applied Clusterfile itself, with the
user's comments kept, whose Cluster ``status`` holds sealos' ``phase`` and
``conditions`` and, under ``status.imgbuild``, imgbuild's facts: when the
cluster was created, the ``-e`` env of the last run, each image's digest and
type, and per host its arch, hostname, what it ``holds`` (per image: manifest
and transfer-marker digests), the digests of files ``rendered`` on it and the
lifecycle steps ``done`` (keys like ``init@sha256:...``). Every save replaces
the file with :func:`~imgbuild.fsutil.atomic_write` (fsync, rename, fsync of
the directory), so after a ``kill -9`` at any point the file is the old or the
new state, never a mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from imgbuild.cluster.clusterfile import Clusterfile, parse_clusterfile
from imgbuild.cluster.env import masked
from imgbuild.cluster.model import Cluster, Condition, Status
from imgbuild.errors import ClusterfileError, StoreError
from imgbuild.fsutil import atomic_write
from imgbuild.home import Home

__all__ = [
    "PHASE_IN_PROCESS", "PHASE_SUCCESS", "PHASE_FAILED", "STATE_KEY", "ImageRecord", "HostState", "ClusterState",
    "now",
]

PHASE_IN_PROCESS = "ClusterInProcess"
PHASE_SUCCESS = "ClusterSuccess"
PHASE_FAILED = "ClusterFailed"
STATE_KEY = "imgbuild"
"""The key under ``status`` holding imgbuild's facts (sealos ignores it)."""


def now() -> str:
    """The current UTC time as sealos writes it (``2024-05-01T12:00:00Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ImageRecord:
    """An applied image: its manifest digest and sealos type (rootfs, application, patch)."""

    digest: str = ""
    type: str = ""


@dataclass
class HostState:
    """What one host has: arch, hostname, images held, rendered-file digests and lifecycle steps done."""

    arch: str = ""
    hostname: str = ""
    holds: dict[str, dict[str, str]] = field(default_factory=dict)
    rendered: dict[str, str] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        """The mapping saved under ``status.imgbuild.hosts.<address>``."""
        out: dict[str, Any] = {"arch": self.arch, "hostname": self.hostname, "holds": self.holds,
                               "rendered": self.rendered, "done": sorted(self.done)}
        return {k: v for k, v in out.items() if v}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "HostState":
        """Read a saved host record; a malformed one is a ClusterfileError."""
        data = _mapping(data, where, "host")
        holds = _mapping(data.get("holds"), where, "holds")
        return cls(arch=str(data.get("arch") or ""), hostname=str(data.get("hostname") or ""),
                   holds={str(k): {str(a): str(b) for a, b in _mapping(v, where, "holds").items()}
                          for k, v in holds.items()},
                   rendered={str(k): str(v) for k, v in _mapping(data.get("rendered"), where, "rendered").items()},
                   done={str(k) for k in _list(data.get("done"), where, "done")})


def _remove_stale_temps(path: Path, age: float = 60.0) -> None:
    """Remove temp files a killed save left beside ``path`` (those older than ``age`` seconds: not a live write)."""
    import contextlib
    import time

    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - tmp.stat().st_mtime > age:
                tmp.unlink()


def _mapping(data: Any, where: str, what: str) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ClusterfileError(f"cluster state: {what} must be a mapping", where)
    return data


def _list(data: Any, where: str, what: str) -> list[Any]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise ClusterfileError(f"cluster state: {what} must be a list", where)
    return data


@dataclass
class ClusterState:
    """The applied Clusterfile and the facts of its hosts; mutate it as work is done, :meth:`save` after each phase."""

    clusterfile: Clusterfile
    phase: str = ""
    conditions: list[Condition] = field(default_factory=list)
    created: str = ""
    cli_env: dict[str, str] = field(default_factory=dict)
    images: dict[str, ImageRecord] = field(default_factory=dict)
    hosts: dict[str, HostState] = field(default_factory=dict)
    distribute: str = ""  # how the last apply distributed the rootfs (ssh/registry): later runs keep it

    def __repr__(self) -> str:  # the spec and -e env hold secrets: print masked() instead
        return f"ClusterState(name={self.name!r}, phase={self.phase!r}, hosts={len(self.hosts)})"

    @property
    def cluster(self) -> Cluster:
        """The applied Cluster spec."""
        return self.clusterfile.cluster

    @property
    def name(self) -> str:
        """The cluster's name."""
        return self.cluster.name

    @classmethod
    def new(cls, clusterfile: Clusterfile) -> "ClusterState":
        """The state of a cluster about to be created from ``clusterfile``."""
        return cls(clusterfile=clusterfile, phase=PHASE_IN_PROCESS)

    def host(self, address: str) -> HostState:
        """The record of the host at ``address`` (its IP), created empty on first use."""
        return self.hosts.setdefault(address, HostState())

    def mark_done(self, host: str, key: str) -> None:
        """Record that step ``key`` (e.g. ``init@sha256:...``) finished on ``host``."""
        self.host(host).done.add(key)

    def is_done(self, host: str, key: str) -> bool:
        """True if step ``key`` finished on ``host``."""
        return host in self.hosts and key in self.hosts[host].done

    def forget_host(self, host: str) -> None:
        """Drop everything known about ``host`` (after it was removed from the cluster)."""
        self.hosts.pop(host, None)

    def set_condition(self, type: str, status: str, reason: str = "", message: str = "") -> None:  # noqa: A002
        """Add or update the condition of ``type``, stamped with the current time, as sealos' UpdateCondition."""
        cond = Condition(type=type, status=status, reason=reason, message=message, time=now())
        for i, old in enumerate(self.conditions):
            if old.type == type:
                self.conditions[i] = cond
                return
        self.conditions.append(cond)

    def applied(self, clusterfile: Clusterfile) -> None:
        """Make ``clusterfile`` the applied spec (after it has been applied); host facts are kept."""
        self.clusterfile = clusterfile

    def _status(self) -> Status:
        facts: dict[str, Any] = {
            "created": self.created, "cliEnv": dict(self.cli_env), "distribute": self.distribute,
            "images": {ref: {k: v for k, v in (("digest", r.digest), ("type", r.type)) if v}
                       for ref, r in self.images.items()},
            "hosts": {addr: h.to_dict() for addr, h in self.hosts.items()},
        }
        extra = {k: v for k, v in self.cluster.status.extra.items() if k != STATE_KEY}
        extra[STATE_KEY] = {k: v for k, v in facts.items() if v}
        return Status(phase=self.phase, conditions=tuple(self.conditions), extra=extra)

    def dump(self) -> str:
        """The state file's text: the applied Clusterfile with this status."""
        return self.clusterfile.with_cluster(self.cluster.with_status(self._status())).dump()

    def masked(self) -> dict[str, Any]:
        """A printable view: the spec with secrets masked, and the status (``-e`` env masked)."""
        out = self.cluster.with_status(self._status()).masked_dict()
        facts = out["status"].get(STATE_KEY, {})
        if "cliEnv" in facts:
            facts["cliEnv"] = masked(facts["cliEnv"])
        return out

    @staticmethod
    def path(home: Home, name: str) -> Path:
        """Where the state of cluster ``name`` lives."""
        return home.cluster_dir(name) / "Clusterfile"

    def save(self, home: Home) -> Path:
        """Write the state atomically (0600, directory 0700); call it after every phase."""
        path = self.path(home, self.name)
        data = self.dump().encode("utf-8")
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(path, data, mode=0o600, sync_dir=True)
        except OSError as exc:
            raise StoreError(f"cannot save cluster state: {exc.strerror}", str(path)) from exc
        _remove_stale_temps(path)
        return path

    @classmethod
    def load(cls, home: Home, name: str) -> "ClusterState | None":
        """The saved state of cluster ``name``, or None when it has none."""
        path = cls.path(home, name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read cluster state: {exc}", str(path)) from exc
        return cls.from_text(text, str(path))

    @classmethod
    def from_text(cls, text: str, name: str = "<state>") -> "ClusterState":
        """Parse a state file's text (a Clusterfile whose status may hold imgbuild's facts)."""
        clusterfile = parse_clusterfile(text, name)
        status = clusterfile.cluster.status
        facts = _mapping(status.extra.get(STATE_KEY), name, f"status.{STATE_KEY}")
        created = str(facts.get("created") or "")
        if not facts and status.phase == PHASE_SUCCESS:
            created = str(clusterfile.cluster.metadata.get("creationTimestamp") or "unknown")  # written by sealos
        images = {str(ref): ImageRecord(**{k: str(v) for k, v in _mapping(rec, name, "image").items()
                                           if k in ("digest", "type")})
                  for ref, rec in _mapping(facts.get("images"), name, "images").items()}
        hosts = {str(addr): HostState.from_dict(rec, name)
                 for addr, rec in _mapping(facts.get("hosts"), name, "hosts").items()}
        cli_env = {str(k): str(v) for k, v in _mapping(facts.get("cliEnv"), name, "cliEnv").items()}
        return cls(clusterfile=clusterfile, phase=status.phase, conditions=list(status.conditions), created=created,
                   cli_env=cli_env, images=images, hosts=hosts, distribute=str(facts.get("distribute") or ""))

    def copy(self) -> "ClusterState":
        """An independent copy (host records and sets copied too)."""
        hosts = {a: replace(h, holds={k: dict(v) for k, v in h.holds.items()}, rendered=dict(h.rendered),
                            done=set(h.done)) for a, h in self.hosts.items()}
        return replace(self, conditions=list(self.conditions), cli_env=dict(self.cli_env), images=dict(self.images),
                       hosts=hosts)
