"""The runtime images (kubefiles/kubernetes, k3s, k0s over basefs): fetch, lint, plan, render, and their scripts' logic.

These images download kubeadm, k3s and k0s; they cannot run end to end offline. What is tested
instead: fetch.sh against a loopback mirror laid out like dl.k8s.io and GitHub (and its clear
failure without one), every Kubefile lints and plans, every template renders with a host's env
to valid YAML/TOML, the scripts are shellcheck-clean, and on sandbox hosts (2 masters + 1 node)
the lifecycle runs with stand-in binaries that record their arguments: who runs what with which
arguments, the same derived tokens everywhere, nothing run twice on a second run, and clean
leaving the hosts' files exactly as they were before init.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.support.lifecycle_hosts import cli_ok
from tests.support.standins import LOG, VERSIONS, build_mirror, serve, systemctl_standin

ROOT = Path(__file__).resolve().parents[2]
RUNTIMES = ("kubernetes", "k3s", "k0s")
LAYERS = {"kubernetes": ("base", "containerd", "kubernetes"), "k3s": ("base", "k3s"), "k0s": ("base", "k0s")}
BUILD_ARG = {"kubernetes": "KUBE_VERSION", "k3s": "K3S_VERSION", "k0s": "K0S_VERSION"}
TOKEN = "0123456789abcdef0123456789abcdef"  # the cluster token, as -e clusterToken=... gives it


def _fetch(name: str, dest: Path, mirror: str, *args: str) -> subprocess.CompletedProcess:
    if not dest.exists():
        shutil.copytree(ROOT / "kubefiles" / name, dest, ignore=shutil.ignore_patterns("bin", "scripts", "etc",
                                                                                       "images"))
    env = {**os.environ, "BASEFS": str(ROOT / "basefs"), "K8S_URL": f"{mirror}/k8s", "GITHUB_URL": f"{mirror}/gh"}
    return subprocess.run(["bash", str(dest / "fetch.sh"), *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three contexts, each assembled by its fetch.sh from a loopback mirror of stand-ins."""
    top = tmp_path_factory.mktemp("runtime-contexts")
    with serve(build_mirror(top / "mirror")) as url:
        for name in RUNTIMES:
            done = _fetch(name, top / name, url, VERSIONS[name], "amd64")
            assert done.returncode == 0, done.stderr
    return top


def test_fetch_lays_out_binaries_images_and_the_basefs_layers(contexts: Path) -> None:
    k8s = contexts / "kubernetes"
    assert sorted(p.name for p in (k8s / "bin").iterdir()) == sorted(
        ["containerd", "containerd-shim-runc-v2", "crictl", "ctr", "docker-registry", "kubeadm", "kubectl",
         "kubelet", "runc"])
    images = [ln for ln in (k8s / "images/shim/imageList").read_text().splitlines() if not ln.startswith("#")]
    assert "registry.k8s.io/kube-apiserver:v1.28.2" in images and "registry.k8s.io/pause:3.9" in images
    assert (k8s / "scripts/kubernetes.sh").is_file() and (k8s / "scripts/containerd.sh").is_file()
    assert (k8s / "etc/containerd/config.toml.tmpl").read_text() == (
        ROOT / "basefs/kubernetes/etc/containerd/config.toml.tmpl").read_text()  # the later layer wins
    assert sorted(p.name for p in (contexts / "k3s/bin").iterdir()) == ["docker-registry", "k3s"]
    assert [p.name for p in (contexts / "k3s/images").iterdir()] == ["k3s-airgap-images-amd64.tar.zst"]
    assert sorted(p.name for p in (contexts / "k0s/bin").iterdir()) == ["docker-registry", "k0s"]
    assert not (contexts / "k3s/scripts/containerd.sh").exists() and (contexts / "k0s/scripts/k0s.sh").exists()


@pytest.mark.parametrize("name", RUNTIMES)
def test_fetch_without_a_network_fails_naming_the_url(name: str, tmp_path: Path) -> None:
    done = _fetch(name, tmp_path / name, "http://127.0.0.1:9", VERSIONS[name], "amd64")  # nothing listens on :9
    assert done.returncode == 1
    assert "fetch.sh: cannot download http://127.0.0.1:9/" in done.stderr and "no network here?" in done.stderr
    assert not (tmp_path / name / "bin").exists()  # the context is untouched


def test_fetch_refuses_a_bad_version_or_arch(tmp_path: Path) -> None:
    done = _fetch("k3s", tmp_path / "k3s", "http://127.0.0.1:9", "1.28")
    assert done.returncode == 1 and "VERSION must look like v1.28.2" in done.stderr
    done = _fetch("k3s", tmp_path / "k3s", "http://127.0.0.1:9", "v1.28.2+k3s1", "sparc")
    assert done.returncode == 1 and "ARCH must be amd64 or arm64" in done.stderr


