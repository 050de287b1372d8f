"""Sandbox hosts as containers of a Docker daemon (or podman's Docker-compatible service), through the Engine API.

``DockerSandbox.up(home, "demo", 3, daemon, image, executor)`` makes hosts ``demo-1`` ...
``demo-3``: privileged containers of ``image`` on their own bridge network ``imgb-demo``
(a free private /24 chosen as the netns sandboxes choose theirs, so both kinds never
overlap; the machine holds the gateway address, each host a fixed address and every
peer in its ``/etc/hosts``), each running its own sshd as the netns hosts do: root logs
in with the sandbox's key (``Home.sandbox/<S>/id_ed25519``), host keys are made on this
machine and put into the container before it starts, so ``Home.known_hosts`` knows them.
``down`` stops and removes the containers and the network. The host image needs
``bash`` and ``/usr/sbin/sshd`` (with its ``sshd`` privilege-separation user); an image
of imgbuild's store is loaded into the daemon first, a ``docker-daemon:REF`` is used as is.

The record is ``Home.sandbox/<S>/sandbox.json`` with ``"provider": "docker"``; containers
and network carry labels naming the sandbox and the Home, so ``down`` also removes what a
crash left unrecorded. Everything goes through docker-py (:mod:`imgbuild.oci.daemon`);
the executor runs ``ssh-keygen`` and reads this machine's routes.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from imgbuild.engine.exec import Executor
from imgbuild.errors import ImgbuildError, InputError
from imgbuild.fsutil import atomic_write
from imgbuild.home import Home
from imgbuild.infra import _hostinit, _netns
from imgbuild.infra.sandbox import HostSet, Progress, _accepts, forget_records, record_provider
from imgbuild.locks import exclusive_lock
from imgbuild.oci.daemon import Daemon, daemon_ref
from imgbuild.reference import parse_reference

__all__ = ["DockerSandbox", "DockerHost", "list_docker_sandboxes", "down_docker_sandbox", "PROVIDER"]

PROVIDER = "docker"
_LABEL = "io.imgbuild.sandbox"
_HOME_LABEL = "io.imgbuild.home"
_READY_TIMEOUT = 30.0
_SSHD_CONFIG = "/etc/ssh/sshd_config.imgbuild"
_START = (f"mkdir -p -m 0755 /run/sshd; /usr/sbin/sshd -D -e -f {_SSHD_CONFIG} & "
          "while :; do wait; sleep 5; done")  # PID 1: sshd, then reap orphans (bash's wait reaps every child)


@dataclass(frozen=True)
class DockerHost:
    """One container host: its name, address, index, container name and (when asked of the daemon) its state."""

    name: str
    address: str
    index: int
    container: str
    port: int = 22
    status: str = "unknown"

    def running(self) -> bool:
        """True if the daemon said the container runs (when the sandbox was loaded)."""
        return self.status == "running"

    def to_dict(self) -> dict:
        """The host as its record (and ``--json``) shows it."""
        return {"name": self.name, "address": self.address, "port": self.port, "index": self.index,
                "container": self.container}


@dataclass(frozen=True)
class DockerSandbox(HostSet):
    """Container hosts on one bridge network of a daemon, made by :meth:`up` and removed by :func:`down_docker_sandbox`."""

    home: Home
    name: str
    subnet: str
    gateway: str
    image: str
    hosts: list[DockerHost] = field(default_factory=list)
    created: str = ""
    reused: bool = False
    provider: str = PROVIDER

    @property
    def network(self) -> str:
        """The daemon's network the hosts are on."""
        return f"imgb-{self.name}"

    @classmethod
    def up(cls, home: Home, name: str, count: int, daemon: Daemon, image: str, executor: Executor, *,
           store=None, subnet: str | None = None, on_progress: Progress | None = None) -> "DockerSandbox":
        """Make (or find running) docker sandbox ``name`` with ``count`` hosts of ``image``; leftovers go first."""
        note = on_progress or (lambda _msg: None)
        _netns.validate_name(name)
        if not 1 <= count <= _netns.MAX_HOSTS:
            raise InputError(f"a sandbox has 1 to {_netns.MAX_HOSTS} hosts, not {count}")
        with _lock(home):
            if record_provider(home, name) not in (None, PROVIDER):
                raise InputError(f"sandbox {name} is a {record_provider(home, name)} sandbox; "
                                 f"`imgbuild sandbox down {name}` first or choose another name")
            existing = _read_record(home, name, daemon)
            if existing is not None and existing.state() == "running":
                return existing._reuse(count, subnet)
            if (home.sandbox / name).exists() or _labelled(daemon, home, name):
                note(f"removing the half-made sandbox {name} first")
                _teardown(home, name, daemon)
            return _create(home, name, count, daemon, _host_image(daemon, image, store, note), executor, subnet, note)

    def state(self) -> str:
        """``running`` (every host up), ``degraded`` (some) or ``stopped`` (none), as the daemon said at load."""
        up = sum(1 for h in self.hosts if h.running())
        return "running" if up == len(self.hosts) and up else "degraded" if up else "stopped"

    def to_dict(self) -> dict:
        """The sandbox as its record (and ``--json``) shows it."""
        return {"provider": PROVIDER, "name": self.name, "subnet": self.subnet, "gateway": self.gateway,
                "network": self.network, "image": self.image, "created": self.created,
                "key_file": str(self.key_file), "hosts": [h.to_dict() for h in self.hosts]}

    def _save(self) -> None:
        atomic_write(self.record_file, json.dumps(self.to_dict(), indent=2).encode(), mode=0o600)


