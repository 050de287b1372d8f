"""kill -9 of ``imgbuild run`` at random moments, then a re-run: it completes and the cluster ends the same.

The suite does a few kills; ``python -m bench resume`` does 20 and prints the tally.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from imgbuild.cli.main import run as cli
from tests.support.resume import host_view, imgbuild_argv, kill_and_resume
from tests.support.sandbox import sandbox_slot

pytestmark = [pytest.mark.root, pytest.mark.ssh, pytest.mark.registry, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ROOT / "tests" / "data" / "contexts" / "run-e2e"
IMAGE = "localhost/e2e/rootfs:v1"
VIEW = "cat /etc/e2e-demo.conf; ls /var/lib/sealos/data/default/rootfs/etc; grep -c sealos.hub /etc/hosts"


@pytest.mark.parametrize("distribute", ["ssh", "registry"])
def test_kill9_at_random_moments_then_rerun_ends_the_same(imgbuild_home: Path, distribute: str):
    assert cli(["build", "-q", "-t", "imgbuild.local/demo/pause:3.9", str(ROOT / "kubefiles" / "pause-demo")]) == 0
    assert cli(["build", "-q", "-t", IMAGE, str(CONTEXT)]) == 0
    env = {**os.environ, "IMGBUILD_HOME": str(imgbuild_home)}
    rng = random.Random(1234)
    with sandbox_slot("imgbtkill", 2) as sb:
        h1, h2 = sb.hosts
        args = ["run", IMAGE, "--masters", h1.address, "--nodes", h2.address, "--pk", str(sb.key_file),
                "--distribute", distribute]
        subprocess.run(imgbuild_argv(*args, "-q"), env=env, check=True, timeout=600)
        reference = host_view(sb, sb.hosts, VIEW)
        for _ in range(3):
            subprocess.run(imgbuild_argv("reset", "-q"), env=env, check=True, timeout=600)
            kill_and_resume(args, env, 6.0, rng)
            assert host_view(sb, sb.hosts, VIEW) == reference
            again = kill_and_resume(args, env, 0.3, rng)  # a kill of an unchanged re-run changes nothing either
            assert host_view(sb, sb.hosts, VIEW) == reference and not again["steps"]
        subprocess.run(imgbuild_argv("reset", "-q"), env=env, check=True, timeout=600)
