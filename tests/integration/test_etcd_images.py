"""The etcd demo's images (kubefiles/etcd, etcd-app, hello over basefs/etcd): fetch, lint, plan, build, render, lint the shell.

Each context is copied to a temporary directory and assembled there by its ``fetch.sh`` (the base
tree and this machine's Debian binaries), so the checkout is never written. The images are built
with imgbuild itself: hello first, since etcd-app bundles it from the local store. Every ``*.tmpl``
renders with the Go-template engine and a sample of the env the engine gives a host, to TOML, YAML
or an env file. Running the images on hosts is hack/demo-run.sh's job (and the run engine's e2e).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from imgbuild import labels as L
from tests.support.lifecycle_hosts import cli_ok

ROOT = Path(__file__).resolve().parents[2]
BASEFS = ROOT / "basefs"
LAYERS = ("base", "containerd", "etcd")  # what kubefiles/etcd/fetch.sh assembles, in order
HELLO, ETCD, APP = "imgbuild.local/demo/hello:v1", "imgbuild.local/demo/etcd:v3.4", "imgbuild.local/demo/etcd-app:v1"
BINARIES = ("etcd", "etcdctl", "containerd", "ctr", "containerd-shim-runc-v2", "runc", "docker-registry")
SAMPLE_HOST = {
    "HOST_IP": "127.0.0.2", "HOST_ROLES": "master,registry", "MASTER0": "127.0.0.2",
    "MASTERS": "127.0.0.2,127.0.0.3,127.0.0.4", "NODES": "127.0.0.5", "REGISTRY_HOSTS": "127.0.0.2",
    "SEALOS_SYS_CLUSTER_NAME": "demo", "SEALOS_SYS_ROOTFS": "/var/lib/sealos/data/demo/rootfs",
    "SEALOS_SYS_PKI": "/var/lib/sealos/data/demo/pki",
}


def _fetch(src: Path, dest: Path, **env: str) -> subprocess.CompletedProcess:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("bin", "scripts", "etc"))
    return subprocess.run(["bash", str(dest / "fetch.sh")], capture_output=True, text=True,
                          env={**os.environ, "BASEFS": str(BASEFS), **env}, timeout=60)


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three build contexts, assembled by their fetch.sh in a temporary directory."""
    top = tmp_path_factory.mktemp("etcd-contexts")
    for name in ("etcd", "hello"):
        done = _fetch(ROOT / "kubefiles" / name, top / name)
        assert done.returncode == 0, done.stderr
    shutil.copytree(ROOT / "kubefiles" / "etcd-app", top / "etcd-app")
    return top


def _layer_files() -> dict[str, Path]:
    """Every file the etcd context takes from basefs, by its path in the context (later layers win)."""
    files: dict[str, Path] = {}
    for layer in LAYERS:
        for top in ("scripts", "etc"):
            for path in (BASEFS / layer / top).rglob("*"):
                if path.is_file():
                    files[str(path.relative_to(BASEFS / layer))] = path
    return files


def test_fetch_assembles_the_etcd_context_from_basefs_layers_and_this_machine(contexts: Path) -> None:
    ctx = contexts / "etcd"
    for name in BINARIES:
        assert os.access(ctx / "bin" / name, os.X_OK), name
    files = _layer_files()
    assert sorted(str(p.relative_to(ctx)) for d in ("scripts", "etc") for p in (ctx / d).rglob("*") if p.is_file()) \
        == sorted(files)
    for rel, path in files.items():
        copy = ctx / rel
        assert copy.read_bytes() == path.read_bytes() and copy.stat().st_mode == path.stat().st_mode, rel
    assert os.access(contexts / "hello" / "bin" / "busybox", os.X_OK)


def test_fetch_fails_naming_the_packages_to_install(tmp_path: Path) -> None:
    done = _fetch(ROOT / "kubefiles" / "etcd", tmp_path / "etcd", FETCH_PATH=str(tmp_path / "nothing"))
    assert done.returncode == 1
    assert "not found on this machine: etcd etcdctl containerd" in done.stderr
    assert "apt-get install containerd docker-registry etcd-client etcd-server runc" in done.stderr
    assert not (tmp_path / "etcd" / "bin").exists()