def list_docker_sandboxes(home: Home, daemon: Daemon | None) -> list[DockerSandbox]:
    """Every docker sandbox recorded in ``home``, by name, with its hosts' states (unknown without a daemon)."""
    if not home.sandbox.is_dir():
        return []
    found = (_read_record(home, p.name, daemon) for p in sorted(home.sandbox.iterdir()) if p.is_dir())
    return [s for s in found if s is not None]


def down_docker_sandbox(home: Home, name: str, daemon: Daemon) -> bool:
    """Stop and remove docker sandbox ``name``'s containers and network; False if neither record nor daemon knows it."""
    _netns.validate_name(name)
    with _lock(home):
        if not (home.sandbox / name / "sandbox.json").exists() and not _labelled(daemon, home, name):
            return False
        _teardown(home, name, daemon)
    return True


@contextlib.contextmanager
def _lock(home: Home) -> Iterator[None]:
    home.sandbox.mkdir(mode=0o700, parents=True, exist_ok=True)
    with exclusive_lock(home.sandbox / ".docker.lock").hold():
        yield


@contextlib.contextmanager
def _api(daemon: Daemon, what: str) -> Iterator[None]:
    """docker-py errors as one-line imgbuild errors naming the daemon and what was being done."""
    import requests
    from docker import errors as derr

    try:
        yield
    except (derr.DockerException, requests.RequestException) as exc:
        detail = getattr(exc, "explanation", None) or exc
        raise ImgbuildError(f"docker daemon: {what}: {detail}", daemon.where) from exc


def _read_record(home: Home, name: str, daemon: Daemon | None) -> DockerSandbox | None:
    path = home.sandbox / name / "sandbox.json"
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ImgbuildError(f"unreadable sandbox record: {exc}", str(path)) from exc
    if d.get("provider") != PROVIDER:
        return None
    states = _states(daemon, home, name) if daemon is not None else {}
    hosts = [DockerHost(h["name"], h["address"], int(h["index"]), h["container"], int(h.get("port", 22)),
                        states.get(h["container"], "absent" if daemon is not None else "unknown")) for h in d["hosts"]]
    return DockerSandbox(home, d["name"], d["subnet"], d["gateway"], d["image"], hosts, d.get("created", ""))


def _filters(home: Home, name: str) -> dict:
    return {"label": [f"{_LABEL}={name}", f"{_HOME_LABEL}={home.root}"]}


