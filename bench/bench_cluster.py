"""Benchmark: the cluster model at 1,000 hosts — load, plan (< 0.5 s), state save/load — and a 10k-input fuzz run.

Run: .venv/bin/python bench/bench_cluster.py [HOSTS]        timings (default 1,000 hosts)
     .venv/bin/python bench/bench_cluster.py fuzz [INPUTS]  the loader fuzz of the test suite, 10,000 inputs by default
Times are the best of five, in CPU seconds (robust on a busy machine).
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from imgbuild.cluster import ClusterState, load_clusterfile, plan
from imgbuild.cluster.env import FrozenMap
from imgbuild.cluster.state import ImageRecord
from imgbuild.home import Home

IMAGES = ["labring/kubernetes:v1.25.0", "labring/helm:v3.8.2", "labring/calico:v3.24.1"]


def clusterfile(hosts: int) -> str:
    """A Clusterfile of ``hosts`` hosts: 3 masters, then node groups of 10 with their own env, every 7th its ssh."""
    out = ["# a big lab cluster\napiVersion: apps.sealos.io/v1beta1\nkind: Cluster\nmetadata:\n  name: big\n",
           "spec:\n  image:\n" + "".join(f"  - {i}\n" for i in IMAGES),
           "  ssh: {user: root, passwd: s3cret, port: 22}\n  env: [registryDomain=hub.lab, criData=/data/cri]\n",
           "  hosts:\n  - ips: [127.1.0.1:22, 127.1.0.2:22, 127.1.0.3:22]\n    roles: [master, amd64]\n"]
    for g, start in enumerate(range(3, hosts, 10)):
        ips = ", ".join(f"127.1.{(start + i) // 250}.{(start + i) % 250 + 1}:22" for i in range(min(10, hosts - start)))
        out.append(f"  - ips: [{ips}]\n    roles: [node, amd64]\n    env: [GROUP=g{g}]\n")
        if g % 7 == 0:
            out.append("    ssh: {user: ops, pk: /root/.ssh/ops}\n")
    return "".join(out)


def best(fn, repeat: int = 5) -> float:  # noqa: ANN001
    """Best CPU time of ``repeat`` runs of ``fn``."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def _state(cf) -> ClusterState:  # noqa: ANN001
    state = ClusterState.new(cf)
    state.created = "2024-05-01T12:00:00Z"
    state.images = {ref: ImageRecord("sha256:" + "0" * 64, "rootfs" if i == 0 else "application")
                    for i, ref in enumerate(IMAGES)}
    for m in cf.cluster.machines():
        host = state.host(m.address)
        host.arch, host.hostname = "amd64", f"h-{m.address}"
        host.holds = {ref: {"manifest": "sha256:" + "1" * 64, "transfer": "sha256:" + "2" * 64} for ref in IMAGES}
        host.rendered = {f"etc/f{i}.yaml": "3" * 64 for i in range(5)}
        host.done = {f"init@sha256:{'0' * 64}"}
    return state


def timings(hosts: int) -> dict[str, float]:
    """Print and return the timings at ``hosts`` hosts."""
    text = clusterfile(hosts)
    cf = load_clusterfile(text)
    state = _state(cf)
    c = cf.cluster
    groups = list(c.hosts)
    desired = replace(c, hosts=tuple(groups[:-2] + [replace(groups[-1], env=FrozenMap({"GROUP": "changed"}))]),
                      images=c.images + ("labring/openebs:v3.3.0",))
    actions = plan(desired, state)
    t_load = best(lambda: load_clusterfile(text))
    t_plan = best(lambda: plan(desired, state))
    t_noop = best(lambda: plan(c, state))
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp))
        t_save = best(lambda: state.save(home))
        t_read = best(lambda: ClusterState.load(home, "big"))
        size = state.path(home, "big").stat().st_size
    print(f"{len(c.machines())} hosts, {text.count(chr(10))} lines: load {t_load:.3f}s")
    print(f"plan() with {len(actions)} actions: {t_plan:.3f}s   no-op plan(): {t_noop:.3f}s   (target < 0.5 s)")
    print(f"state save {t_save:.3f}s   load {t_read:.3f}s   ({size / 1e6:.1f} MB)")
    return {"plan_s": t_plan, "load_s": t_load, "state_save_s": t_save, "state_load_s": t_read}


def fuzz(inputs: int) -> dict[str, float]:
    """Run the test suite's loader fuzz with ``inputs`` inputs."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.unit.cluster.test_fuzz import run_fuzz

    t0 = time.perf_counter()
    run_fuzz(inputs)
    elapsed = time.perf_counter() - t0
    print(f"fuzz: {inputs} inputs, no traceback, {elapsed:.0f}s")
    return {"fuzz_inputs": inputs}


def main() -> dict[str, float]:
    """Run the timings (or the fuzz, with ``fuzz`` as first argument)."""
    args = sys.argv[1:]
    if args and args[0] == "fuzz":
        return fuzz(int(args[1]) if len(args) > 1 else 10_000)
    return timings(int(args[0]) if args else 1000)


if __name__ == "__main__":
    main()
