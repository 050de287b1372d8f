"""Local sandbox hosts: small servers made of Linux namespaces on this machine, to try cluster images on.

``Sandbox.up(home, "demo", 3, executor)`` makes hosts ``demo-1`` ... ``demo-3``:
each has its own network namespace (an address on a private switch that the
machine also has an address on, nothing routed elsewhere), its own hostname,
IPC and PID namespace (a ``pkill`` in one host touches only that host), a
writable root filesystem (overlays over ``/etc /usr /var /opt /root /home``,
tmpfs ``/run`` and ``/tmp``) and its own sshd with its own host keys. Root
logs in with the sandbox's key pair (``Home.sandbox/<S>/id_ed25519``); other
users may log in with a password. What a cluster image installs on a host
stays on that host and is gone at ``down``.

State is the record ``Home.sandbox/<S>/sandbox.json`` (written atomically
before anything is made and again when the hosts are up) plus what the kernel
shows (namespaces ``imgb-<S>-*``, the machine's link, the hosts' processes),
so ``ls``, ``down`` and the repair of a half-made sandbox left by a crash
work from both. Changes are serialised machine-wide by a lock file, since
subnets and namespace names are the machine's, not one Home's.

Every command goes through the executor passed in, which must run on this
machine (sandboxes are local by definition); the kernel's state is read from
``/proc``, ``/sys`` and ``/run/netns`` directly. Root only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from imgbuild.engine.exec import Executor, require_tool
from imgbuild.errors import ImgbuildError, InputError
from imgbuild.fsutil import atomic_write
from imgbuild.home import Home
from imgbuild.infra import _hostinit, _netns

__all__ = ["Sandbox", "SandboxHost", "HostSet", "list_sandboxes", "down_sandbox", "require_root", "record_provider", "forget_records",
           "DEFAULT_NAME", "PROVIDERS"]

DEFAULT_NAME = "sandbox"
PROVIDERS = ("netns", "docker")  # docker: containers as hosts, see imgbuild.infra.docker
_LOCK_FILE = Path("/run/lock/imgbuild-sandbox.lock")
_TOOLS = ("ip", "nsenter", "unshare", "setsid", "sshd", "ssh-keygen")
_READY_TIMEOUT = 30.0
_LAUNCH = ('exec >"$1" 2>&1 </dev/null; exec nsenter --net="$2" env -i PATH="$3" LANG=C.UTF-8 '
           'unshare --mount --uts --ipc --pid --fork --mount-proc --propagation private bash "$4"')

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SandboxHost:
    """One host of a sandbox: its name, address, network namespace, directory and init's pid on this machine."""

    name: str
    address: str
    index: int
    netns: str
    dir: Path
    pid: int | None = None
    port: int = 22

    @property
    def upper(self) -> Path:
        """The overlay upper directories (one per covered directory): what this host changed."""
        return self.dir / "upper"

    @property
    def log_file(self) -> Path:
        """The output of the host's init and sshd."""
        return self.dir / "init.log"

    def running(self) -> bool:
        """True while the recorded init is alive as PID 1 in this host's network namespace."""
        return self.pid is not None and _netns.init_pid(self.netns) == self.pid

    def processes(self) -> list[int]:
        """The pids (on this machine) of every process in this host's network namespace."""
        return _netns.pids_in_netns([self.netns])

    def nsenter_argv(self, argv: Sequence[str]) -> list[str]:
        """An argv that runs ``argv`` as root inside this host's namespaces (from this machine), clean env."""
        if not self.running():
            raise ImgbuildError(f"sandbox host {self.name} is not running", self.name)
        return ["nsenter", f"--target={self.pid}", "--mount", "--uts", "--ipc", "--net", "--pid", "--",
                "env", "-i", "-C", "/root", f"PATH={_hostinit.CLEAN_PATH}", "HOME=/root", "USER=root",
                "LOGNAME=root", "LANG=C.UTF-8", *[str(a) for a in argv]]

    def to_dict(self) -> dict:
        """The host as its record (and ``--json``) shows it."""
        return {"name": self.name, "address": self.address, "port": self.port, "index": self.index,
                "netns": self.netns, "pid": self.pid, "dir": str(self.dir)}

    @classmethod
    def from_dict(cls, d: dict) -> "SandboxHost":
        """The host a record describes."""
        return cls(d["name"], d["address"], int(d["index"]), d["netns"], Path(d["dir"]), d.get("pid"),
                   int(d.get("port", 22)))