def _states(daemon: Daemon, home: Home, name: str) -> dict[str, str]:
    """Container name -> state (running, exited, created...) of the sandbox's containers."""
    with _api(daemon, "list containers"):
        found = daemon.api.containers(all=True, filters=_filters(home, name))
    return {n.lstrip("/"): c.get("State", "unknown") for c in found for n in c.get("Names") or []}


def _labelled(daemon: Daemon, home: Home, name: str) -> bool:
    """True if the daemon has containers or the network of this Home's sandbox ``name``."""
    with _api(daemon, "list networks"):
        nets = daemon.api.networks(names=[f"imgb-{name}"], filters=_filters(home, name))
    return bool(_states(daemon, home, name)) or any(n.get("Name") == f"imgb-{name}" for n in nets)


def _host_image(daemon: Daemon, image: str, store, note: Progress) -> str:
    """The daemon's name for the host image: a docker-daemon:REF as is, a store image loaded into the daemon."""
    ref = daemon_ref(image)
    if ref is not None:
        return ref
    if store is None:
        raise InputError(f"host image {image} is not docker-daemon:REF and no image store was given")
    from imgbuild.oci.daemon import push

    stored = store.image(image)
    name = parse_reference(f"localhost/imgbuild-sandbox-host:{stored.id.hex[:12]}")
    note(f"loading host image {image} into the docker daemon as {name.familiar}")
    push(daemon, store, image, name)
    return name.familiar


def _create(home: Home, name: str, count: int, daemon: Daemon, image: str, executor: Executor,
            subnet: str | None, note: Progress) -> DockerSandbox:
    sdir = home.sandbox / name
    net = _netns.choose_subnet(_netns.used_networks(executor), count, subnet)
    gateway, addrs = _netns.addresses(net, count)
    hosts = [DockerHost(f"{name}-{i}", a, i, f"imgb-{name}-{i}") for i, a in enumerate(addrs, 1)]
    sb = DockerSandbox(home, name, str(net), gateway, image, hosts,
                       datetime.now(timezone.utc).isoformat(timespec="seconds"))
    try:
        sdir.mkdir(mode=0o700)
        sb._save()  # recorded before anything is made: the next up/down removes what a crash leaves
        executor.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"imgbuild-sandbox-{name}",
                      "-f", str(sb.key_file)])
        _network(daemon, sb)
        note(f"network {sb.network} {net}: this machine is {gateway}")
        known = [_start_host(daemon, sb, h, executor) for h in hosts]
        sb = replace(sb, hosts=_wait_ready(daemon, sb, note))
        _hostinit.update_known_hosts(home.known_hosts, set(addrs), [ln for lines in known for ln in lines])
        sb._save()
        return sb
    except BaseException:
        with contextlib.suppress(Exception):
            _teardown(home, name, daemon)
        raise


def _network(daemon: Daemon, sb: DockerSandbox) -> None:
    from docker.types import IPAMConfig, IPAMPool

    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=sb.subnet, gateway=sb.gateway)])
    with _api(daemon, f"create network {sb.network}"):
        daemon.api.create_network(sb.network, driver="bridge", ipam=ipam, labels=_labels(sb))


def _labels(sb: DockerSandbox) -> dict[str, str]:
    return {_LABEL: sb.name, _HOME_LABEL: str(sb.home.root)}


def _start_host(daemon: Daemon, sb: DockerSandbox, host: DockerHost, executor: Executor) -> list[str]:
    """Create the host's container, put its keys and sshd config in, start it; its known_hosts lines."""
    hdir = sb.dir / "hosts" / str(host.index)
    hdir.mkdir(parents=True)
    executor.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(hdir / "host_key")])
    api = daemon.api
    peers = {h.name: h.address for h in sb.hosts if h.name != host.name}
    with _api(daemon, f"create container {host.container}"):
        hc = api.create_host_config(privileged=True, network_mode=sb.network, extra_hosts=peers)
        nc = api.create_networking_config({sb.network: api.create_endpoint_config(ipv4_address=host.address)})
        api.create_container(sb.image, command=["bash", "-c", _START], name=host.container, hostname=host.name,
                             labels=_labels(sb), host_config=hc, networking_config=nc, detach=True)
        api.put_archive(host.container, "/", _host_files(sb, hdir))
        api.start(host.container)
    algorithm, blob = (hdir / "host_key.pub").read_text().split()[:2]
    return [f"{host.address} {algorithm} {blob}"]


