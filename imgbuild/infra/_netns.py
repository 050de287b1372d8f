"""The network of a sandbox and what the kernel shows of it: names, subnet choice, links, namespaces, processes.

One sandbox ``S`` is, in the kernel: a switch namespace ``imgb-S-br`` holding a
bridge ``br0``; per host a namespace ``imgb-S-<n>`` whose ``eth0`` is a veth
plugged into that bridge; and, on the machine, one veth ``ib<tag>`` (also
plugged into the bridge) carrying the machine's address ``.1`` of the subnet.
The bridge lives in its own namespace, not on the machine, so the machine's
firewall (br_netfilter hands bridged frames to iptables, and docker sets
``FORWARD DROP``) never sees traffic between hosts. Nothing is routed: the
hosts have no default route and ip_forward/NAT are left alone.

The kernel is read directly (``/run/netns``, ``/sys/class/net``, ``/proc``):
a sandbox is local to this machine by definition. Commands that change it go
through the executor passed in.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Iterable

from imgbuild.engine.exec import Executor
from imgbuild.errors import ImgbuildError, InputError

__all__ = [
    "NETNS_DIR", "validate_name", "netns_name", "switch_netns", "machine_link", "sandbox_netns",
    "used_networks", "choose_subnet", "addresses", "setup_network", "teardown_network", "netns_names",
    "link_alias", "ns_id", "pids_in_netns", "init_pid", "kill_and_wait", "rss_kib", "MAX_HOSTS",
]

NETNS_DIR = Path("/run/netns")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_POOLS = ("10.213.0.0/16", "10.216.0.0/13")  # clear of kubernetes' usual ranges (10.96/12, 10.244/16, 10.42/15)
MAX_HOSTS = 250


def validate_name(name: str) -> str:
    """``name`` if it is a valid sandbox name (DNS-label characters, 2-32 long, starting with a letter)."""
    if not _NAME.match(name or ""):
        raise InputError(f"invalid sandbox name {name!r}: use 2-32 of a-z 0-9 -, starting with a letter")
    return name


def netns_name(sandbox: str, index: int) -> str:
    """The network namespace of host ``index`` (1-based) of ``sandbox``."""
    return f"imgb-{sandbox}-{index}"


def switch_netns(sandbox: str) -> str:
    """The namespace holding ``sandbox``'s bridge."""
    return f"imgb-{sandbox}-br"


def machine_link(sandbox: str) -> str:
    """The machine's interface on ``sandbox``'s switch (``ib`` + 8 hex digits, within IFNAMSIZ)."""
    return "ib" + hashlib.sha256(sandbox.encode()).hexdigest()[:8]


def sandbox_netns(sandbox: str, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that belong to ``sandbox`` (its hosts' and its switch's namespaces)."""
    pattern = re.compile(rf"^imgb-{re.escape(sandbox)}-(\d+|br)$")
    return sorted(n for n in names if pattern.match(n))


def netns_names() -> list[str]:
    """The named network namespaces (``ip netns list``) as the kernel shows them now."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def used_networks(executor: Executor) -> list[tuple[ipaddress.IPv4Network, str]]:
    """Every IPv4 network this machine routes or has an address in, each with a short description."""
    routes = json.loads(executor.run(["ip", "-4", "-j", "route", "show", "table", "all"]).stdout or "[]")
    links = json.loads(executor.run(["ip", "-4", "-j", "addr", "show"]).stdout or "[]")
    used = []
    for r in routes:
        dst = r.get("dst")
        if not dst or dst == "default":
            continue
        used.append((ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False),
                     f"route {dst}" + (f" dev {r['dev']}" if r.get("dev") else "")))
    for link in links:
        for a in link.get("addr_info", []):
            net = ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False)
            used.append((net, f"address {a['local']}/{a['prefixlen']} on {link.get('ifname', '?')}"))
    return used


def choose_subnet(used: list[tuple[ipaddress.IPv4Network, str]], count: int,
                  requested: str | None = None) -> ipaddress.IPv4Network:
    """``requested`` if it is usable and overlaps nothing in ``used``, else the first free /24 of the pools."""
    if requested:
        net = _parse_subnet(requested, count)
        for other, what in used:
            if net.overlaps(other):
                raise InputError(f"subnet {net} overlaps {what} on this machine; choose another --subnet")
        return net
    prefix = 24 if count + 2 <= 254 else 23
    for pool in _POOLS:
        for net in ipaddress.ip_network(pool).subnets(new_prefix=prefix):
            if not any(net.overlaps(other) for other, _ in used):
                return net
    raise ImgbuildError(f"no free subnet left in {', '.join(_POOLS)}; pass --subnet")


