"""Benchmark: the run engine's ``--dry-run`` on 1,000 hosts (target < 2 s and < 200 MB RSS).

Run: .venv/bin/python -m bench engine        (or bench/bench_engine.py [HOSTS])
A rootfs image with lifecycle labels is made in a temporary store; the engine plans a run of it on
3 masters and HOSTS-3 nodes at 127.1.x.y (a dry run reaches no host) and lists every step. Prints the wall
time, the steps planned and the process's peak RSS.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from imgbuild.cluster.model import Cluster
from imgbuild.engine.applier import Engine
from imgbuild.engine.context import Options
from imgbuild.engine.exec import LocalExecutor
from imgbuild.home import Home
from imgbuild.oci.store import open_store
from tests.support.layered_images import make_layered_image

LABELS = {"sealos.io.type": "rootfs", "init": "init.sh", "clean": "clean.sh", "init-registry": "init-registry.sh",
          "join-master": "join-master.sh", "join-node": "join-node.sh"}


def _hosts(n: int) -> list[str]:
    return [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(n)]


def run(hosts: int = 1000) -> dict:
    """Plan a dry run on ``hosts`` hosts; return seconds, steps and peak RSS in MB."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home").ensure()
        store = open_store(home)
        make_layered_image(store, "localhost/bench/rootfs:v1", {"scripts/init.sh": b"true", "etc/a.tmpl": b"x"},
                           labels=LABELS, cmd=("echo hi",))
        addrs = _hosts(hosts)
        cluster = Cluster.from_flags(["localhost/bench/rootfs:v1"], masters=",".join(addrs[:3]),
                                     nodes=",".join(addrs[3:]), cluster_name="big")
        engine = Engine(home, store, LocalExecutor(), None)
        start, cpu = time.perf_counter(), time.process_time()
        result = engine.apply(cluster, Options(dry_run=True))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"hosts": hosts, "seconds": seconds, "cpu": cpu, "steps": len(result.steps), "peak_rss_mb": rss_mb}


def main() -> dict:
    """Print and return the dry-run figures."""
    hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    out = run(hosts)
    print(f"dry run on {out['hosts']} hosts: {out['seconds']:.2f} s wall, {out['cpu']:.2f} s CPU, {out['steps']} steps, "
          f"peak RSS {out['peak_rss_mb']:.0f} MB")
    return {"dry_run_1000_hosts_s": out["seconds"], "dry_run_1000_hosts_cpu_s": out["cpu"],
            "dry_run_peak_rss_mb": out["peak_rss_mb"]}


if __name__ == "__main__":
    main()
