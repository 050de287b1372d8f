"""A private podman Docker-API service for the docker tests, with all of its state under one temp directory.

``start_podman(root)`` writes a ``containers.conf`` (runc, cgroupfs, ``default_ulimits = []``,
no event log, CNI configs under ``root``) and a ``storage.conf`` (vfs storage under ``root``),
starts ``podman system service --time=0 unix://<root>/podman.sock`` with ``CONTAINERS_CONF`` /
``CONTAINERS_STORAGE_CONF`` pointing at them, and waits until ``GET /_ping`` answers. Nothing
touches the machine's own podman images or containers. :meth:`PodmanService.stop` kills the
service (and the containers it left) and removes its storage.

``host_image_context(dir)`` makes the build context of a docker sandbox host image offline
(no debootstrap, no registry): bash, sshd, sftp-server, GNU tar and busybox (for the rest
of a shell's tools) copied from this machine with the shared libraries ``ldd`` names, a
passwd/group/shadow with root and sshd's privilege-separation user, and a Kubefile
``FROM scratch`` / ``COPY rootfs /``; imgbuild builds it like any image.
``base_image_context(dir)`` is the same with this machine's Debian python3 (stdlib, venv and
ensurepip's wheels) and buildah: an offline stand-in for ``debian:bookworm-slim`` plus the
packages the repository's Dockerfile would install.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PodmanService", "start_podman", "host_image_context", "base_image_context"]

_CONTAINERS_CONF = """\
[containers]
default_ulimits = []
log_driver = "k8s-file"
netns = "bridge"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
tmp_dir = "{root}/tmp"
static_dir = "{root}/static"
volume_path = "{root}/volumes"

[network]
network_backend = "cni"
network_config_dir = "{root}/cni"
"""

_STORAGE_CONF = """\
[storage]
driver = "vfs"
runroot = "{root}/run"
graphroot = "{root}/graph"
"""


@dataclass
class PodmanService:
    """A running ``podman system service``: its socket, ``DOCKER_HOST`` value and environment."""

    root: Path
    proc: subprocess.Popen
    env: dict[str, str] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        """The Unix socket the Docker API is served on."""
        return self.root / "podman.sock"

    @property
    def docker_host(self) -> str:
        """The ``DOCKER_HOST`` value for this service."""
        return f"unix://{self.socket}"

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``podman`` against this service's storage (for test set-up and checks only)."""
        return subprocess.run(["podman", *args], env=self.env, check=check, capture_output=True, text=True,
                              timeout=120)

    def stop(self) -> None:
        """Stop the service, remove every container it ran, and delete its storage."""
        self.podman("rm", "--all", "--force", "--time", "0", check=False)
        self.podman("network", "prune", "--force", check=False)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["umount", "-R", "-l", str(self.root / "run")], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        try:
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in s.recv(64)
        except OSError:
            return False


def start_podman(root: Path, timeout: float = 30) -> PodmanService:
    """Start a private podman Docker-API service under ``root`` and wait until it answers."""
    root.mkdir(parents=True, exist_ok=True)
    for d in ("tmp", "static", "volumes", "cni", "run", "graph"):
        (root / d).mkdir(exist_ok=True)
    (root / "containers.conf").write_text(_CONTAINERS_CONF.format(root=root))
    (root / "storage.conf").write_text(_STORAGE_CONF.format(root=root))
    env = {**os.environ, "CONTAINERS_CONF": str(root / "containers.conf"),
           "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"), "XDG_RUNTIME_DIR": str(root / "run")}
    sock = root / "podman.sock"
    log = open(root / "service.log", "wb")
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    service = PodmanService(root, proc, env)
    deadline = time.monotonic() + timeout
    while not _answers(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            text = (root / "service.log").read_text(errors="replace")[-2000:]
            service.stop()
            raise RuntimeError(f"podman system service did not start: {text}")
        time.sleep(0.1)
    return service


_HOST_BINARIES = ("/bin/bash", "/usr/sbin/sshd", "/usr/lib/openssh/sftp-server", "/bin/tar", "/bin/busybox")
_BUSYBOX_TOOLS = ("sh cat ls mkdir rm cp mv ln chmod chown echo env id hostname sleep true false head tail grep sed "
                  "awk sort uniq wc cut tr touch date uname ps kill pkill find xargs basename dirname readlink test "
                  "printf stat mktemp md5sum sha256sum gzip gunzip ip ping nc which tee").split()
_ETC = {
    "etc/passwd": ("root:x:0:0:root:/root:/bin/bash\nsshd:x:100:65534::/run/sshd:/bin/false\n", 0o644),
    "etc/group": ("root:x:0:\nnogroup:x:65534:\n", 0o644),
    "etc/shadow": ("root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n", 0o640),
    "etc/nsswitch.conf": ("passwd: files\ngroup: files\nshadow: files\nhosts: files\n", 0o644),
}


def _copy_path(rootfs: Path, path: str) -> None:
    """Copy ``path`` (its directory resolved, a final symlink kept as a symlink and followed) under ``rootfs``."""
    p = Path(path)
    real_dir = p.parent.resolve()
    src = real_dir / p.name
    dest = rootfs / src.relative_to("/")
    if dest.exists() or dest.is_symlink():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        target = os.readlink(src)
        os.symlink(target, dest)
        _copy_path(rootfs, str(real_dir / target))
    else:
        shutil.copy2(src, dest)


def _libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False).stdout
    return re.findall(r"(/\S+\.so[.\d]*) \(0x", out)


