"""The desired cluster as values: ``Cluster`` (spec + status) and ``Config`` documents, sealos' v1beta1 shape.

Every value is a frozen dataclass; a change returns a copy (``dataclasses.replace``
or the ``with_*`` helpers). ``Cluster.machines()`` flattens the host groups into
one ordered list (masters first, master0 first of all) with each host's
effective SSH settings; ``Cluster.from_flags`` builds a Cluster from ``run``-style
flags as sealos does (hosts grouped by SSH port, master0's group first).
``to_dict`` gives sealos' layout, which the Clusterfile writer dumps with sorted
keys, as sealos' own writer does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any, Iterable, Mapping

from imgbuild.cluster.env import FrozenMap, parse_env_item
from imgbuild.cluster.hosts import (
    DEFAULT_SSH_PORT, MASTER, NODE, REGISTRY, SSH, Machine, expand_hosts, format_endpoint, parse_endpoint,
)
from imgbuild.errors import ClusterfileError, InputError, InvalidReference

__all__ = [
    "API_VERSION", "KIND_CLUSTER", "KIND_CONFIG", "STRATEGIES", "DEFAULT_STRATEGY", "DEFAULT_CLUSTER_NAME",
    "Condition", "Status", "Host", "Cluster", "Config", "name_problem", "image_problem", "flag_env",
]

API_VERSION = "apps.sealos.io/v1beta1"
KIND_CLUSTER = "Cluster"
KIND_CONFIG = "Config"
STRATEGIES = ("merge", "override", "insert", "append")
DEFAULT_STRATEGY = "override"
"""A Config without ``strategy`` replaces the file with its data, as sealos does."""
DEFAULT_CLUSTER_NAME = "default"

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a cluster (it becomes a directory name), or None."""
    if not _NAME.fullmatch(name) or ".." in name:
        return f"cluster name {name!r} must be 1-63 letters, digits, '.', '_' or '-', starting and ending alphanumeric"
    return None


def image_problem(image: str) -> str | None:
    """Why ``image`` is not an image reference, or None."""
    from imgbuild.reference import parse_reference

    try:
        parse_reference(image)
    except InvalidReference as exc:
        return exc.message
    return None


@dataclass(frozen=True)
class Condition:
    """One status condition, as sealos writes them (``lastHeartbeatTime`` is ``time``)."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    time: str = ""

    def to_dict(self) -> dict:
        """sealos' mapping (empty optional fields left out)."""
        out = {"type": self.type, "status": self.status, "lastHeartbeatTime": self.time,
               "reason": self.reason, "message": self.message}
        return {k: v for k, v in out.items() if v or k in ("type", "status")}