class HostSet:
    """What every provider's sandbox shares: its directory, key, host lookup, Clusterfile and reuse check."""

    home: Home
    name: str
    subnet: str
    hosts: list  # each with name, address, port, index

    @property
    def dir(self) -> Path:
        """Where this sandbox keeps its record, key pair and hosts' files."""
        return self.home.sandbox / self.name

    @property
    def key_file(self) -> Path:
        """The private key (ed25519, 0600) root's logins on every host accept."""
        return self.dir / "id_ed25519"

    @property
    def record_file(self) -> Path:
        """The record ``sandbox.json``."""
        return self.dir / "sandbox.json"

    def host(self, name_or_address: str):
        """The host with that name (``S-2``), index (``2``) or address."""
        for h in self.hosts:
            if name_or_address in (h.name, h.address, str(h.index)):
                return h
        raise InputError(f"sandbox {self.name} has no host {name_or_address}")

    def clusterfile(self, images: Sequence[str] = (), masters: int = 1) -> str:
        """A Clusterfile (apps.sealos.io/v1beta1 Cluster) naming these hosts, root and the sandbox key."""
        import yaml

        name, ips = self.name, [f"{h.address}:{h.port}" for h in self.hosts]
        if not 1 <= masters <= len(ips):
            raise InputError(f"sandbox {name} has {len(ips)} hosts: masters must be 1 to {len(ips)}")
        hosts = [{"ips": ips[:masters], "roles": ["master"]}]
        if ips[masters:]:
            hosts.append({"ips": ips[masters:], "roles": ["node"]})
        doc = {"apiVersion": "apps.sealos.io/v1beta1", "kind": "Cluster", "metadata": {"name": name},
               "spec": {"hosts": hosts, "image": list(images), "ssh": {"user": "root", "pk": str(self.key_file)}}}
        return yaml.safe_dump(doc, sort_keys=False)

    def _reuse(self, count: int, subnet: str | None):  # -> the same kind of sandbox, marked reused
        if count != len(self.hosts):
            raise InputError(f"sandbox {self.name} is running with {len(self.hosts)} hosts, not {count}; "
                             f"`imgbuild sandbox down {self.name}` first")
        if subnet and subnet != self.subnet:
            raise InputError(f"sandbox {self.name} is running on {self.subnet}, not {subnet}")
        return replace(self, reused=True)  # type: ignore[type-var]


@dataclass(frozen=True)
class Sandbox(HostSet):
    """A set of local hosts on one private switch, made by :meth:`up` and removed by :meth:`down`."""

    home: Home
    name: str
    subnet: str
    gateway: str
    hosts: list[SandboxHost] = field(default_factory=list)
    created: str = ""
    reused: bool = False

    @property
    def link(self) -> str:
        """The machine's interface on the sandbox's switch (it holds :attr:`gateway`)."""
        return _netns.machine_link(self.name)

    @classmethod
    def up(cls, home: Home, name: str, count: int, executor: Executor, subnet: str | None = None,
           on_progress: Progress | None = None) -> "Sandbox":
        """Make (or find running) sandbox ``name`` with ``count`` hosts; a half-made one is removed first."""
        note = on_progress or (lambda _msg: None)
        _check_up_args(name, count)
        with _machine_lock():
            if record_provider(home, name) not in (None, "netns"):
                raise InputError(f"sandbox {name} is a {record_provider(home, name)} sandbox; "
                                 f"`imgbuild sandbox down {name}` first or choose another name")
            existing = _read_record(home, name)
            if existing is not None and existing.state() == "running":
                return existing._reuse(count, subnet)
            _check_owner(home, name)
            if existing is not None or _leftovers(name):
                note(f"removing the half-made sandbox {name} first")
                _teardown(home, name, executor)
            return _create(home, name, count, executor, subnet, note)

    @classmethod
    def load(cls, home: Home, name: str) -> "Sandbox":
        """The sandbox ``name`` as recorded in ``home`` (InputError if there is none)."""
        found = _read_record(home, name)
        if found is None:
            raise InputError(f"no sandbox named {name}", str(home.sandbox))
        return found

    def down(self, executor: Executor) -> None:
        """Stop every process of the hosts, delete links and namespaces, remove layers, key and record."""
        require_root()
        with _machine_lock():
            _teardown(self.home, self.name, executor)

    def state(self) -> str:
        """``running`` (every host up), ``degraded`` (some) or ``stopped`` (none), as the kernel shows now."""
        up = sum(1 for h in self.hosts if h.running())
        if up == len(self.hosts) and up and _netns.link_alias(self.link) is not None:
            return "running"
        return "degraded" if up else "stopped"

    def to_dict(self) -> dict:
        """The sandbox as its record (and ``--json``) shows it."""
        return {"name": self.name, "subnet": self.subnet, "gateway": self.gateway, "link": self.link,
                "created": self.created, "key_file": str(self.key_file),
                "hosts": [h.to_dict() for h in self.hosts]}

    def _save(self) -> None:
        data = json.dumps(self.to_dict(), indent=2).encode()
        atomic_write(self.record_file, data, mode=0o600)


