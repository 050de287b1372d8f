"""Shipping a tree to hosts: imgbuild's transfer vs ``tar -c | ssh tar -x`` and ``scp -r``, on sandbox hosts.

The tree is bench_layer's ~600 MB / ~3,000-file tree (12 x 40 MiB blobs half
random half text, 3,000 small text files), made once under /tmp. Sandbox
hosts (``imgbuild.infra.sandbox``: network namespaces on this machine, each
with its own sshd, reached over a veth switch; four, or one for the latency
case alone) are made in a Home under /tmp and removed at the end, Ctrl-C
included. Destinations are under /tmp on each host, the host's
tmpfs (so this machine's disk, shared by all hosts, is not what is measured),
and are removed between runs (not timed). Sandbox hosts overlay this machine's
/root, whose .bashrc runs ``pyenv init`` on every SSH command (0.3-0.8 s each,
which no real host has); each bench host gets Debian's /etc/skel/.bashrc in its
own overlay first. Each comparison runs 3 rounds, its contenders in turn within
a round (so load from elsewhere hits both alike); the best time of each counts.

The ``default`` case:

* 1 host: imgbuild (``distribute`` with a fresh SSHPool, so connecting is timed
  too) vs ``tar -c -C tree . | ssh root@host tar -x -C dest`` vs ``scp -r -q``;
* 4 hosts: imgbuild vs four ``tar | ssh tar -x`` pipelines started together;
* unchanged re-send to the 4 hosts (fresh pool: connect, read each marker, compare);
* one changed file (same size, as in a rebuilt image): re-send to the 4 hosts, bytes counted (the
  file plus the new gzip'd marker).

The changed files (bytes reversed in place) are restored at the end.

The ``latency`` case: the same 1-host comparison, first direct, then through
a forwarder that adds round-trip time (RTT 0, 0.5 and 2 ms; see
:mod:`bench._latency`), printing scp/ours and ours/tar per RTT. The veth link
has no latency, so scp (OpenSSH >= 9 speaks SFTP: open, writes, close,
setstat for every file, each waiting for its answer) pays nothing there for
its ~4 round trips per file, while a real link costs 0.2-1 ms per round trip
in a data centre and more across sites. The kernel here has no netem, so a
loopback TCP forwarder in its own process (127.0.0.1:<port> -> the host's
sshd) delays every chunk by RTT/2 each way: propagation delay only, no loss,
no bandwidth cap, streams still pipelined. All three contenders connect to
the forwarder's port (imgbuild's SSHTarget carries it, for asyncssh and for
the ``ssh`` binary its big streams use; tar | ssh with ``-p``, scp with
``-P``). The RTT 0 row measures the forwarder's own cost (a loopback hop and
a Python copy each way), printed as tar | ssh through it over tar | ssh direct;
each RTT's label shows the forwarder's measured loopback ping.

Both sides share this machine's 2 cores with the hosts' sshd and tar. The
baseline's ssh runs with its default cipher; imgbuild's stream goes through
``ssh`` too (key login), preferring AES-GCM, with asyncssh for the commands.
Run (root: the sandbox needs it): ``python -m bench transfer`` (the default
case), ``python -m bench transfer latency`` or ``all`` (the harness passes the
words after a benchmark's name to it), or ``IMGBUILD_BENCH_TRANSFER=latency``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from bench._latency import probe_rtt, proxy_process
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
RTTS_MS = (0.0, 0.5, 2.0)  # the latency case: through the forwarder (0: its own cost), after a direct run


def _ssh_base(sb: Sandbox, port: int = 22) -> list[str]:
    return ["ssh", "-q", "-p", str(port), "-i", str(sb.key_file), "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]


def _ends(hosts) -> list[tuple[str, int]]:
    """Where each host is reached: its own address and sshd port (the latency case swaps in a forwarder's)."""
    return [(h.address, 22) for h in hosts]


def _clean(sb: Sandbox, host, path: str) -> None:
    subprocess.run([*_ssh_base(sb), f"root@{host.address}", f"rm -rf {path}; sync"], check=True)


def _timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    took = time.perf_counter() - start
    print(f"  {label:<52} {took:7.2f} s", flush=True)
    return took


def _tar_ssh(sb: Sandbox, ends: list[tuple[str, int]], dest: str) -> None:
    procs = []
    for address, port in ends:
        cmd = (f"tar -c -C {TREE} . | {' '.join(_ssh_base(sb, port))} root@{address} "
               f"'mkdir -p {dest} && tar -x -p -C {dest}'")
        procs.append(subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd]))
    if any(p.wait() for p in procs):
        raise RuntimeError("tar | ssh failed")


def _scp(sb: Sandbox, end: tuple[str, int], dest: str) -> None:
    address, port = end
    subprocess.run(["scp", "-r", "-q", "-P", str(port), "-i", str(sb.key_file), "-o", "StrictHostKeyChecking=no",
                    "-o", "UserKnownHostsFile=/dev/null", str(TREE), f"root@{address}:{dest}"], check=True)


def _ours(sb: Sandbox, ends: list[tuple[str, int]], dest: str, home: Home) -> list:
    with SSHPool(known_hosts=home.known_hosts, max_parallel=32) as pool:
        jobs = [Job(pool.executor(SSHTarget(address, port=port, key_file=str(sb.key_file))), TREE, dest)
                for address, port in ends]
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