@pytest.mark.parametrize("name", RUNTIMES)
def test_kubefiles_lint_and_plan_with_sealos_labels(name: str, contexts: Path, capsys) -> None:
    arg = f"{BUILD_ARG[name]}={VERSIONS[name]}"
    assert json.loads(cli_ok(capsys, "lint", "--json", "--build-arg", arg, str(contexts / name)))["ok"] is True
    plan = json.loads(cli_ok(capsys, "build", "--dry-run", "--json", "--build-arg", arg, str(contexts / name)))
    labels = plan["stages"][-1]["config"]["config"]["Labels"]
    assert labels["sealos.io.type"] == "rootfs" and labels["version"] == VERSIONS[name]
    scripts = {p.name for p in (contexts / name / "scripts").iterdir()}
    for label in ("check", "init", "clean", "init-registry", "clean-registry", "join-master", "join-node"):
        assert labels[label] == f"{label}.sh" and labels[label] in scripts, label


def _env(name: str, contexts: Path, roles: str, ip: str = "127.0.0.2") -> dict[str, str]:
    from imgbuild.builder.plan import make_plan

    plan = make_plan(contexts / name, build_args={BUILD_ARG[name]: VERSIONS[name]})
    env = dict(e.split("=", 1) for e in plan.stages[-1].config["config"]["Env"])
    return {**env, "HOST_IP": ip, "HOST_ROLES": roles, "MASTER0": "127.0.0.2", "MASTERS": "127.0.0.2,127.0.0.3",
            "NODES": "127.0.0.4", "REGISTRY_HOSTS": "127.0.0.2", "SEALOS_SYS_CLUSTER_NAME": "demo",
            "SEALOS_SYS_ROOTFS": "/var/lib/sealos/data/demo/rootfs", "SEALOS_SYS_PKI": "/var/lib/sealos/data/demo/pki"}


def _templates() -> list[tuple[str, str]]:
    """Every template each context carries (what fetch.sh assembles from its layers), by path in the context."""
    found = set()
    for name, layers in LAYERS.items():
        for layer in layers:
            found |= {(name, str(p.relative_to(ROOT / "basefs" / layer)))
                      for p in (ROOT / "basefs" / layer).rglob("*.tmpl")}
    return sorted(found)