def test_hello_fetch_refuses_a_dynamically_linked_busybox(tmp_path: Path) -> None:
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "busybox").symlink_to(shutil.which("ls"))
    done = _fetch(ROOT / "kubefiles" / "hello", tmp_path / "hello", FETCH_PATH=str(fake))
    assert done.returncode == 1 and "dynamically linked" in done.stderr and "busybox-static" in done.stderr


@pytest.mark.parametrize("name", ["hello", "etcd", "etcd-app"])
def test_kubefiles_lint_and_plan(name: str, contexts: Path, capsys: pytest.CaptureFixture) -> None:
    assert json.loads(cli_ok(capsys, "lint", "--json", str(contexts / name)))["ok"] is True
    plan = json.loads(cli_ok(capsys, "build", "--dry-run", "--json", str(contexts / name)))
    assert plan["backend"] == "native"


def test_images_build_with_sealos_labels_and_the_app_bundles_hello(contexts: Path, capsys) -> None:
    for ref, name in ((HELLO, "hello"), (ETCD, "etcd"), (APP, "etcd-app")):
        cli_ok(capsys, "build", "-q", "-t", ref, str(contexts / name))
    etcd = json.loads(cli_ok(capsys, "inspect", "--json", ETCD))
    assert etcd["type"] == L.TYPE_ROOTFS
    scripts = {p.name for p in (contexts / "etcd" / "scripts").iterdir()}
    for label in (L.CHECK, L.INIT, L.CLEAN, L.INIT_REGISTRY, L.CLEAN_REGISTRY, L.JOIN_MASTER):
        assert etcd["labels"][label] == f"{label}.sh" and f"{label}.sh" in scripts
    env = dict(e.split("=", 1) for e in etcd["env"])
    assert set(L.REGISTRY_ENV_DEFAULTS) | {"etcdData"} <= env.keys()
    assert {k: env[k] for k in ("registryDomain", "registryPort")} == {"registryDomain": "sealos.hub",
                                                                         "registryPort": "5000"}
    assert [layer["role"] for layer in etcd["layers"]][-1] == "scripts"
    app = json.loads(cli_ok(capsys, "inspect", "--json", APP))
    assert app["type"] == L.TYPE_APPLICATION and app["cmd"] == ["bash app.sh"]
    assert [layer["role"] for layer in app["layers"]][-1] == "registry"
    hello = json.loads(cli_ok(capsys, "inspect", "--json", HELLO))
    mnt = cli_ok(capsys, "mount", APP).strip()
    try:
        listing = json.loads(cli_ok(capsys, "registry", "ls", "--json", f"{mnt}/registry"))
    finally:
        cli_ok(capsys, "umount", mnt)
    assert [(i["repository"], i["tag"], i["digest"]) for i in listing["images"]] == [
        ("demo/hello", "v1", hello["digest"])]


def render(text: str, env: dict[str, str], name: str = "<template>") -> str:
    """A template rendered as the engine renders ``*.tmpl`` on a host (Go templates, missing keys are errors)."""
    from imgbuild.gotemplate import render as go_render

    return go_render(text, env, name=name, missingkey="error")


def _sample_env() -> dict[str, str]:
    from imgbuild.builder.plan import make_plan

    env = dict(L.REGISTRY_ENV_DEFAULTS)
    for item in make_plan(ROOT / "kubefiles" / "etcd-app").stages[-1].config["config"]["Env"]:
        env.update([item.split("=", 1)])
    env.update({"criData": "/var/lib/containerd", "etcdData": "/var/lib/etcd"}, **SAMPLE_HOST)
    return env


