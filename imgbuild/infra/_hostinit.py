"""One sandbox host's start: the files it begins with and the init script that runs as its PID 1.

Before a host starts, its overlay upper directories (``hosts/<n>/upper/<dir>``)
receive what makes it that host: ``/etc/hostname``, ``/etc/hosts`` (every host
of the sandbox), an ``sshd_config`` (root by key only, passwords for other
users, listening on the host's address) and root's ``authorized_keys``. Each
directory made in an upper layer copies the mode and owner of the machine's
directory it covers, since overlayfs shows the upper directory's attributes.

The init script runs inside ``unshare --mount --uts --ipc --pid --fork
--mount-proc`` in the host's network namespace: it drops the copies of the
machine's netns mounts, mounts the overlays (the one covering the Home last,
so every upper path is resolved on the machine's tree), hides the sandbox
directory (keys, other hosts' layers), mounts tmpfs ``/run`` and ``/tmp``,
sets the hostname and address, makes the host's own SSH host keys, starts
sshd and then reaps orphaned processes for as long as it lives.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from imgbuild.fsutil import atomic_write

__all__ = ["OVERLAY_DIRS", "FRESH_ROOT", "fresh_root", "overlay_order", "prepare_upper", "init_script", "host_key_lines",
           "update_known_hosts", "CLEAN_PATH"]

OVERLAY_DIRS = ("etc", "usr", "var", "opt", "root", "home")
FRESH_ROOT = "root-lower"
"""Beside ``upper/``: the lower layer of ``/root`` (see :func:`fresh_root`)."""
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_HOST_KEY_TYPES = ("ed25519", "ecdsa")  # not rsa: a 3072-bit key takes seconds of CPU per host


def overlay_order(host_dir: Path) -> list[str]:
    """The overlay directories in mount order: the one that contains ``host_dir`` (if any) last."""
    resolved = host_dir.resolve()
    holding = [d for d in OVERLAY_DIRS if resolved.is_relative_to(Path("/") / d)]
    return [d for d in OVERLAY_DIRS if d not in holding] + holding


def prepare_upper(upper: Path, *, hostname: str, address: str, peers: list[tuple[str, str]],
                  authorized_key: str) -> None:
    """Write the host's identity files into its upper layers (made like the machine's directories)."""
    for d in OVERLAY_DIRS:
        (Path("/") / d).mkdir(mode=0o755, exist_ok=True)  # an overlay needs its lower directory
        _mkdir_like(upper, d)
    hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    hosts += [f"{addr}\t{name}" for name, addr in peers]
    _write(upper, "etc/hostname", hostname + "\n", 0o644)
    _write(upper, "etc/hosts", "\n".join(hosts) + "\n", 0o644)
    _write(upper, "etc/ssh/sshd_config", _sshd_config(hostname, address), 0o644)
    _write(upper, "root/.ssh/authorized_keys", authorized_key.strip() + "\n", 0o600, dir_mode=0o700)
    fresh_root(upper.parent / FRESH_ROOT)


def fresh_root(lower: Path) -> None:
    """The lower layer of a host's ``/root``: Debian's skeleton files, not the machine's root home.

    A new server's root has no dotfiles of the machine running the sandbox (its shell start-up files, tool
    homes, credentials): sshd's ``bash -c`` reads ``~/.bashrc``, and the machine's may run anything.
    """
    lower.mkdir(mode=0o700, exist_ok=True)
    for name in (".bashrc", ".profile"):
        skel = Path("/etc/skel") / name
        if skel.is_file() and not (lower / name).exists():
            atomic_write(lower / name, skel.read_bytes(), mode=0o644, sync=False)


def _sshd_config(hostname: str, address: str) -> str:
    keys = "".join(f"HostKey /etc/ssh/ssh_host_{t}_key\n" for t in _HOST_KEY_TYPES)
    return (
        f"# sshd of imgbuild sandbox host {hostname}\n"
        f"ListenAddress {address}:22\n{keys}"
        "PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nPasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\nUsePAM yes\nUseDNS no\nPrintMotd no\nAcceptEnv LANG LC_*\n"
        "MaxStartups 200:30:400\nMaxSessions 100\nPidFile /run/sshd.pid\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )


def _mkdir_like(upper: Path, rel: str, mode: int | None = None) -> Path:
    """Make ``upper/rel`` and its parents, each with the mode and owner of ``/rel`` (or ``mode``, root)."""
    upper.mkdir(parents=True, exist_ok=True)
    path = upper
    parts = Path(rel).parts
    for i, part in enumerate(parts):
        path = path / part
        lower = Path("/", *parts[: i + 1])
        try:
            st = os.stat(lower)
            want, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
        except FileNotFoundError:
            want, uid, gid = (mode if mode is not None else 0o755), 0, 0
        path.mkdir(exist_ok=True)
        os.chmod(path, want)
        os.chown(path, uid, gid)
    return path


def _write(upper: Path, rel: str, text: str, mode: int, dir_mode: int | None = None) -> None:
    parent = _mkdir_like(upper, str(Path(rel).parent), dir_mode)
    atomic_write(parent / Path(rel).name, text.encode(), mode=mode, sync=False)


def init_script(*, hostname: str, address: str, prefixlen: int, upper: Path, work: Path, order: list[str],
                mask: Path) -> str:
    """The bash script that is PID 1 of the host (see the module docstring for what it does)."""
    q = shlex.quote
    # volatile (Linux 5.10+): no syncs, since a host's layers are thrown away at down; older kernels mount without
    mount = f"mount -t overlay {q('imgb-' + hostname)} -o"
    lower = {d: f"/{d}" for d in order} | {"root": str(upper.parent / FRESH_ROOT)}
    mounts = "".join(f"{mount} {q(o + ',volatile')} /{d} 2>/dev/null || {mount} {q(o)} /{d}\n" for d, o in (
        (d, f"lowerdir={lower[d]},upperdir={upper}/{d},workdir={work}/{d}") for d in order))
    keygen = "".join(f"ssh-keygen -q -t {t} -N '' -f /etc/ssh/ssh_host_{t}_key\n" for t in _HOST_KEY_TYPES)
    return f"""#!/bin/bash