def record_provider(home: Home, name: str) -> str | None:
    """Which provider made sandbox ``name`` of ``home`` (``netns``, ``docker``), or None if there is no record."""
    try:
        return json.loads((home.sandbox / name / "sandbox.json").read_text()).get("provider", "netns")
    except (OSError, ValueError):
        return None


def list_sandboxes(home: Home) -> list[Sandbox]:
    """Every sandbox recorded in ``home``, by name."""
    if not home.sandbox.is_dir():
        return []
    found = (_read_record(home, p.name) for p in sorted(home.sandbox.iterdir()) if p.is_dir())
    return [s for s in found if s is not None]


def down_sandbox(home: Home, name: str, executor: Executor) -> bool:
    """Remove sandbox ``name`` from its record and the kernel's view; False if neither knows it."""
    require_root()
    _netns.validate_name(name)
    with _machine_lock():
        if _read_record(home, name) is None and not _leftovers(name):
            return False
        _check_owner(home, name)
        _teardown(home, name, executor)
    return True


def require_root() -> None:
    """InputError (exit 2) unless this process is root: namespaces, links and mounts need it."""
    if os.geteuid() != 0:
        raise InputError("imgbuild sandbox needs root (it makes network namespaces, links and mounts)")


def _check_up_args(name: str, count: int) -> None:
    require_root()
    _netns.validate_name(name)
    if not 1 <= count <= _netns.MAX_HOSTS:
        raise InputError(f"a sandbox has 1 to {_netns.MAX_HOSTS} hosts, not {count}")
    for tool in _TOOLS:
        require_tool(tool, "install it (Debian: apt-get install iproute2 util-linux openssh-server)")


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    """Hold the machine-wide sandbox lock (subnets and namespace names are shared by every Home)."""
    _LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_record(home: Home, name: str) -> Sandbox | None:
    path = home.sandbox / name / "sandbox.json"
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ImgbuildError(f"unreadable sandbox record: {exc}", str(path)) from exc
    if d.get("provider", "netns") != "netns":
        return None  # another provider's (imgbuild.infra.docker)
    return Sandbox(home, d["name"], d["subnet"], d["gateway"], [SandboxHost.from_dict(h) for h in d["hosts"]],
                   d.get("created", ""))


def _leftovers(name: str) -> list[str]:
    """What the kernel still has of sandbox ``name``: its namespaces and the machine's link."""
    found = _netns.sandbox_netns(name, _netns.netns_names())
    if _netns.link_alias(_netns.machine_link(name)) is not None:
        found.append(_netns.machine_link(name))
    return found


def _check_owner(home: Home, name: str) -> None:
    """Refuse a sandbox name that a live sandbox of another Home uses (its link's alias names that Home)."""
    owner = _netns.link_alias(_netns.machine_link(name))
    if owner and owner != str(home.root) and (Path(owner) / "sandbox" / name / "sandbox.json").exists():
        raise InputError(f"sandbox name {name} is in use by another imgbuild home ({owner}); choose another name")


def _create(home: Home, name: str, count: int, executor: Executor, subnet: str | None,
            note: Progress) -> Sandbox:
    sdir = home.sandbox / name
    if any(c in str(sdir) for c in ",:\n"):
        raise InputError("overlayfs cannot use a path with ',' or ':' for a host's layers", str(sdir))
    net = _netns.choose_subnet(_netns.used_networks(executor), count, subnet)
    gateway, addrs = _netns.addresses(net, count)
    hosts = [SandboxHost(f"{name}-{i}", a, i, _netns.netns_name(name, i), sdir / "hosts" / str(i))
             for i, a in enumerate(addrs, 1)]
    sb = Sandbox(home, name, str(net), gateway, hosts, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    try:
        home.sandbox.mkdir(mode=0o700, parents=True, exist_ok=True)
        sdir.mkdir(mode=0o700)
        sb._save()  # recorded before anything is made: a crash from here on is repaired by the next up/down
        executor.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"imgbuild-sandbox-{name}",
                      "-f", str(sb.key_file)])
        note(f"network {net}: this machine is {gateway} on {sb.link}")
        _netns.setup_network(executor, name, net, count, owner=str(home.root))
        pubkey = sb.key_file.with_suffix(".pub").read_text()
        for h in hosts:
            _launch(executor, sb, h, pubkey, net.prefixlen)
        sb = replace(sb, hosts=_wait_ready(sb, note))
        _hostinit.update_known_hosts(home.known_hosts, set(addrs),
                                     [ln for h in sb.hosts for ln in _hostinit.host_key_lines(h.upper, h.address)])
        sb._save()
        return sb
    except BaseException:
        with contextlib.suppress(Exception):
            _teardown(home, name, executor)
        raise