@pytest.mark.parametrize("tmpl", sorted(k for k in _layer_files() if k.endswith(".tmpl")))
def test_templates_render_with_a_hosts_env_to_valid_files(tmpl: str) -> None:
    text = render(_layer_files()[tmpl].read_text(), _sample_env(), name=tmpl)
    assert "{{" not in text and "<no value>" not in text
    if tmpl.endswith("config.toml.tmpl"):
        doc = tomllib.loads(text)
        assert doc["root"] == "/var/lib/containerd" and doc["grpc"]["address"] == "/run/containerd/containerd.sock"
    elif tmpl.endswith(".toml.tmpl"):
        doc = tomllib.loads(text)
        assert doc["host"]["http://sealos.hub:5000"]["capabilities"] == ["pull", "resolve"]
        assert doc.get("server", "http://sealos.hub:5000") == "http://sealos.hub:5000"
    elif tmpl.endswith(".yml.tmpl"):
        doc = yaml.safe_load(text)
        assert doc["storage"]["filesystem"]["rootdirectory"] == "/var/lib/sealos/data/demo/rootfs/registry"
        assert doc["http"]["addr"] == ":5000"
    else:
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        assert lines and all(re.fullmatch(r"[A-Z][A-Z0-9_]*=[^\s'\"]+", ln) for ln in lines), lines
        if tmpl == "etc/etcd.env.tmpl":
            env = dict(ln.split("=", 1) for ln in lines)
            assert env["ETCD_NAME"] == "127.0.0.2" and env["ETCD_PEER_CERT_FILE"].endswith("/pki/host.crt")
            assert env["ETCD_LISTEN_PEER_URLS"] == "https://127.0.0.2:2380"