@pytest.mark.parametrize("roles", ["master,registry", "node"])
@pytest.mark.parametrize(("name", "tmpl"), _templates())
def test_templates_render_for_masters_and_nodes_to_valid_files(name: str, tmpl: str, roles: str,
                                                               contexts: Path) -> None:
    from imgbuild.gotemplate import render

    text = render((contexts / name / tmpl).read_text(), _env(name, contexts, roles), name=tmpl, missingkey="error")
    assert "{{" not in text and "<no value>" not in text
    if tmpl.endswith("config.toml.tmpl"):
        doc = tomllib.loads(text)
        assert doc["plugins"]["io.containerd.grpc.v1.cri"]["sandbox_image"] == "registry.k8s.io/pause:3.9"
        return
    if tmpl.endswith(".toml.tmpl"):
        assert tomllib.loads(text)["host"]["http://sealos.hub:5000"]["capabilities"] == ["pull", "resolve"]
        return
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert docs, tmpl
    if tmpl == "etc/kubeadm-join.yaml.tmpl":
        assert ("controlPlane" in docs[0]) == ("master" in roles)
        assert docs[0]["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "apiserver.cluster.local:6443"
    if tmpl == "etc/kubeadm-init.yaml.tmpl":
        assert [d["kind"] for d in docs] == ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"]
        assert docs[1]["kubernetesVersion"] == "v1.28.2" and docs[0]["localAPIEndpoint"]["advertiseAddress"] == "127.0.0.2"
    if tmpl == "etc/k3s-config.yaml.tmpl":
        assert ("cluster-cidr" in docs[0]) == ("master" in roles) and docs[0]["node-ip"] == "127.0.0.2"
    if tmpl == "etc/registries.yaml.tmpl":
        assert docs[0]["mirrors"]["*"]["endpoint"] == ["http://sealos.hub:5000"]


@pytest.mark.parametrize("name", RUNTIMES)
def test_scripts_are_shellcheck_clean(name: str, contexts: Path) -> None:
    tool = shutil.which("shellcheck") or pytest.fail("shellcheck is required (apt-get install shellcheck)",
                                                     pytrace=False)
    scripts = contexts / name / "scripts"
    done = subprocess.run([tool, "-x", *sorted(p.name for p in scripts.glob("*.sh"))], capture_output=True,
                          text=True, cwd=scripts, timeout=60)
    assert done.returncode == 0, done.stdout
    done = subprocess.run([tool, "-x", f"kubefiles/{name}/fetch.sh"], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0, done.stdout


def _image_env(name: str, contexts: Path) -> dict[str, str]:
    env = _env(name, contexts, "node")
    return {k: v for k, v in env.items() if k not in ("HOST_IP", "HOST_ROLES", "MASTER0", "MASTERS", "NODES",
                                                          "REGISTRY_HOSTS") and not k.startswith("SEALOS_SYS_")}


class _Lifecycle:
    """One runtime image's lifecycle on 2 masters + 1 node of a sandbox, with stand-ins recording their calls."""

    def __init__(self, name: str, contexts: Path, sandbox, work: Path, systemd: bool = False) -> None:
        from tests.support.lifecycle_hosts import ClusterHosts, upper_files

        self.cluster = ClusterHosts(sandbox, 2, {**_image_env(name, contexts), "clusterToken": TOKEN}, work)
        self.m0, self.m1, self.node = self.cluster.hosts
        tree = work / "rootfs"
        shutil.copytree(contexts / name, tree, ignore=shutil.ignore_patterns("Kubefile", "fetch.sh", ".gitignore"))
        for host in self.cluster.hosts:
            if systemd:  # a host that looks like systemd runs it: kubeadm's kubelet needs one
                self.cluster.put(host, {"/usr/local/sbin/systemctl": systemctl_standin()})
                self.cluster.sh(host, "mkdir -p /run/systemd/system")
        self.cluster.ship(tree)
        self.shipped = upper_files(self.cluster.hosts)
        self.upper_files = upper_files

    def up(self) -> dict[str, list[str]]:
        """init-registry, check and init on every host, then the Join phase; the stand-ins' calls per host."""
        c = self.cluster
        c.script(self.m0, "init-registry.sh")
        for host in c.hosts:
            c.script(host, "check.sh")
            c.script(host, "init.sh")
        c.script(self.m1, "join-master.sh")
        c.script(self.node, "join-node.sh")
        return self.calls()

    def calls(self) -> dict[str, list[str]]:
        return {h.name: self.cluster.sh(h, f"cat {LOG} 2>/dev/null || true").stdout.splitlines()
                for h in self.cluster.hosts}

    def read(self, host, path: str) -> str:
        return self.cluster.sh(host, f"cat {path}").stdout

    def down_and_check(self, reset_calls: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
        """clean everywhere, clean-registry on master0: nothing left running, the hosts' files as shipped."""
        c = self.cluster
        for host in c.hosts:
            c.script(host, "clean.sh")
        c.script(self.m0, "clean-registry.sh")
        for host in c.hosts:
            left = c.sh(host, "ps -eo args= | awk '{print $1}' | grep -E '/(k3s|k0s|containerd|docker-registry)$'",
                        check=False)
            assert left.stdout == "", (host.name, left.stdout)
        assert self.upper_files(c.hosts) == self.shipped  # clean undid init and join exactly
        c.script(self.m0, "clean.sh")  # twice is harmless
        return self.calls()


def _rerun_changes_nothing(lc: _Lifecycle, first: dict[str, list[str]]) -> None:
    assert lc.up() == first  # a second init/join calls none of the stand-ins again


def _ca_hash(ca_pem: bytes) -> str:
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_pem_x509_certificate(ca_pem).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


@pytest.mark.root
@pytest.mark.slow
def test_kubernetes_lifecycle_with_standins(contexts: Path, tmp_path: Path) -> None:
    """kubeadm init on master0 only, join as control plane / node with the same derived token, reset on clean."""
    import re

    from tests.support.sandbox import sandbox_slot

    with sandbox_slot("rtk8s", 3) as sandbox:
        lc = _Lifecycle("kubernetes", contexts, sandbox, tmp_path / "work", systemd=True)
        forward = lc.cluster.sh(lc.node, "sysctl -n net.ipv4.ip_forward").stdout
        calls = lc.up()
        m0, m1, node = (calls[h.name] for h in lc.cluster.hosts)
        assert "kubeadm init --config /etc/imgbuild-cluster/kubeadm-init.yaml --upload-certs" in m0
        for host_calls in (m1, node):
            assert "kubeadm join --config /etc/imgbuild-cluster/kubeadm-join.yaml" in host_calls
            assert not any(c.startswith("kubeadm init") for c in host_calls)
        assert all("systemctl enable kubelet" in c for c in (m0, m1, node))
        init = list(yaml.safe_load_all(lc.read(lc.m0, "/etc/imgbuild-cluster/kubeadm-init.yaml")))
        joins = [yaml.safe_load(lc.read(h, "/etc/imgbuild-cluster/kubeadm-join.yaml")) for h in (lc.m1, lc.node)]
        token = init[0]["bootstrapTokens"][0]["token"]
        assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token)
        assert [j["discovery"]["bootstrapToken"]["token"] for j in joins] == [token, token]
        ca = (tmp_path / "work/ca/ca.crt").read_bytes()
        assert joins[0]["discovery"]["bootstrapToken"]["caCertHashes"] == [_ca_hash(ca)]
        assert joins[0]["controlPlane"]["certificateKey"] == init[0]["certificateKey"] and "controlPlane" not in joins[1]
        assert lc.read(lc.m0, "/etc/kubernetes/pki/ca.crt").encode() == ca  # kubeadm signs with the cluster CA
        assert f"{lc.m0.address} apiserver.cluster.local # imgbuild-cluster" in lc.read(lc.node, "/etc/hosts")
        assert lc.cluster.sh(lc.node, "sysctl -n net.ipv4.ip_forward").stdout.strip() == "1"
        _rerun_changes_nothing(lc, calls)
        after = lc.down_and_check()
        assert all(any(c.startswith("kubeadm reset -f") for c in after[h.name]) for h in lc.cluster.hosts)
        assert "systemctl disable --now kubelet" in after[lc.node.name]
        assert lc.cluster.sh(lc.node, "sysctl -n net.ipv4.ip_forward").stdout == forward


@pytest.mark.root
@pytest.mark.slow
def test_k3s_lifecycle_with_standins(contexts: Path, tmp_path: Path) -> None:
    """k3s server --cluster-init on master0, a joining server and an agent, the same derived token everywhere."""
    from tests.support.sandbox import sandbox_slot

    with sandbox_slot("rtk3s", 3) as sandbox:
        lc = _Lifecycle("k3s", contexts, sandbox, tmp_path / "work")
        calls = lc.up()
        tf, server = "--token-file /etc/imgbuild-cluster/k3s-token", f"https://{lc.m0.address}:6443"
        assert calls[lc.m0.name] == [f"k3s server {tf} --cluster-init"]
        assert calls[lc.m1.name] == [f"k3s server {tf} --server {server}"]
        assert calls[lc.node.name] == [f"k3s agent --server {server} {tf}"]
        tokens = {lc.read(h, "/etc/imgbuild-cluster/k3s-token").strip() for h in lc.cluster.hosts}
        assert len(tokens) == 1 and len(tokens.pop()) == 64
        assert "http://sealos.hub:5000" in lc.read(lc.node, "/etc/rancher/k3s/registries.yaml")
        assert lc.read(lc.node, "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst")
        _rerun_changes_nothing(lc, calls)
        lc.down_and_check()


@pytest.mark.root
@pytest.mark.slow
def test_k0s_lifecycle_with_standins(contexts: Path, tmp_path: Path) -> None:
    """k0s controller on master0 seeded with the cluster CA and the derived tokens; joiners build matching tokens."""
    import base64
    import gzip

    from tests.support.sandbox import sandbox_slot

    with sandbox_slot("rtk0s", 3) as sandbox:
        lc = _Lifecycle("k0s", contexts, sandbox, tmp_path / "work")
        calls = lc.up()
        assert calls[lc.m0.name] == ["k0s controller --config /etc/k0s/k0s.yaml"]
        assert calls[lc.m1.name] == ["k0s controller --config /etc/k0s/k0s.yaml "
                                     "--token-file /etc/imgbuild-cluster/k0s-controller.token"]
        assert calls[lc.node.name] == ["k0s worker --token-file /etc/imgbuild-cluster/k0s-worker.token"]
        ca = (tmp_path / "work/ca/ca.crt").read_bytes()
        assert lc.read(lc.m0, "/var/lib/k0s/pki/ca.crt").encode() == ca
        secrets = {s["stringData"]["usage-bootstrap-authentication"]: s["stringData"] for s in yaml.safe_load_all(
            lc.read(lc.m0, "/var/lib/k0s/manifests/imgbuild-join/tokens.yaml"))}
        for host, role, port, usage in ((lc.m1, "controller", 9443, "false"), (lc.node, "worker", 6443, "true")):
            kubeconfig = yaml.safe_load(gzip.decompress(base64.b64decode(
                lc.read(host, f"/etc/imgbuild-cluster/k0s-{role}.token"))))
            assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://{lc.m0.address}:{port}"
            assert base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]) == ca
            secret = secrets[usage]
            assert kubeconfig["users"][0]["user"]["token"] == f"{secret['token-id']}.{secret['token-secret']}"
        _rerun_changes_nothing(lc, calls)
        lc.down_and_check()