def _launch(executor: Executor, sb: Sandbox, host: SandboxHost, pubkey: str, prefixlen: int) -> None:
    """Prepare the host's layers and start its init (detached, in its own session) in its namespaces."""
    host.dir.mkdir(parents=True)
    for d in _hostinit.OVERLAY_DIRS:
        (host.dir / "work" / d).mkdir(parents=True)
    _hostinit.prepare_upper(host.upper, hostname=host.name, address=host.address,
                            peers=[(h.name, h.address) for h in sb.hosts], authorized_key=pubkey)
    script = _hostinit.init_script(hostname=host.name, address=host.address, prefixlen=prefixlen,
                                   upper=host.upper, work=host.dir / "work",
                                   order=_hostinit.overlay_order(host.dir), mask=sb.home.sandbox)
    init = host.dir / "init.sh"
    atomic_write(init, script.encode(), mode=0o700, sync=False)
    executor.run(["setsid", "-f", "sh", "-c", _LAUNCH, "imgbuild-sandbox", str(host.log_file),
                  str(_netns.NETNS_DIR / host.netns), _hostinit.CLEAN_PATH, str(init)], timeout=30)


def _wait_ready(sb: Sandbox, note: Progress, timeout: float = _READY_TIMEOUT) -> list[SandboxHost]:
    """Wait until every host's init runs and its sshd accepts connections; the hosts with their init pids."""
    ready: dict[int, SandboxHost] = {}
    start = time.monotonic()
    while len(ready) < len(sb.hosts):
        for h in sb.hosts:
            if h.index in ready:
                continue
            pid = _netns.init_pid(h.netns)
            if pid is None and time.monotonic() - start > 2 and not h.processes():
                raise ImgbuildError(f"sandbox host {h.name} did not start:\n{_tail(h.log_file)}", h.name)
            if pid is not None and _accepts(h.address, h.port):
                ready[h.index] = replace(h, pid=pid)
                note(f"{h.name} is up at {h.address}")
        if time.monotonic() - start > timeout:
            late = next(h for h in sb.hosts if h.index not in ready)
            raise ImgbuildError(f"sandbox host {late.name}'s sshd did not answer within {timeout:.0f}s:\n"
                                f"{_tail(late.log_file)}", late.name)
        if len(ready) < len(sb.hosts):
            time.sleep(0.02)
    return [ready[h.index] for h in sb.hosts]


def _accepts(address: str, port: int) -> bool:
    """True if a TCP connection to a sandbox host's ``address``:``port`` is accepted."""
    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").rstrip()
    except OSError:
        return "  (no log)"
    return "\n".join("  " + ln for ln in text.splitlines()[-lines:]) or "  (empty log)"


def _teardown(home: Home, name: str, executor: Executor) -> None:
    """Kill the hosts' processes, delete the network, forget host keys, remove the directory; verify."""
    recorded = _read_record_quietly(home, name)
    alive = _netns.kill_and_wait(_netns.pids_in_netns(_netns.sandbox_netns(name, _netns.netns_names())))
    if alive:
        raise ImgbuildError(f"processes {alive} of sandbox {name} did not end after SIGKILL")
    _netns.teardown_network(executor, name)
    forget_records(home, name, recorded)
    left = _leftovers(name)
    if left:
        raise ImgbuildError(f"sandbox {name}: the kernel still has {', '.join(left)} after down")


def forget_records(home: Home, name: str, recorded: "HostSet | None") -> None:
    """After a down of either provider: drop the hosts' known_hosts lines and the sandbox directory."""
    if recorded is not None:
        _hostinit.update_known_hosts(home.known_hosts, {h.address for h in recorded.hosts}, [])
    sdir = home.sandbox / name
    if sdir.exists():
        try:
            shutil.rmtree(sdir)
        except OSError as exc:
            raise ImgbuildError(f"cannot remove sandbox directory: {exc.strerror}", exc.filename) from exc


def _read_record_quietly(home: Home, name: str) -> Sandbox | None:
    try:
        return _read_record(home, name)
    except ImgbuildError:
        return None