@pytest.mark.root
def test_the_rendered_etcd_env_starts_a_tls_member_with_the_engines_certificates(tmp_path: Path) -> None:
    """etcd with the rendered env and the engine's PKI, in a private network namespace: healthy over TLS."""
    from imgbuild.engine.pki import ClusterPKI, host_bundle

    pki = host_bundle(ClusterPKI(tmp_path / "ca").ensure(), "127.0.0.2", "etcd-test", True, tmp_path / "pki")
    sample = {**_sample_env(), "SEALOS_SYS_PKI": str(pki), "etcdData": str(tmp_path / "data")}
    text = render((BASEFS / "etcd/etc/etcd.env.tmpl").read_text(), sample)
    env = dict(ln.split("=", 1) for ln in text.splitlines() if ln and not ln.startswith("#"))
    tls = f"--cacert {pki}/ca.crt --cert {pki}/host.crt --key {pki}/host.key"
    script = f"""ip link set lo up
etcd --initial-cluster 127.0.0.2=https://127.0.0.2:2380 --initial-cluster-state new > {tmp_path}/etcd.log 2>&1 &
pid=$!; ok=0
for _ in $(seq 80); do
  if etcdctl {tls} --endpoints https://127.0.0.2:2379,https://127.0.0.1:2379 endpoint health; then ok=1; break; fi
  sleep 0.25
done
kill $pid; wait $pid; [ $ok = 1 ]"""
    for tool in ("etcd", "etcdctl", "unshare"):
        shutil.which(tool) or pytest.fail(f"{tool} is required (hack/install-deps.sh)", pytrace=False)
    done = subprocess.run(["unshare", "--net", "bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "ETCDCTL_API": "3", **env})
    log = (tmp_path / "etcd.log").read_text()
    assert done.returncode == 0, done.stdout + done.stderr + log[-2000:]
    assert (done.stdout + done.stderr).count("is healthy") == 2
    assert "unrecognized environment variable" not in log and "shadowed" not in log


def test_scripts_are_shellcheck_clean(contexts: Path) -> None:
    """The scripts as the image carries them (the layers together), the fetch scripts, the app and the demo."""
    tool = shutil.which("shellcheck") or pytest.fail("shellcheck is required (apt-get install shellcheck)",
                                                     pytrace=False)
    scripts = contexts / "etcd" / "scripts"
    done = subprocess.run([tool, "-x", *sorted(p.name for p in scripts.glob("*.sh"))], capture_output=True,
                          text=True, cwd=scripts, timeout=60)
    assert done.returncode == 0, done.stdout
    others = ["kubefiles/etcd/fetch.sh", "kubefiles/hello/fetch.sh", "basefs/base/fetch-lib.sh",
              "kubefiles/etcd-app/app.sh", "hack/demo-run.sh"]
    done = subprocess.run([tool, "-x", *others], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stdout


def test_lifecycle_scripts_name_the_env_the_engine_did_not_set(contexts: Path) -> None:
    for script in ("check.sh", "init.sh", "join-master.sh"):
        done = subprocess.run(["bash", str(contexts / "etcd" / "scripts" / script)], capture_output=True,
                              text=True, env={"PATH": os.environ["PATH"]}, timeout=30)
        assert done.returncode == 1, script
        assert "not set: HOST_IP MASTER0 SEALOS_SYS_PKI" in done.stderr, script


def _image_env(context: Path) -> dict[str, str]:
    from imgbuild.builder.plan import make_plan

    return dict(e.split("=", 1) for e in make_plan(context).stages[-1].config["config"]["Env"])


@pytest.mark.root
@pytest.mark.slow
def test_lifecycle_on_sandbox_hosts_forms_a_cluster_reruns_harmlessly_and_cleans_up(
        contexts: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """2 masters + 1 node, scripts run by hand as the engine runs them: etcd over TLS, the registry, a pull."""
    from tests.support.lifecycle_hosts import ClusterHosts, upper_files
    from tests.support.sandbox import sandbox_slot

    cli_ok(capsys, "build", "-q", "-t", HELLO, str(contexts / "hello"))
    tree = tmp_path / "rootfs"
    shutil.copytree(contexts / "etcd", tree, ignore=shutil.ignore_patterns("Kubefile", "fetch.sh", ".gitignore"))
    cli_ok(capsys, "registry", "save", str(contexts / "etcd-app"), "-d", str(tree / "registry"))
    with sandbox_slot("etcdimg", 3) as sandbox:
        cluster = ClusterHosts(sandbox, 2, _image_env(contexts / "etcd"), tmp_path / "work")
        m0, m1, node = cluster.hosts
        cluster.ship(tree)
        shipped = upper_files(cluster.hosts)
        cluster.script(m0, "init-registry.sh")
        for host in cluster.hosts:
            cluster.script(host, "check.sh")
            cluster.script(host, "init.sh")
        cluster.script(m1, "join-master.sh")
        envs = "set -a; . /etc/imgbuild-cluster/etcdctl.env; . /etc/imgbuild-cluster/containerd.env; set +a"
        health = cluster.sh(node, f"{envs}; etcdctl endpoint health --cluster 2>&1")
        assert health.stdout.count("is healthy") == 2, health.stdout
        pulled = cluster.sh(node, f"{envs}; ctr images pull --hosts-dir /etc/imgbuild-cluster/certs.d "
                                  f"imgbuild.local/demo/hello:v1 >/dev/null && ctr images ls -q")
        assert pulled.stdout.split() == ["imgbuild.local/demo/hello:v1"]  # through the mirror for every registry

        pids = [cluster.sh(h, "cat /run/imgbuild-cluster/*.pid").stdout for h in cluster.hosts]
        for host in cluster.hosts:
            cluster.script(host, "check.sh")
            assert "already runs" in cluster.script(host, "init.sh").stdout
        assert "already runs" in cluster.script(m1, "join-master.sh").stdout
        assert "already serves" in cluster.script(m0, "init-registry.sh").stdout
        assert [cluster.sh(h, "cat /run/imgbuild-cluster/*.pid").stdout for h in cluster.hosts] == pids

        for host in cluster.hosts:
            cluster.script(host, "clean.sh")
        cluster.script(m0, "clean-registry.sh")
        for host in cluster.hosts:
            left = cluster.sh(host, "ps -eo comm= | grep -xE 'etcd|containerd|containerd-shim|docker-registry'",
                              check=False)
            assert left.stdout == "", (host.name, left.stdout)
        assert upper_files(cluster.hosts) == shipped  # clean undid init, join and init-registry exactly
        cluster.script(m0, "clean.sh")  # a second clean is harmless
