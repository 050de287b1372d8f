"""The run engine end to end on real sandbox hosts (sshd in network namespaces), from a clean Home.

Build a rootfs image with templates, lifecycle scripts and a bundled registry ->
``run`` on 1 master + 2 nodes -> every host has its rendered files and ran init
-> the bundled registry answers by registryDomain from every host -> ``status``
-> ``add`` a node -> ``delete`` it -> an unchanged re-run runs nothing ->
``reset`` leaves every host's writable layer as it was before.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from imgbuild.cli.main import run as cli
from imgbuild.home import home as _home
from imgbuild.infra.sandbox import Sandbox
from tests.support.sandbox import sandbox_slot

pytestmark = [pytest.mark.root, pytest.mark.ssh, pytest.mark.registry, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ROOT / "tests" / "data" / "contexts" / "run-e2e"
IMAGE = "localhost/e2e/rootfs:v1"
NAME = "imgbtrun"


def _upper_snapshot(host) -> dict[str, str]:
    """What a sandbox host changed: files, links and whiteouts of its writable layer, and directories it made."""
    out = {}
    for root in sorted(Path(host.upper).iterdir()):
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                rel = str(p.relative_to(host.upper))
                if rel.startswith(("var/log/", "root/.ssh")) or "/lastlog" in rel or rel.startswith("var/lib/dpkg"):
                    continue
                st = os.lstat(p)
                if stat.S_ISDIR(st.st_mode):
                    if not (Path("/") / rel).is_dir():  # a directory copied up from the machine is no change
                        out[rel] = "dir"
                elif stat.S_ISLNK(st.st_mode):
                    out[rel] = "-> " + os.readlink(p)
                elif stat.S_ISREG(st.st_mode):
                    out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
                else:
                    out[rel] = f"special {st.st_mode:o} {st.st_rdev}"  # overlay whiteouts are 0:0 char devices
    return out


def _on(sb: Sandbox, host, command: str) -> str:
    """Run ``command`` inside a sandbox host (from the machine, not over SSH) and return its stdout."""
    res = subprocess.run(host.nsenter_argv(["sh", "-c", command]), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def hosts():
    with sandbox_slot(NAME, 4) as sb:
        yield sb


def _json(capsys, argv) -> dict:
    assert cli([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def build_images(image: str, context: Path, capsys) -> None:
    """The pause image the e2e context bundles, then the rootfs image of ``context`` as ``image``."""
    assert cli(["build", "-q", "-t", "imgbuild.local/demo/pause:3.9", str(ROOT / "kubefiles" / "pause-demo")]) == 0
    assert cli(["build", "-q", "-t", image, str(context)]) == 0
    capsys.readouterr()


def test_run_add_delete_rerun_reset(hosts: Sandbox, capsys):
    build_images(IMAGE, CONTEXT, capsys)
    h1, h2, h3, h4 = hosts.hosts
    before = {h.name: _upper_snapshot(h) for h in hosts.hosts}
    key = ["--pk", str(hosts.key_file)]

    # dry run first: steps listed per host, nothing touched
    plan = _json(capsys, ["run", IMAGE, "--masters", h1.address, "--nodes", f"{h2.address},{h3.address}", *key,
                          "--dry-run"])
    assert plan["dry_run"] and {s["host"] for s in plan["steps"]} == {h1.address, h2.address, h3.address}
    assert not (_home().cluster_dir("default") / "Clusterfile").exists()

    result = _json(capsys, ["run", IMAGE, "--masters", h1.address, "--nodes", f"{h2.address},{h3.address}", *key])
    assert any(s["what"].startswith("init of") for s in result["steps"])
    for h in (h1, h2, h3):
        conf = _on(hosts, h, "cat /etc/e2e-demo.conf")
        assert f"host={h.address}" in conf and "greeting=hello" in conf and f"masters={h1.address}" in conf
        catalog = _on(hosts, h, "curl -fsS http://sealos.hub:5000/v2/_catalog")
        assert "demo/pause" in catalog, catalog
        assert f"guest on {h.address}" in _on(hosts, h, "cat /var/lib/e2e-demo/runs")
    assert "e2e-demo" not in _on(hosts, h4, "ls /etc")
    assert _on(hosts, h2, "ls /var/lib/sealos/data/default/rootfs/registry 2>/dev/null || true").strip() == ""

    status = _json(capsys, ["status"])
    assert status["phase"] == "ClusterSuccess" and len(status["hosts"]) == 3
    assert {h["hostname"] for h in status["hosts"]} == {f"{hosts.name}-{i}" for i in (1, 2, 3)}

    runs_before = {h.name: _on(hosts, h, "cat /var/lib/e2e-demo/runs") for h in (h1, h2, h3)}
    added = _json(capsys, ["add", "--nodes", h4.address])
    assert {s["host"] for s in added["steps"]} == {h4.address}, [s for s in added["steps"] if s["host"] != h4.address]
    assert "greeting=hello" in _on(hosts, h4, "cat /etc/e2e-demo.conf")
    assert {h.name: _on(hosts, h, "cat /var/lib/e2e-demo/runs") for h in (h1, h2, h3)} == runs_before

    deleted = _json(capsys, ["delete", "--nodes", h4.address])
    assert deleted["removed"] == [h4.address]
    assert _upper_snapshot(h4) == before[h4.name]

    again = _json(capsys, ["run", IMAGE])
    assert again["steps"] == []
    assert {h.name: _on(hosts, h, "cat /var/lib/e2e-demo/runs") for h in (h1, h2, h3)} == runs_before

    assert cli(["reset"]) == 0
    capsys.readouterr()
    for h in (h1, h2, h3):
        assert _upper_snapshot(h) == before[h.name], h.name
    assert not _home().cluster_dir("default").exists()
    assert cli(["mounts", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []  # reset unmounted the image
