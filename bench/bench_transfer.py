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
own overlay first. One run of each, in this order:

* 1 host: imgbuild (``distribute`` with a fresh SSHPool, so connecting is timed
  too) vs ``tar -c -C tree . | ssh root@host tar -x -C dest`` vs ``scp -r -q``;
* 4 hosts: imgbuild vs four ``tar | ssh tar -x`` pipelines started together;
* unchanged re-send to the 4 hosts (fresh pool: connect, read each marker, compare);
* one changed file (same size, as in a rebuilt image): re-send to the 4 hosts, bytes counted.

Both sides share this machine's 2 cores with the hosts' sshd and tar. The ssh
client is OpenSSH with its default cipher; imgbuild uses asyncssh (AES-GCM).
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


def _run(sb: Sandbox, home: Home) -> dict[str, float]:
    one, four = sb.hosts[:1], sb.hosts
    print("1 host, 600 MB / 3,000 files:", flush=True)
    holder: dict[str, list] = {}
    ours1 = _timed("imgbuild distribute", lambda: holder.setdefault("one", _ours(sb, one, "/tmp/ours", home)))
    first = holder["one"][0]
    print(f"    zstd: {first.compressed} ({first.zstd_why}), {first.bytes / 1e6:.0f} MB streamed")
    tar1 = _timed("tar -c | ssh tar -x", lambda: _tar_ssh(sb, one, "/tmp/tar"))
    scp1 = _timed("scp -r", lambda: _scp(sb, one[0], "/tmp/scp"))
    for path in ("/tmp/ours", "/tmp/tar", "/tmp/scp"):
        _clean(sb, one[0], path)
    print("4 hosts:", flush=True)
    ours4 = _timed("imgbuild distribute", lambda: _ours(sb, four, "/tmp/ours", home))
    for h in four:
        _clean(sb, h, "/tmp/tar")
    tar4 = _timed("4 x tar -c | ssh tar -x in parallel", lambda: _tar_ssh(sb, four, "/tmp/tar"))
    same = _timed("imgbuild unchanged re-send (fresh connections)", lambda: holder.setdefault(
        "same", _ours(sb, four, "/tmp/ours", home)))
    assert all(r.unchanged for r in holder["same"])
    victim = TREE / "small/d00/s0/file-0000.txt"
    original = victim.read_bytes()
    victim.write_bytes(original[::-1])
    try:
        changed = _timed("imgbuild one changed file", lambda: holder.setdefault(
            "changed", _ours(sb, four, "/tmp/ours", home)))
    finally:
        victim.write_bytes(original)
    sent = holder["changed"]
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
    shutil.rmtree(WORK, ignore_errors=True)
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