def _parse_subnet(text: str, count: int) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InputError(f"invalid subnet {text!r}: {exc} (example: 10.213.7.0/24)") from exc
    if net.version != 4 or not net.is_private or net.is_loopback or net.is_link_local or net.is_multicast:
        raise InputError(f"subnet {text} must be a private IPv4 network (example: 10.213.7.0/24)")
    if net.num_addresses - 2 < count + 1:
        raise InputError(f"subnet {text} has no room for {count} hosts and the machine's address")
    return net


def addresses(subnet: ipaddress.IPv4Network, count: int) -> tuple[str, list[str]]:
    """The machine's address on the switch (the subnet's first) and the ``count`` hosts' (the next ones)."""
    first = subnet.network_address + 1
    return str(first), [str(first + i) for i in range(1, count + 1)]


def setup_network(executor: Executor, sandbox: str, subnet: ipaddress.IPv4Network, count: int,
                  owner: str) -> None:
    """Create the switch, the hosts' namespaces with their ``eth0`` and the machine's addressed link.

    ``owner`` (which Home made it) is kept as the machine link's alias, so a same-named sandbox of another
    Home is recognised. Hosts configure their own ``eth0`` address when they start.
    """
    sw, link = switch_netns(sandbox), machine_link(sandbox)
    gateway, _ = addresses(subnet, count)
    machine = [f"netns add {sw}"] + [f"netns add {netns_name(sandbox, i)}" for i in range(1, count + 1)]
    machine += [f"link add {link} type veth peer name up0 netns {sw}",
                f"addr add {gateway}/{subnet.prefixlen} dev {link}", f"link set {link} up"]
    switch = ["link set lo up", "link add br0 type bridge", "link set br0 up", "link set up0 master br0 up"]
    for i in range(1, count + 1):
        switch += [f"link add h{i} type veth peer name eth0 netns {netns_name(sandbox, i)}",
                   f"link set h{i} master br0 up"]
    executor.run(["ip", "-batch", "-"], input="\n".join(machine) + "\n")
    executor.run(["ip", "link", "set", "dev", link, "alias", owner])
    executor.run(["ip", "-n", sw, "-batch", "-"], input="\n".join(switch) + "\n")


def teardown_network(executor: Executor, sandbox: str) -> None:
    """Delete the machine's link and every namespace of ``sandbox`` the kernel shows (a missing one is fine)."""
    cmds = [f"netns del {n}" for n in sandbox_netns(sandbox, netns_names())]
    if os.path.exists(f"/sys/class/net/{machine_link(sandbox)}"):
        cmds.insert(0, f"link del {machine_link(sandbox)}")  # the pair goes even if its peer's netns lingers
    if cmds:
        executor.run(["ip", "-force", "-batch", "-"], input="\n".join(cmds) + "\n", check=False)
    if NETNS_DIR.is_dir() and not os.listdir(NETNS_DIR):
        executor.run(["umount", str(NETNS_DIR)], check=False)  # `ip netns add` made it a mount point


def link_alias(link: str) -> str | None:
    """The alias of the machine's interface ``link``, '' when it has none, None when it does not exist."""
    try:
        return Path(f"/sys/class/net/{link}/ifalias").read_text().strip()
    except FileNotFoundError:
        return None


def ns_id(path: str | Path) -> tuple[int, int] | None:
    """The identity (device, inode) of the namespace ``path`` names, or None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def pids_in_netns(netns: Iterable[str]) -> list[int]:
    """Every process whose network namespace is one of the named ``netns``."""
    wanted = {i for i in (ns_id(NETNS_DIR / n) for n in netns) if i}
    return [pid for pid in _pids() if wanted and ns_id(f"/proc/{pid}/ns/net") in wanted]


def init_pid(netns: str) -> int | None:
    """The pid (on this machine) of the process that is PID 1 of its own PID namespace inside ``netns``."""
    for pid in pids_in_netns([netns]):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        nspid = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:")), [])
        if len(nspid) > 1 and nspid[-1] == "1":
            return pid
    return None


def kill_and_wait(pids: list[int], timeout: float = 10.0) -> list[int]:
    """SIGKILL ``pids`` and wait until they are gone; return those still alive after ``timeout``."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _running(p)]
        if alive:
            time.sleep(0.02)
    return alive


def rss_kib(pids: Iterable[int]) -> int:
    """The sum of the resident set sizes of ``pids`` in KiB (processes that ended count 0)."""
    total = 0
    for pid in pids:
        try:
            for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
                if ln.startswith("VmRSS:"):
                    total += int(ln.split()[1])
        except OSError:
            continue
    return total


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie holds no namespace or mount any more)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]
