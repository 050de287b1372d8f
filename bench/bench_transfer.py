"""Shipping a tree to hosts: imgbuild's transfer vs ``tar -c | ssh tar -x`` and ``scp -r``, on sandbox hosts.

The tree is bench_layer's ~600 MB / ~3,000-file tree (12 x 40 MiB blobs half
random half text, 3,000 small text files), made once under /tmp. Four sandbox
hosts (``imgbuild.infra.sandbox``: network namespaces on this machine, each
with its own sshd, reached over a veth switch) are made in a Home under /tmp
and removed at the end. Destinations are under /tmp on each host, the host's
tmpfs (so this machine's disk, shared by all hosts, is not what is measured),
and are removed between runs (not timed). Sandbox hosts overlay this machine's
/root, whose .bashrc runs ``pyenv init`` on every SSH command (0.3-0.8 s each,
which no real host has); each bench host gets Debian's /etc/skel/.bashrc in its
own overlay first. Each comparison runs 3 rounds, its contenders in turn within
a round (so load from elsewhere hits both alike); the best time of each counts:

* 1 host: imgbuild (``distribute`` with a fresh SSHPool, so connecting is timed
  too) vs ``tar -c -C tree . | ssh root@host tar -x -C dest`` vs ``scp -r -q``;
* 4 hosts: imgbuild vs four ``tar | ssh tar -x`` pipelines started together;
* unchanged re-send to the 4 hosts (fresh pool: connect, read each marker, compare);
* one changed file (same size, as in a rebuilt image): re-send to the 4 hosts, bytes counted (the
  file plus the new gzip'd marker).

The changed files (bytes reversed in place) are restored at the end.

Both sides share this machine's 2 cores with the hosts' sshd and tar. The
baseline's ssh runs with its default cipher; imgbuild's stream goes through
``ssh`` too (key login), preferring AES-GCM, with asyncssh for the commands.
Run: ``python -m bench transfer`` (root: the sandbox needs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.bench_layer import make_tree
from imgbuild.engine.exec import LocalExecutor
from imgbuild.engine.ssh import SSHPool, SSHTarget
from imgbuild.engine.transfer import Job, distribute, raise_failures
from imgbuild.home import Home
from imgbuild.infra.sandbox import Sandbox, down_sandbox

__all__ = ["main"]

WORK = Path("/tmp/imgbuild-bench-transfer")
TREE = Path(os.environ.get("IMGBUILD_BENCH_TREE", "/tmp/imgbuild-bench-tree"))
NAME = "imgbbench"
ROUNDS = 3


def _ssh_base(sb: Sandbox) -> list[str]:
    return ["ssh", "-q", "-i", str(sb.key_file), "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]


def _clean(sb: Sandbox, host, path: str) -> None:
    subprocess.run([*_ssh_base(sb), f"root@{host.address}", f"rm -rf {path}; sync"], check=True)


def _timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    took = time.perf_counter() - start
    print(f"  {label:<52} {took:7.2f} s", flush=True)
    return took


def _tar_ssh(sb: Sandbox, hosts, dest: str) -> None:
    procs = []
    for h in hosts:
        cmd = (f"tar -c -C {TREE} . | {' '.join(_ssh_base(sb))} root@{h.address} "
               f"'mkdir -p {dest} && tar -x -p -C {dest}'")
        procs.append(subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd]))
    if any(p.wait() for p in procs):
        raise RuntimeError("tar | ssh failed")


def _scp(sb: Sandbox, host, dest: str) -> None:
    subprocess.run(["scp", "-r", "-q", "-i", str(sb.key_file), "-o", "StrictHostKeyChecking=no", "-o",
                    "UserKnownHostsFile=/dev/null", str(TREE), f"root@{host.address}:{dest}"], check=True)


def _ours(sb: Sandbox, hosts, dest: str, home: Home) -> list:
    with SSHPool(known_hosts=home.known_hosts, max_parallel=32) as pool:
        jobs = [Job(pool.executor(SSHTarget(h.address, key_file=str(sb.key_file))), TREE, dest) for h in hosts]
        results = distribute(jobs)
    raise_failures(results)
    return results


def _clean_all(sb: Sandbox, hosts, *paths: str) -> None:
    for h in hosts:
        _clean(sb, h, " ".join(paths))


def _rounds(label: str, pairs: list, before) -> list[float]:
    """ROUNDS rounds of every (label, fn) in turn, ``before()`` untimed ahead of each; the best time of each."""
    best = [float("inf")] * len(pairs)
    for r in range(ROUNDS):
        print(f"{label}, round {r + 1}:", flush=True)
        for i, (name, fn) in enumerate(pairs):
            before()
            best[i] = min(best[i], _timed(name, fn))
    return best


def _run(sb: Sandbox, home: Home) -> dict[str, float]:
    one, four = sb.hosts[:1], sb.hosts
    held: dict[str, list] = {}
    ours1, tar1, scp1 = _rounds("1 host, 600 MB / 3,000 files", [
        ("imgbuild distribute", lambda: held.__setitem__("one", _ours(sb, one, "/tmp/ours", home))),
        ("tar -c | ssh tar -x", lambda: _tar_ssh(sb, one, "/tmp/tar")),
        ("scp -r", lambda: _scp(sb, one[0], "/tmp/scp"))], lambda: _clean_all(sb, one, "/tmp/ours", "/tmp/tar",
                                                                              "/tmp/scp"))
    first = held["one"][0]
    print(f"    zstd: {first.compressed} ({first.zstd_why}), {first.bytes / 1e6:.0f} MB streamed")
    ours4, tar4 = _rounds("4 hosts", [
        ("imgbuild distribute", lambda: _ours(sb, four, "/tmp/ours", home)),
        ("4 x tar -c | ssh tar -x in parallel", lambda: _tar_ssh(sb, four, "/tmp/tar"))],
        lambda: _clean_all(sb, four, "/tmp/ours", "/tmp/tar"))
    _ours(sb, four, "/tmp/ours", home)
    (same,) = _rounds("unchanged re-send to 4 hosts (fresh connections)", [
        ("imgbuild distribute", lambda: held.__setitem__("same", _ours(sb, four, "/tmp/ours", home)))],
        lambda: None)
    assert all(r.unchanged for r in held["same"])
    victims = iter(sorted((TREE / "small").rglob("*.txt"))[:ROUNDS])
    changed_files: list[Path] = []

    def change_one() -> None:
        victim = next(victims)
        victim.write_bytes(victim.read_bytes()[::-1])  # same size
        changed_files.append(victim)

    try:
        (changed,) = _rounds("one changed file, 4 hosts", [
            ("imgbuild distribute", lambda: held.__setitem__("changed", _ours(sb, four, "/tmp/ours", home)))],
            change_one)
    finally:
        for victim in changed_files:
            victim.write_bytes(victim.read_bytes()[::-1])
    sent = held["changed"]
    print(f"    files sent per host: {[r.sent_files for r in sent]}, bytes: {[r.bytes for r in sent]}")
    return {"one_host_vs_tar_ssh": ours1 / tar1, "scp_vs_one_host": scp1 / ours1,
            "four_hosts_vs_4_tar_ssh": ours4 / tar4, "unchanged_4_hosts_s": same,
            "one_changed_file_4_hosts_s": changed, "one_changed_file_bytes_per_host": float(sent[0].bytes)}


def main() -> dict[str, float]:
    """Make the tree and a 4-host sandbox, run the comparisons once, remove the sandbox; return the ratios."""
    if os.geteuid() != 0:
        print("bench transfer needs root (sandbox hosts)")
        return {}
    make_tree(TREE)
    shutil.rmtree(WORK, ignore_errors=True)  # the tree itself is kept for the next run
    home = Home(WORK / "home").ensure()
    local = LocalExecutor()
    down_sandbox(home, NAME, local)
    sb = Sandbox.up(home, NAME, 4, local)
    try:
        for h in sb.hosts:
            local.run(h.nsenter_argv(["cp", "/etc/skel/.bashrc", "/root/.bashrc"]))
        return _run(sb, home)
    finally:
        down_sandbox(home, NAME, local)
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value:.2f}")