def _one_host(sb: Sandbox, home: Home, label: str, end: tuple[str, int]) -> tuple[float, float, float]:
    """The 1-host comparison reaching the host at ``end``: best times of imgbuild, tar | ssh, scp -r."""
    held: dict[str, list] = {}
    ours, tar, scp = _rounds(label, [
        ("imgbuild distribute", lambda: held.__setitem__("one", _ours(sb, [end], "/tmp/ours", home))),
        ("tar -c | ssh tar -x", lambda: _tar_ssh(sb, [end], "/tmp/tar")),
        ("scp -r", lambda: _scp(sb, end, "/tmp/scp"))], lambda: _clean_all(sb, sb.hosts[:1], "/tmp/ours", "/tmp/tar",
                                                                           "/tmp/scp"))
    first = held["one"][0]
    print(f"    zstd: {first.compressed} ({first.zstd_why}), {first.bytes / 1e6:.0f} MB streamed")
    return ours, tar, scp


def _run(sb: Sandbox, home: Home) -> dict[str, float]:
    four = _ends(sb.hosts)
    held: dict[str, list] = {}
    ours1, tar1, scp1 = _one_host(sb, home, "1 host, 600 MB / 3,000 files", four[0])
    ours4, tar4 = _rounds("4 hosts", [
        ("imgbuild distribute", lambda: _ours(sb, four, "/tmp/ours", home)),
        ("4 x tar -c | ssh tar -x in parallel", lambda: _tar_ssh(sb, four, "/tmp/tar"))],
        lambda: _clean_all(sb, sb.hosts, "/tmp/ours", "/tmp/tar"))
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


@contextlib.contextmanager
def _reach(host, rtt_ms: float | None) -> Iterator[tuple[str, int]]:
    """Where to reach ``host``: its sshd directly (None), or a DelayProxy adding ``rtt_ms`` in front of it."""
    if rtt_ms is None:
        yield host.address, 22
        return
    with proxy_process((host.address, 22), rtt_ms / 2000) as port:
        yield "127.0.0.1", port


def _latency(sb: Sandbox, home: Home) -> dict[str, float]:
    """The 1-host comparison direct, then through a DelayProxy per RTT of RTTS_MS: scp/ours and ours/tar per RTT."""
    out: dict[str, float] = {}
    for rtt_ms in (None, *RTTS_MS):
        if rtt_ms is None:
            key, label = "direct", "direct (veth, no forwarder)"
        else:
            ping = probe_rtt(rtt_ms / 2000) * 1e3
            key, label = f"rtt_{rtt_ms:g}ms", f"RTT {rtt_ms:g} ms via the forwarder (its loopback ping {ping:.2f} ms)"
        with _reach(sb.hosts[0], rtt_ms) as end:
            ours, tar, scp = _one_host(sb, home, f"1 host, {label}", end)
        print(f"    {key}: scp/ours {scp / ours:.2f}, ours/tar {ours / tar:.2f}", flush=True)
        out[f"{key}_scp_vs_ours"], out[f"{key}_ours_vs_tar_ssh"] = scp / ours, ours / tar
        out[f"{key}_ours_s"], out[f"{key}_tar_ssh_s"], out[f"{key}_scp_s"] = ours, tar, scp
    if 0.0 in RTTS_MS:
        out["forwarder_cost_tar_ssh"] = out["rtt_0ms_tar_ssh_s"] / out["direct_tar_ssh_s"]
        print(f"    the forwarder's own cost: tar | ssh through it at RTT 0 / direct = "
              f"{out['forwarder_cost_tar_ssh']:.2f}")
    return out


CASES = {"default": (4, _run), "latency": (1, _latency)}


def _cases() -> list[str] | None:
    """The cases asked for (``sys.argv`` or $IMGBUILD_BENCH_TRANSFER, comma-separated; ``all``); None if unknown."""
    asked = sys.argv[1:] or os.environ.get("IMGBUILD_BENCH_TRANSFER", "default").split(",")
    names = list(CASES) if asked == ["all"] else asked
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; available: {', '.join(CASES)}, all")
        return None
    return names


def main() -> dict[str, float]:
    """Make the tree and a sandbox, run the cases asked for once, remove the sandbox; return the ratios."""
    if os.geteuid() != 0:
        print("bench transfer needs root (sandbox hosts)")
        return {}
    names = _cases()
    if names is None:
        return {}
    make_tree(TREE)
    shutil.rmtree(WORK, ignore_errors=True)  # the tree itself is kept for the next run
    home = Home(WORK / "home").ensure()
    local = LocalExecutor()
    down_sandbox(home, NAME, local)
    sb = Sandbox.up(home, NAME, max(CASES[n][0] for n in names), local)
    try:
        for h in sb.hosts:
            local.run(h.nsenter_argv(["cp", "/etc/skel/.bashrc", "/root/.bashrc"]))
        out: dict[str, float] = {}
        for name in names:
            out.update({k if name == "default" else f"{name}_{k}": v for k, v in CASES[name][1](sb, home).items()})
        return out
    finally:
        down_sandbox(home, NAME, local)
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value:.2f}")
