"""Registry fan-out (``--distribute registry``) vs direct SSH distribution: where does it overtake?

A cluster of one registry host plus N other hosts (N = 1, 2, 4, 8) receives bench_layer's ~600 MB /
~3,000-file tree (half random, half text: zstd -1 makes it 57%) at a destination on each host's tmpfs.

* direct: imgbuild's transfer streams the tree from this machine to all N+1 hosts over SSH, in parallel;
* registry: as the engine does it: the tree is published as the fan-out artifact (one zstd -1 tar stream in a
  registry/ directory; timed, a first run pays it), the registry host receives the artifact and expands the
  tree from it (``seed_registry_host``), gets the rest by the incremental transfer, a stock docker-registry is
  started there on it, and the N hosts fetch it in parallel with ``curl | zstd -d | tar -x`` and then get the
  incremental transfer's pass (nothing to send: the marker matches).

Two link settings: uncapped (veth: the hosts share this machine's 2 cores, so this compares work per byte --
SSH encryption on both ends against plain HTTP and a decompression -- not links), then every link (this
machine's and each host's) capped at 1 Gbit/s with tc tbf (this kernel has tbf, not netem), as in a data
centre: there the direct way pushes (N+1) trees through this machine's one link, the fan-out one compressed
tree, and the hosts fetch on the registry host's link. Each N runs both ways in turn (hosts cleaned between,
not timed), 2 rounds, best of each; the bytes this machine sent are read from its link's counters.
``<cap>_direct_over_registry_<N>`` is the time ratio: above 1.0 the fan-out is faster.
Run: ``python -m bench fanout`` (root: the sandbox needs it). One run on a quiet machine (2026-12-02): uncapped
0.84 / 0.99 / 1.35 / 2.20 for N = 1 / 2 / 4 / 8, at 1 Gbit/s 0.97 / 1.03 / 1.22 / 1.32; this machine sent 344 MB
with the fan-out for any N, 705-3,460 MB direct (the transfer zstd'd some streams).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.bench_layer import TREE, make_tree
from bench.bench_transfer import _timed
from imgbuild.engine.exec import LocalExecutor
from imgbuild.engine.fanout import blob_url, publish, seed, seed_registry_host
from imgbuild.engine.ssh import SSHPool, SSHTarget
from imgbuild.engine.transfer import Job, distribute, raise_failures
from imgbuild.engine.units import Layer
from imgbuild.home import Home
from imgbuild.infra._netns import machine_link
from imgbuild.infra.sandbox import Sandbox, down_sandbox

__all__ = ["main"]

WORK = Path("/tmp/imgbuild-bench-fanout")
NAME = "imgbfan"
SIZES = (1, 2, 4, 8)
ROUNDS = 2
CAPS = (("uncapped", None), ("1gbit", "1gbit"))  # every link's rate: none, then 1 Gbit/s (tc tbf)
DEST = "/tmp/fanout-dest"
PORT = 5000


def _direct(pool: SSHPool, sb: Sandbox, hosts) -> None:
    jobs = [Job(pool.executor(SSHTarget(h.address, key_file=str(sb.key_file))), TREE, DEST) for h in hosts]
    raise_failures(distribute(jobs))


def _registry(pool: SSHPool, sb: Sandbox, hosts) -> None:
    ex = {h.address: pool.executor(SSHTarget(h.address, key_file=str(sb.key_file))) for h in hosts}
    reg, others = hosts[0], hosts[1:]
    shutil.rmtree(WORK / "fanout", ignore_errors=True)
    art = publish([Layer(TREE)], WORK / "fanout", "bench")
    seed_registry_host(ex[reg.address], art, DEST)
    raise_failures(distribute([Job(ex[reg.address], [Layer(TREE), Layer(art.root, "registry")], DEST)]))
    server = _serve(reg)
    try:
        url = blob_url(reg.address, PORT, art.digest)
        with ThreadPoolExecutor(len(others)) as threads:
            list(threads.map(lambda h: seed(ex[h.address], url, DEST), others))
        raise_failures(distribute([Job(ex[h.address], [Layer(TREE)], DEST) for h in others]))
    finally:
        server.terminate()
        server.wait()


def _serve(host) -> subprocess.Popen:
    """docker-registry inside ``host`` serving DEST/registry, read-only, on PORT; returns once /v2/ answers."""
    conf = (f"version: 0.1\nlog: {{level: error, accesslog: {{disabled: true}}}}\nstorage:\n"
            f"  filesystem: {{rootdirectory: {DEST}/registry}}\n  maintenance: {{readonly: {{enabled: true}}}}\n"
            f"http: {{addr: ':{PORT}'}}\n")
    subprocess.run(host.nsenter_argv(["sh", "-c", "cat > /tmp/fanout-registry.yml"]), input=conf.encode(), check=True)
    proc = subprocess.Popen(host.nsenter_argv(["docker-registry", "serve", "/tmp/fanout-registry.yml"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://{host.address}:{PORT}/v2/", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"docker-registry did not start on {host.address}")


def _clean(local: LocalExecutor, hosts) -> None:
    for h in hosts:
        local.run(h.nsenter_argv(["rm", "-rf", DEST]))


def _cap(local: LocalExecutor, sb: Sandbox, rate: str | None) -> None:
    """Every link sends at most ``rate`` (tc tbf on this machine's link and each host's eth0), or no cap."""
    links = [([], machine_link(sb.name))] + [(["ip", "netns", "exec", h.netns], "eth0") for h in sb.hosts]
    for prefix, dev in links:
        if rate is None:
            local.run([*prefix, "tc", "qdisc", "del", "dev", dev, "root"], check=False)
        else:
            local.run([*prefix, "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", "1mb",
                       "latency", "50ms"])


def _sent_here(sb: Sandbox) -> int:
    """Bytes this machine has sent to the sandbox's switch so far."""
    return int(Path(f"/sys/class/net/{machine_link(sb.name)}/statistics/tx_bytes").read_text())