def _rootfs(dest: Path, binaries: tuple[str, ...], trees: tuple[str, ...] = ()) -> Path:
    """``dest/rootfs`` with ``binaries`` and their libraries, whole ``trees`` (and the ELF libraries they load)."""
    rootfs = dest / "rootfs"
    rootfs.mkdir(parents=True)
    for top in ("bin", "sbin", "lib", "lib64"):
        if Path("/" + top).is_symlink():
            os.symlink(os.readlink("/" + top), rootfs / top)
    elves = list(binaries)
    for tree in trees:
        shutil.copytree(tree, rootfs / Path(tree).resolve().relative_to("/"), symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "test", "tests", "idlelib", "tkinter"))
        elves += [str(p) for p in Path(tree).rglob("*.so")]
    for binary in elves:
        for path in (binary, *_libraries(binary)):
            _copy_path(rootfs, path)
    return rootfs


def base_image_context(dest: Path) -> Path:
    """The build context of a base with python3 (venv, ensurepip) and buildah, from this machine's files."""
    libc = subprocess.run(["dpkg", "-L", "libc6"], capture_output=True, text=True, check=True).stdout.split()
    rootfs = _rootfs(dest, (*_HOST_BINARIES, "/usr/bin/python3.11", "/usr/bin/buildah"),
                     ("/usr/lib/python3.11", "/usr/share/python-wheels", "/etc/containers"))
    for path in libc:  # all of libc6 (libpthread, libdl...), as a Debian base has it, for wheels' extensions
        if re.search(r"\.so(\.\d+)*$", path) and Path(path).exists():
            _copy_path(rootfs, path)
    _finish(rootfs, dest)
    os.symlink("python3.11", rootfs / "usr/bin/python3")
    return dest


def host_image_context(dest: Path) -> Path:
    """The build context (``rootfs/`` and a Kubefile) of a sandbox host image made from this machine's files."""
    _finish(_rootfs(dest, _HOST_BINARIES), dest)
    return dest


def _finish(rootfs: Path, dest: Path) -> None:
    """Busybox's tools, the directories and /etc files a host needs, and the Kubefile."""
    busybox = rootfs / Path("/bin/busybox").resolve().relative_to("/")
    for tool in _BUSYBOX_TOOLS:
        link = busybox.parent / tool
        if not link.exists() and not (rootfs / "usr/sbin" / tool).exists():
            os.symlink("busybox", link)
    for d, mode in (("etc/ssh", 0o755), ("root", 0o700), ("run", 0o755), ("tmp", 0o1777), ("var/empty", 0o755)):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
        (rootfs / d).chmod(mode)
    for rel, (text, mode) in _ETC.items():
        (rootfs / rel).write_text(text)
        (rootfs / rel).chmod(mode)
    (dest / "Kubefile").write_text('FROM scratch\nCOPY rootfs /\nCMD ["bash"]\n')
