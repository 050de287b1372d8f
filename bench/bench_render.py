"""Benchmark: rendering 200 ``*.tmpl`` files for 100 hosts (issue 15 budget: under 2 s).

Run: .venv/bin/python bench/bench_render.py
Two image trees of 200 templates each: the repository's real basefs templates
repeated, and a heavy kubeadm-like one (if/range/with/default/quote/printf/
b64enc/toYaml/nindent/splitList in 30 lines). Each is parsed once with
``TemplateSet.load`` and rendered for 100 hosts with different env: in memory,
with ``render_into`` (atomic writes of 20,000 files) and again unchanged. Prints
CPU and wall times; the ratios are times over the 2 s budget (below 1 is within
it). On a loaded machine trust the CPU ratio: wall time then includes waiting
for a core, and file writes wait for the disk.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from imgbuild.cluster.render import TemplateSet

_ROOT = Path(__file__).resolve().parent.parent
_HEAVY = """# {{ .SEALOS_SYS_CLUSTER_NAME }} node config {{ .idx }}
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {{ .HOST_IP }}
  bindPort: {{ .apiPort | default "6443" }}
nodeRegistration:
  criSocket: {{ .criSocket | default "unix:///run/containerd/containerd.sock" | quote }}
  name: {{ .hostname | lower }}
{{- if eq .role "master" }}
  taints: []
{{- else }}
  taints:
  - effect: NoSchedule
    key: node-role.kubernetes.io/worker
{{- end }}
imageRepository: {{ .registryDomain }}:{{ .registryPort }}/library
{{- with .extraArgs }}
extraArgs:
{{- range $k, $v := . }}
  {{ $k }}: {{ $v | quote }}
{{- end }}
{{- end }}
registry:
  auth: {{ printf "%s:%s" .registryUsername .registryPassword | b64enc }}
labels: {{ .labels | toYaml | nindent 2 }}
mirrors:
{{- range $i, $m := splitList "," .mirrors }}
  - {{ $i }}: {{ trim $m }}
{{- end }}
"""


def _tree(root: Path, heavy: bool) -> None:
    """200 templates: the repository's basefs templates over and over, or the heavy one."""
    real = sorted((_ROOT / "basefs").rglob("*.tmpl"))
    for i in range(200):
        text = _HEAVY if heavy else real[i % len(real)].read_text()
        path = root / f"etc/app{i % 10}/file{i}.conf.tmpl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _referenced(root: Path) -> dict:
    """A value for every top-level variable the templates use (the repository's own may need more over time)."""
    names: set[str] = set()
    for path in root.rglob("*.tmpl"):
        for action in re.findall(r"{{(.*?)}}", path.read_text(), re.S):
            names.update(re.findall(r"(?<![\w$)])\.(\w+)", action))
    return {name: "x" for name in names}


def _env(h: int) -> dict:
    return {
        "HOST_IP": f"127.0.{h // 250}.{h % 250 + 1}", "hostname": f"Node-{h}", "idx": str(h),
        "role": "master" if h < 3 else "node", "registryDomain": "sealos.hub", "registryPort": "5000",
        "registryUsername": "admin", "registryPassword": "passw0rd", "criData": "/var/lib/containerd",
        "etcdData": "/var/lib/etcd", "registryData": "/var/lib/registry", "SEALOS_SYS_CLUSTER_NAME": "default",
        "SEALOS_SYS_PKI": "/etc/pki",
        "SEALOS_SYS_ROOTFS": "/var/lib/sealos/rootfs", "apiPort": "", "criSocket": "",
        "extraArgs": {"v": "2", "feature-gates": "A=true"}, "labels": {"zone": f"z{h % 3}", "tier": "x"},
        "mirrors": "a.example, b.example,c.example",
    }


def _scenario(work: Path, heavy: bool) -> dict[str, float]:
    """Load the tree, render it for 100 hosts in memory, into files, and into unchanged files; CPU and wall times."""
    _tree(work / "image", heavy)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    ts = TemplateSet.load(work / "image")
    times["load"] = time.perf_counter() - t0
    hosts = [{**_referenced(work / "image"), **_env(h)} for h in range(100)]
    steps = {"memory": lambda h, env: ts.render(env),
             "files": lambda h, env: ts.render_into(work / f"hosts/{h}", env),
             "unchanged": lambda h, env: ts.render_into(work / f"hosts/{h}", env)}
    for step, fn in steps.items():
        c0, t0 = time.process_time(), time.perf_counter()
        for h, env in enumerate(hosts):
            fn(h, env)
        times[f"{step}_cpu"], times[f"{step}_wall"] = time.process_time() - c0, time.perf_counter() - t0
    return times


def main() -> dict:
    """Run the benchmark; return its ratios."""
    ratios = {}
    for name, heavy in (("real", False), ("heavy", True)):
        work = Path(tempfile.mkdtemp(prefix="bench-render-"))
        try:
            t = _scenario(work, heavy)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"[{name} templates] load+parse of 200: {t['load']:.3f} s")
        print(f"  render 200 x 100 in memory: {t['memory_wall']:.3f} s wall, {t['memory_cpu']:.3f} s CPU")
        print(f"  render_into 200 x 100 (20,000 files written): {t['files_wall']:.3f} s wall, "
              f"{t['files_cpu']:.3f} s CPU")
        print(f"  render_into again, nothing changed: {t['unchanged_wall']:.3f} s wall, {t['unchanged_cpu']:.3f} s CPU")
        ratios[f"{name}_in_memory_cpu_vs_2s"] = t["memory_cpu"] / 2.0
        ratios[f"{name}_in_memory_wall_vs_2s"] = t["memory_wall"] / 2.0
        ratios[f"{name}_render_into_wall_vs_2s"] = t["files_wall"] / 2.0
    return ratios


if __name__ == "__main__":
    sys.path.insert(0, str(_ROOT))
    main()