def _host_files(sb: DockerSandbox, hdir: Path) -> bytes:
    """A tar of what makes the container a sandbox host: sshd config, host key, root's authorized key."""
    files = [
        ("etc/ssh/ssh_host_ed25519_key", (hdir / "host_key").read_bytes(), 0o600),
        ("etc/ssh/ssh_host_ed25519_key.pub", (hdir / "host_key.pub").read_bytes(), 0o644),
        (_SSHD_CONFIG.lstrip("/"), _sshd_config().encode(), 0o644),
        ("root/.ssh/authorized_keys", sb.key_file.with_suffix(".pub").read_bytes(), 0o600),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d, mode in (("etc/ssh", 0o755), ("root", 0o700), ("root/.ssh", 0o700)):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for path, data, mode in files:
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sshd_config() -> str:
    return ("# sshd of an imgbuild docker sandbox host\nPort 22\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
            "PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nUseDNS no\nPrintMotd no\nAcceptEnv LANG LC_*\n"
            "MaxStartups 200:30:400\nMaxSessions 100\nPidFile /run/sshd.pid\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n")


def _wait_ready(daemon: Daemon, sb: DockerSandbox, note: Progress, timeout: float = _READY_TIMEOUT) -> list[DockerHost]:
    """Wait until every container runs and its sshd accepts connections; the hosts marked running."""
    ready: set[int] = set()
    start = time.monotonic()
    while len(ready) < len(sb.hosts):
        states = _states(daemon, sb.home, sb.name)
        for h in sb.hosts:
            if h.index in ready:
                continue
            if states.get(h.container) not in ("running", "created", "configured", None):
                raise ImgbuildError(f"sandbox host {h.name} stopped ({states[h.container]}):\n{_logs(daemon, h)}",
                                    h.name)
            if states.get(h.container) == "running" and _accepts(h.address, h.port):
                ready.add(h.index)
                note(f"{h.name} is up at {h.address}")
        if len(ready) < len(sb.hosts) and time.monotonic() - start > timeout:
            late = next(h for h in sb.hosts if h.index not in ready)
            raise ImgbuildError(f"sandbox host {late.name}'s sshd did not answer within {timeout:.0f}s:\n"
                                f"{_logs(daemon, late)}", late.name)
        if len(ready) < len(sb.hosts):
            time.sleep(0.05)
    return [replace(h, status="running") for h in sb.hosts]


def _logs(daemon: Daemon, host: DockerHost, lines: int = 8) -> str:
    try:
        text = daemon.api.logs(host.container, tail=lines).decode(errors="replace").rstrip()
    except Exception:  # the logs only decorate an error being raised
        return "  (no log)"
    return "\n".join("  " + ln for ln in text.splitlines()) or "  (empty log)"


def _teardown(home: Home, name: str, daemon: Daemon) -> None:
    """Remove the sandbox's containers (stopped at once) and network, forget host keys, remove its directory."""
    recorded = _read_record(home, name, None)
    with _api(daemon, f"remove sandbox {name}"):
        for c in daemon.api.containers(all=True, filters=_filters(home, name)):
            daemon.api.remove_container(c["Id"], force=True)
        for n in daemon.api.networks(names=[f"imgb-{name}"], filters=_filters(home, name)):
            if n.get("Name") == f"imgb-{name}":
                daemon.api.remove_network(n["Id"])
    forget_records(home, name, recorded)
    if _labelled(daemon, home, name):
        raise ImgbuildError(f"sandbox {name}: the docker daemon still has its containers or network after down",
                            daemon.where)
