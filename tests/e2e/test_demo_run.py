"""The README's main job, run half: hack/demo-run.sh end to end on sandbox hosts, as ./demo runs it.

It builds the etcd rootfs image and its application from this machine's binaries, runs them on three
masters, proves a healthy 3-member etcd, the app's data on another member and the bundled image pulled on
every host, adds a node, re-runs without change, resets (hosts exactly as before) and tears down.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.ssh, pytest.mark.registry, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_demo_run_ends_with_a_healthy_cluster_and_leaves_nothing(imgbuild_home: Path):
    env = {**os.environ, "IMGBUILD_HOME": str(imgbuild_home)}
    res = subprocess.run(["bash", str(ROOT / "hack" / "demo-run.sh")], env=env, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, (res.stdout[-4000:], res.stderr[-3000:])
    out = res.stdout
    assert out.count("is healthy") >= 3 and "hello from cluster" in out
    assert out.count("hello from the bundled image") >= 4 or out.count("runc cannot run containers here") >= 1
    assert "no sandbox, mount or process is left behind" in out
    assert not [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                if n.startswith("imgb-etcd-demo")]