def _compare(local: LocalExecutor, pool: SSHPool, sb: Sandbox, label: str, out: dict[str, float]) -> None:
    """Both ways for each N, ROUNDS rounds, best time of each; the ratios and the bytes that left this machine."""
    for n in SIZES:
        hosts = sb.hosts[: n + 1]
        best = {"direct": float("inf"), "registry": float("inf")}
        sent = {}
        for r in range(ROUNDS):
            print(f"{label}: 1 registry host + {n}, round {r + 1}:", flush=True)
            for name, fn in (("direct", _direct), ("registry", _registry)):
                _clean(local, hosts)
                before = _sent_here(sb)
                best[name] = min(best[name], _timed(name, lambda fn=fn: fn(pool, sb, hosts)))
                sent[name] = _sent_here(sb) - before
        out[f"{label}_direct_over_registry_{n}"] = best["direct"] / best["registry"]
        print(f"  direct/registry with {n}: {best['direct'] / best['registry']:.2f}; this machine sent "
              f"{sent['direct'] / 1e6:.0f} MB direct, {sent['registry'] / 1e6:.0f} MB registry", flush=True)


def main() -> dict[str, float]:
    """Both ways for each N, links uncapped then capped; the ratios direct/registry."""
    if os.geteuid() != 0:
        print("bench fanout needs root (sandbox hosts)")
        return {}
    make_tree(TREE)
    shutil.rmtree(WORK, ignore_errors=True)
    home = Home(WORK / "home").ensure()
    local = LocalExecutor()
    down_sandbox(home, NAME, local)
    sb = Sandbox.up(home, NAME, max(SIZES) + 1, local)
    out: dict[str, float] = {}
    try:
        with SSHPool(known_hosts=home.known_hosts, max_parallel=32) as pool:
            start = time.perf_counter()
            shutil.rmtree(WORK / "fanout", ignore_errors=True)
            art = publish([Layer(TREE)], WORK / "fanout", "bench")
            print(f"publish: {art.size / 1e6:.0f} MB artifact in {time.perf_counter() - start:.2f} s", flush=True)
            for label, rate in CAPS:
                _cap(local, sb, rate)
                _compare(local, pool, sb, label, out)
            _cap(local, sb, None)
            _clean(local, sb.hosts)
    finally:
        down_sandbox(home, NAME, local)
        shutil.rmtree(WORK, ignore_errors=True)
    return out


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value:.2f}")
