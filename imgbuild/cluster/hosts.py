"""Hosts as sealos names them: addresses, ``ip:port``, ranges, roles, SSH settings and the flat machine list.

A Clusterfile lists hosts in groups (``ips`` + ``roles``); the engine wants one
:class:`Machine` per address with its effective SSH settings and env. This
module parses what users write (``10.0.0.2``, ``10.0.0.2:2222``, ``[fd00::2]:22``,
``fd00::2``, ranges ``10.0.0.4-10.0.0.9`` and CIDRs on the command line), checks
roles against sealos' vocabulary (``master``, ``node``, ``registry``; other tags
such as ``amd64`` are kept) and names what is wrong in one line. Addresses are
IP literals, as sealos requires; they are normalised (``fd00:0::2`` is
``fd00::2``) so the same host written twice is found.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field, fields, replace
from imgbuild.cluster.env import FrozenMap

__all__ = [
    "MASTER", "NODE", "REGISTRY", "ROLES", "ARCH_TAGS", "DEFAULT_SSH_PORT", "MAX_RANGE",
    "SSH", "SSH_KEYS", "Machine", "parse_endpoint", "format_endpoint", "expand_hosts", "role_problem", "role_set",
]

MASTER = "master"
NODE = "node"
REGISTRY = "registry"
ROLES = (MASTER, NODE, REGISTRY)
"""The roles imgbuild acts on; a host needs at least one of them."""

ARCH_TAGS = ("amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "loong64", "mips64le")
"""Architecture tags sealos adds to a host's roles (``roles: [master, amd64]``)."""

DEFAULT_SSH_PORT = 22
MAX_RANGE = 65536
"""The most addresses one range or CIDR on the command line may expand to."""

_ALIASES = {"worker": NODE, "workers": NODE, "control-plane": MASTER, "controlplane": MASTER}
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class SSH:
    """SSH settings as sealos spells them (``user``, ``passwd``, ``pk``, ``pkPasswd``, ``port``, ...)."""

    user: str = ""
    passwd: str = ""
    pk: str = ""
    pk_passwd: str = ""
    port: int | None = None
    pk_name: str = ""
    pk_data: str = ""

    _KEYS = {"user": "user", "passwd": "passwd", "pk": "pk", "pk_passwd": "pkPasswd", "port": "port",
             "pk_name": "pkName", "pk_data": "pkData"}
    _SECRET = ("passwd", "pk_passwd", "pk_data")

    def overlay(self, other: "SSH | None") -> "SSH":
        """These settings with every field ``other`` sets replacing ours (sealos' per-host override)."""
        if other is None:
            return self
        changes = {f.name: getattr(other, f.name) for f in fields(other) if getattr(other, f.name) not in ("", None)}
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """The sealos mapping, set fields only (``pkPasswd`` spelling)."""
        return {key: getattr(self, attr) for attr, key in self._KEYS.items() if getattr(self, attr) not in ("", None)}

    def masked(self) -> dict:
        """:meth:`to_dict` with passwords and key data replaced by ``******``."""
        out = self.to_dict()
        for attr in self._SECRET:
            if self._KEYS[attr] in out:
                out[self._KEYS[attr]] = "******"
        return out

    def __repr__(self) -> str:
        return f"SSH({', '.join(f'{k}={v!r}' for k, v in self.masked().items())})"


SSH_KEYS = {v: k for k, v in SSH._KEYS.items()}  # noqa: SLF001 - sealos key -> attribute


@dataclass(frozen=True)
class Machine:
    """One host to act on: its address, SSH port, roles, host-level env and effective SSH settings."""

    address: str
    port: int
    roles: tuple[str, ...]
    env: FrozenMap = field(default_factory=FrozenMap)
    ssh: SSH = field(default_factory=SSH)

    @property
    def endpoint(self) -> str:
        """``ip:port`` (``[v6]:port`` for IPv6), the key sealos writes in ``ips``."""
        return format_endpoint(self.address, self.port)

    @property
    def is_master(self) -> bool:
        """True if the host has the ``master`` role."""
        return MASTER in self.roles

    @property
    def arch(self) -> str | None:
        """The architecture tag among the roles (``amd64``, ``arm64`` ...), if any."""
        return next((r for r in self.roles if r in ARCH_TAGS), None)


def format_endpoint(address: str, port: int | None) -> str:
    """``address:port``, bracketing IPv6 addresses; just the address when ``port`` is None."""
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 0 < int(text) < 65536:
        raise ValueError(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def parse_endpoint(text: str) -> tuple[str, int | None]:
    """``10.0.0.2``, ``10.0.0.2:22``, ``fd00::2``, ``[fd00::2]:22`` -> (normalised address, port or None).

    Raises ``ValueError`` with a one-line message for anything else.
    """
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not [ipv6]:port")
        address = _ip(host)
        if ":" not in address:
            raise ValueError(f"{text!r}: only IPv6 addresses are written in brackets")
        return address, _port(rest[1:]) if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return _ip(host), _port(port)
    return _ip(text), None


def _range(text: str) -> list[str]:
    first, _, last = text.partition("-")
    try:
        a, b = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a range of two IP addresses (10.0.0.4-10.0.0.9)") from None
    if a.version != b.version:
        raise ValueError(f"{text!r} mixes IPv4 and IPv6")
    if a > b:
        raise ValueError(f"range {text!r} starts after it ends")
    if int(b) - int(a) >= MAX_RANGE:
        raise ValueError(f"range {text!r} has more than {MAX_RANGE} addresses")
    return [str(type(a)(int(a) + i)) for i in range(int(b) - int(a) + 1)]


def _cidr(text: str) -> list[str]:
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not a CIDR (10.0.0.0/30)") from None
    if net.num_addresses > MAX_RANGE:
        raise ValueError(f"{text!r} has more than {MAX_RANGE} addresses")
    return [str(ip) for ip in net]  # network and broadcast addresses included, as sealos does


def expand_hosts(text: str) -> list[str]:
    """A ``--masters``/``--nodes`` value -> endpoints, in order: commas, ``a-b`` ranges, CIDRs, ``ip:port``.

    Raises ``ValueError`` naming the bad item.
    """
    out: list[str] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        if "/" in item:
            out.extend(_cidr(item))
        elif "-" in item:
            out.extend(_range(item))
        else:
            address, port = parse_endpoint(item)
            out.append(format_endpoint(address, port))
    return out


def role_problem(role: str) -> str | None:
    """Why ``role`` is wrong (a misspelt known role, an empty or odd tag), or None when it is fine."""
    if not role:
        return "empty role"
    if role in ROLES or role in ARCH_TAGS:
        return None
    lower = role.lower()
    guess = _ALIASES.get(lower) or (lower if lower in ROLES else None)
    if guess is None:
        close = difflib.get_close_matches(lower, ROLES, n=1, cutoff=0.75)
        guess = close[0] if close else None
    if guess is not None:
        return f"unknown role {role!r} (did you mean {guess!r}?)"
    if not _TAG.fullmatch(role):
        return f"role {role!r} is not a tag (letters, digits, '.', '_', '-')"
    return None


def role_set(roles: tuple[str, ...]) -> frozenset[str]:
    """The imgbuild roles (master, node, registry) among ``roles``."""
    return frozenset(r for r in roles if r in ROLES)