# PID 1 of imgbuild sandbox host {hostname}: filesystems, network, sshd, then reap orphans until killed.
set -eu
for m in $(awk '$2 ~ "^/run/netns(/|$)" {{print $2}}' /proc/self/mounts | sort -r); do
  umount -l "$m" 2>/dev/null || true  # a copied netns mount would keep that namespace alive after its delete
done
{mounts}[ ! -d {q(str(mask))} ] || mount -t tmpfs -o ro,size=16k,mode=0755 imgb-mask {q(str(mask))}
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mkdir -p -m 0755 /run/sshd && mkdir -p -m 1777 /run/lock
hostname {q(hostname)}
ip link set lo up
ip addr add {address}/{prefixlen} dev eth0
ip link set eth0 up
rm -f /etc/ssh/ssh_host_*
{keygen}/usr/sbin/sshd -D -e &
echo "imgbuild sandbox host {hostname}: sshd started"
set +e
while :; do wait; sleep 5; done  # `wait` reaps orphans too (bash reaps every child on SIGCHLD)
"""


def host_key_lines(upper: Path, address: str) -> list[str]:
    """known_hosts lines (``address algorithm key``) for the host keys made in the host's ``upper`` layers."""
    lines = []
    for t in _HOST_KEY_TYPES:
        pub = upper / "etc" / "ssh" / f"ssh_host_{t}_key.pub"
        algorithm, blob = pub.read_text().split()[:2]
        lines.append(f"{address} {algorithm} {blob}")
    return lines


def update_known_hosts(path: Path, drop: set[str], add: list[str]) -> None:
    """Rewrite the known_hosts file ``path`` without the lines of hosts ``drop``, with ``add`` appended (0600)."""
    try:
        old = path.read_text().splitlines()
    except FileNotFoundError:
        old = []
    kept = [ln for ln in old if not (ln.split() and set(ln.split()[0].split(",")) & drop)]
    if kept == old and not add:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, "".join(ln + "\n" for ln in kept + add).encode(), mode=0o600)