@dataclass(frozen=True)
class Status:
    """``status`` of a Cluster: phase, conditions, and whatever else was written there (kept as data)."""

    phase: str = ""
    conditions: tuple[Condition, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # extra may hold sealos' mounts with registry passwords: names only
        return f"Status(phase={self.phase!r}, conditions={self.conditions!r}, extra=<{', '.join(self.extra)}>)"

    def to_dict(self) -> dict:
        """sealos' mapping (``{}`` when empty)."""
        out: dict[str, Any] = dict(self.extra)
        if self.phase:
            out["phase"] = self.phase
        if self.conditions:
            out["conditions"] = [c.to_dict() for c in self.conditions]
        return out


@dataclass(frozen=True)
class Host:
    """One ``spec.hosts`` group: addresses as written, roles, host env and SSH overrides."""

    ips: tuple[str, ...]
    roles: tuple[str, ...]
    env: FrozenMap = field(default_factory=FrozenMap)
    ssh: SSH | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """sealos' mapping."""
        out: dict[str, Any] = dict(self.extra)
        out["ips"] = list(self.ips)
        out["roles"] = list(self.roles)
        if self.env:
            out["env"] = [f"{k}={v}" for k, v in self.env.items()]
        if self.ssh is not None and self.ssh.to_dict():
            out["ssh"] = self.ssh.to_dict()
        return out


@dataclass(frozen=True)
class Cluster:
    """A ``kind: Cluster`` document: the images to run, on which hosts, with which SSH settings and env."""

    name: str
    images: tuple[str, ...]
    hosts: tuple[Host, ...]
    ssh: SSH = field(default_factory=SSH)
    env: FrozenMap = field(default_factory=FrozenMap)
    command: tuple[str, ...] = ()
    status: Status = field(default_factory=Status)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def machines(self) -> list[Machine]:
        """Every host once: masters first (master0 first of all), then the others, each in file order."""
        return list(self._machines)

    @cached_property
    def _machines(self) -> tuple[Machine, ...]:
        flat = [m for host in self.hosts for m in self._host_machines(host)]
        return tuple([m for m in flat if m.is_master] + [m for m in flat if not m.is_master])

    def _host_machines(self, host: Host) -> Iterable[Machine]:
        ssh = self.ssh.overlay(host.ssh)
        default_port = ssh.port or DEFAULT_SSH_PORT
        for ip in host.ips:
            try:
                address, port = parse_endpoint(ip)
            except ValueError as exc:
                raise ClusterfileError(f"cluster {self.name}: {exc}") from None
            port = port or default_port
            yield Machine(address, port, host.roles, host.env, replace(ssh, port=port))

    @property
    def master0(self) -> Machine:
        """The first master: it runs application images and, by default, the registry."""
        machines = self._machines
        if not machines or not machines[0].is_master:
            raise ClusterfileError(f"cluster {self.name} has no host with the master role")
        return machines[0]

    @property
    def masters(self) -> list[Machine]:
        """Hosts with the ``master`` role, master0 first."""
        return [m for m in self._machines if m.is_master]

    @property
    def nodes(self) -> list[Machine]:
        """Hosts with the ``node`` role."""
        return [m for m in self._machines if NODE in m.roles]

    @property
    def registry_hosts(self) -> list[Machine]:
        """Hosts with the ``registry`` role; master0 when none has it."""
        return [m for m in self._machines if REGISTRY in m.roles] or [self.master0]

    def machine(self, address: str) -> Machine | None:
        """The machine at ``address`` (an IP, or ``ip:port``), or None."""
        try:
            ip, _ = parse_endpoint(address)
        except ValueError:
            return None
        return next((m for m in self._machines if m.address == ip), None)

    def host_env(self, address: str) -> FrozenMap:
        """The ``env`` of the host group holding ``address`` (empty when it has none or is unknown)."""
        machine = self.machine(address)
        return machine.env if machine is not None else FrozenMap()

    def with_status(self, status: Status) -> "Cluster":
        """A copy with ``status`` replaced."""
        return replace(self, status=status)

    def to_dict(self) -> dict:
        """The whole document in sealos' layout."""
        spec: dict[str, Any] = dict(self.extra)
        spec["hosts"] = [h.to_dict() for h in self.hosts]
        spec["image"] = list(self.images)
        spec["ssh"] = self.ssh.to_dict()
        if self.env:
            spec["env"] = [f"{k}={v}" for k, v in self.env.items()]
        if self.command:
            spec["command"] = list(self.command)
        return {"apiVersion": API_VERSION, "kind": KIND_CLUSTER, "metadata": {**self.metadata, "name": self.name},
                "spec": spec, "status": self.status.to_dict()}

    def masked_dict(self) -> dict:
        """:meth:`to_dict` with SSH passwords and secret env values shown as ``******`` (for printing)."""
        from imgbuild.cluster.env import masked

        out = self.to_dict()
        spec = out["spec"]
        spec["ssh"] = self.ssh.masked()
        if self.env:
            spec["env"] = [f"{k}={v}" for k, v in masked(self.env).items()]
        for host, data in zip(self.hosts, spec["hosts"], strict=True):
            if "ssh" in data:
                data["ssh"] = host.ssh.masked()
            if host.env:
                data["env"] = [f"{k}={v}" for k, v in masked(host.env).items()]
        return out

    @classmethod
    def from_flags(cls, images: Iterable[str], *, masters: str = "", nodes: str = "", user: str = "",
                   passwd: str = "", pk: str = "", pk_passwd: str = "", port: int | None = None,
                   cluster_name: str = DEFAULT_CLUSTER_NAME, env: Iterable[str] | Mapping[str, str] = (),
                   single: bool = False) -> "Cluster":
        """A Cluster from ``run``/``gen`` flags: ``--masters 10.0.0.2,10.0.0.3:2222 --nodes 10.0.0.4-10.0.0.9``.

        ``single`` runs everything on this machine (master ``127.0.0.1``). Raises InputError naming the flag.
        """
        images = _flag_images(images)
        problem = name_problem(cluster_name)
        if problem:
            raise InputError(problem, "--cluster")
        if port is not None and not 0 < port < 65536:
            raise InputError(f"port {port} is not from 1 to 65535", "--port")
        if single:
            if masters or nodes:
                raise InputError("--single runs the cluster on this machine; it takes no --masters or --nodes")
            masters = "127.0.0.1"
        if not masters.strip():
            raise InputError("no master given: use --masters IP[,IP...] (or --single for this machine)")
        default_port = port or DEFAULT_SSH_PORT
        master_ips = _flag_hosts(masters, "--masters", default_port)
        node_ips = _flag_hosts(nodes, "--nodes", default_port)
        _no_duplicates(master_ips + node_ips)
        hosts = _group_by_port(master_ips, (MASTER,)) + _group_by_port(node_ips, (NODE,))
        ssh = SSH(user=user or "root", passwd=passwd, pk=pk, pk_passwd=pk_passwd, port=default_port)
        return cls(name=cluster_name, images=images, hosts=tuple(hosts), ssh=ssh, env=flag_env(env))


def _flag_images(images: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for image in images:
        problem = image_problem(image)
        if problem:
            raise InputError(problem)
        if image not in out:
            out.append(image)
    if not out:
        raise InputError("no image given: name at least one cluster image")
    return tuple(out)


def _flag_hosts(text: str, flag: str, default_port: int) -> list[str]:
    try:
        endpoints = expand_hosts(text)
    except ValueError as exc:
        raise InputError(str(exc), flag) from None
    out = []
    for endpoint in endpoints:
        address, port = parse_endpoint(endpoint)
        out.append(format_endpoint(address, port or default_port))
    return out


def _no_duplicates(endpoints: list[str]) -> None:
    seen: set[str] = set()
    for endpoint in endpoints:
        address, _ = parse_endpoint(endpoint)
        if address in seen:
            raise InputError(f"host {address} is given twice in --masters/--nodes")
        seen.add(address)


def _group_by_port(endpoints: list[str], roles: tuple[str, ...]) -> list[Host]:
    """One Host per SSH port, in order of first appearance (so master0's group comes first), as sealos does."""
    groups: dict[int, list[str]] = {}
    for endpoint in endpoints:
        groups.setdefault(parse_endpoint(endpoint)[1] or DEFAULT_SSH_PORT, []).append(endpoint)
    return [Host(ips=tuple(ips), roles=roles) for ips in groups.values()]


def flag_env(env: Iterable[str] | Mapping[str, str]) -> FrozenMap:
    """``-e`` values: ``KEY=VALUE`` items (InputError naming ``-e`` for a bad one) or a mapping."""
    if isinstance(env, Mapping):
        return FrozenMap(env)
    out = {}
    for item in env:
        try:
            key, value = parse_env_item(item)
        except ValueError as exc:
            raise InputError(str(exc), "-e") from None
        out[key] = value
    return FrozenMap(out)


@dataclass(frozen=True)
class Config:
    """A ``kind: Config`` document: change file ``path`` of matching images with ``data`` by ``strategy``."""

    name: str
    path: str
    data: str = ""
    match: str = ""
    strategy: str = DEFAULT_STRATEGY
    metadata: Mapping[str, Any] = field(default_factory=dict)
    where: str = field(default="", compare=False)

    def __repr__(self) -> str:  # data may hold passwords: its size only
        return (f"Config(name={self.name!r}, path={self.path!r}, match={self.match!r}, strategy={self.strategy!r}, "
                f"data=<{len(self.data)} chars>)")

    def matches(self, image: str) -> bool:
        """True if this Config applies to ``image`` (no ``match``: every image; else a glob on its name forms)."""
        if not self.match:
            return True
        return any(fnmatchcase(form, self.match) for form in _name_forms(image))

    def to_dict(self) -> dict:
        """sealos' mapping."""
        spec = {"path": self.path, "data": self.data}
        if self.match:
            spec["match"] = self.match
        if self.strategy:
            spec["strategy"] = self.strategy
        return {"apiVersion": API_VERSION, "kind": KIND_CONFIG, "metadata": {**self.metadata, "name": self.name},
                "spec": spec}


def _name_forms(image: str) -> list[str]:
    """``image`` as written, normalised (``docker.io/library/x:latest``) and familiar (``x:latest``)."""
    from imgbuild.reference import parse_reference

    forms = [image]
    try:
        ref = parse_reference(image)
    except InvalidReference:
        return forms
    return forms + [ref.normalized, ref.familiar]
