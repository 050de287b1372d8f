"""``apply -f Clusterfile`` with a Config document, on sandbox hosts: the configured file reaches the hosts, a
dry run of the applied file plans nothing, reset unmounts the image."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from imgbuild.cli.main import run as cli
from tests.support.sandbox import sandbox_slot

pytestmark = [pytest.mark.root, pytest.mark.ssh, pytest.mark.registry, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/e2e/rootfs:v1"
CONFIG = """---
apiVersion: apps.sealos.io/v1beta1
kind: Config
metadata:
  name: guest-extra
spec:
  path: scripts/guest.sh
  match: localhost/e2e/rootfs:v1
  strategy: append
  data: |
    echo "configured by a Config document" >> /var/lib/e2e-demo/runs
"""


def test_apply_with_a_config_document(tmp_path: Path, capsys):
    assert cli(["build", "-q", "-t", "imgbuild.local/demo/pause:3.9", str(ROOT / "kubefiles" / "pause-demo")]) == 0
    assert cli(["build", "-q", "-t", IMAGE, str(ROOT / "tests" / "data" / "contexts" / "run-e2e")]) == 0
    with sandbox_slot("imgbtcfg", 2) as sb:
        clusterfile = tmp_path / "Clusterfile"
        clusterfile.write_text(sb.clusterfile(images=[IMAGE]) + CONFIG)
        capsys.readouterr()
        assert cli(["-q", "apply", "-f", str(clusterfile)]) == 0
        for host in sb.hosts:
            runs = subprocess.run(host.nsenter_argv(["cat", "/var/lib/e2e-demo/runs"]), capture_output=True,
                                  text=True, check=True).stdout
            assert "configured by a Config document" in runs
        capsys.readouterr()
        assert cli(["apply", "-f", str(clusterfile), "--dry-run", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["steps"] == []
        assert cli(["-q", "reset", "--cluster", sb.name]) == 0
        capsys.readouterr()
        assert cli(["mounts", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []
