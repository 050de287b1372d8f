"""Scale a Cluster as ``imgbuild add`` / ``delete`` do: hosts from flags added as new groups, or taken out.

Both return a new :class:`~imgbuild.cluster.model.Cluster` (values are
frozen); the applier then makes the hosts match it. Adding a host the cluster
already has, or removing one it does not have, is an error naming the host
and the flag, so a typo never silently does nothing. Removing master0 is
refused, as sealos refuses it: the cluster's registry and apps live there.
"""

from __future__ import annotations

from dataclasses import replace

from imgbuild.cluster.hosts import DEFAULT_SSH_PORT, MASTER, NODE, expand_hosts, parse_endpoint
from imgbuild.cluster.model import Cluster, Host
from imgbuild.errors import InputError

__all__ = ["with_hosts", "without_hosts"]


def _endpoints(text: str, flag: str, default_port: int) -> list[tuple[str, int]]:
    out = []
    for item in [t for t in text.split(",") if t.strip()]:
        try:
            for addr in expand_hosts(item.strip()):
                ip, port = parse_endpoint(addr)
                out.append((ip, port or default_port))
        except ValueError as exc:
            raise InputError(str(exc), flag) from None
    return out


def with_hosts(cluster: Cluster, *, masters: str = "", nodes: str = "") -> Cluster:
    """``cluster`` with the hosts of ``masters`` / ``nodes`` added (one group per role and port)."""
    default_port = cluster.ssh.port or DEFAULT_SSH_PORT
    have = {(m.address, m.port) for m in cluster.machines()}
    groups = list(cluster.hosts)
    for text, role, flag in ((masters, MASTER, "--masters"), (nodes, NODE, "--nodes")):
        eps = _endpoints(text, flag, default_port)
        for ep in eps:
            if ep in have:
                raise InputError(f"host {ep[0]}:{ep[1]} is already in cluster {cluster.name}", flag)
            have.add(ep)
        by_port: dict[int, list[str]] = {}
        for ip, port in eps:
            by_port.setdefault(port, []).append(ip if port == default_port else f"{ip}:{port}")
        groups += [Host(tuple(ips), (role,)) for ips in by_port.values()]
    if len(groups) == len(cluster.hosts):
        raise InputError("name hosts to add with --masters or --nodes")
    return replace(cluster, hosts=tuple(groups))


def without_hosts(cluster: Cluster, *, masters: str = "", nodes: str = "") -> Cluster:
    """``cluster`` without the hosts of ``masters`` / ``nodes`` (empty groups dropped)."""
    default_port = cluster.ssh.port or DEFAULT_SSH_PORT
    gone: set[str] = set()
    for text, flag in ((masters, "--masters"), (nodes, "--nodes")):
        for ip, port in _endpoints(text, flag, default_port):
            machine = cluster.machine(ip)
            if machine is None or machine.port != port:
                raise InputError(f"host {ip}:{port} is not in cluster {cluster.name}", flag)
            if machine.address == cluster.master0.address:
                raise InputError(f"cannot delete master0 ({ip}): reset the cluster instead", flag)
            gone.add(ip)
    if not gone:
        raise InputError("name hosts to delete with --masters or --nodes")
    groups = []
    for host in cluster.hosts:
        ips = tuple(ip for ip in host.ips if parse_endpoint(ip)[0] not in gone)
        if ips:
            groups.append(replace(host, ips=ips))
    return replace(cluster, hosts=tuple(groups))
