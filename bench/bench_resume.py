"""Crash safety of ``imgbuild run``: kill -9 at 20 random moments, each followed by a re-run (needs root).

Run: .venv/bin/python -m bench resume [KILLS] [--distribute=ssh|registry]  (how the rootfs reaches the hosts)
Builds the e2e test image in a temporary Home, starts 2 sandbox hosts, makes a reference run, then KILLS
times: reset, start a run, SIGKILL it after a random 0.2 s to 1.1x a whole run's time, re-run it to completion
and compare what every host holds with the reference. Prints how many kills landed mid-run, how many re-runs
completed and how many hosts ended different (must be 0), and the time of an unchanged re-run.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.resume import host_view, imgbuild_argv, kill_and_resume
from tests.support.sandbox import sandbox_slot

ROOT = Path(__file__).resolve().parents[1]
VIEW = "cat /etc/e2e-demo.conf; ls /var/lib/sealos/data/default/rootfs/etc; grep -c sealos.hub /etc/hosts"


def main() -> dict:
    """Run the kills; return the tallies."""
    words = sys.argv[1:]
    kills = next((int(w) for w in words if w.isdigit()), 20)
    distribute = next((w.split("=", 1)[1] for w in words if w.startswith("--distribute=")), "ssh")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "IMGBUILD_HOME": str(Path(tmp) / "home")}
        sh = lambda *a: subprocess.run(imgbuild_argv(*a, "-q"), env=env, check=True, timeout=900)  # noqa: E731
        sh("build", "-t", "imgbuild.local/demo/pause:3.9", str(ROOT / "kubefiles" / "pause-demo"))
        sh("build", "-t", "localhost/e2e/rootfs:v1", str(ROOT / "tests" / "data" / "contexts" / "run-e2e"))
        rng = random.Random(20)
        try:
            return _kills(sh, env, rng, kills, distribute)
        finally:
            subprocess.run(imgbuild_argv("umount", "--all", "-q"), env=env, timeout=300)


def _kills(sh, env: dict, rng: random.Random, kills: int, distribute: str) -> dict:
    """The reference run, an unchanged re-run, then the kills (see the module docstring)."""
    with sandbox_slot("imgbbkill", 2) as sb:
        h1, h2 = sb.hosts
        args = ["run", "localhost/e2e/rootfs:v1", "--masters", h1.address, "--nodes", h2.address,
                "--pk", str(sb.key_file), "--distribute", distribute]
        start = time.perf_counter()
        sh(*args)
        full = time.perf_counter() - start  # kills land within it, so most of them hit a run in flight
        reference = host_view(sb, sb.hosts, VIEW)
        start = time.perf_counter()
        sh(*args)
        noop = time.perf_counter() - start
        mid, differ = 0, 0
        for i in range(kills):
            sh("reset")
            result = kill_and_resume(args, env, max(0.5, 1.1 * full), rng)
            mid += result["killed"]
            same = host_view(sb, sb.hosts, VIEW) == reference
            differ += not same
            print(f"kill {i + 1}/{kills}: {'mid-run' if result['killed'] else 'after the end'}, re-run ran "
                  f"{len(result['steps'])} step(s), hosts {'as the reference' if same else 'DIFFERENT'}", flush=True)
        sh("reset")
    print(f"{kills} kills ({mid} mid-run): {kills} re-runs completed, {differ} ended different; "
          f"unchanged re-run {noop:.2f} s")
    return {"kills": kills, "killed_mid_run": mid, "ended_different": differ, "unchanged_rerun_s": noop}

if __name__ == "__main__":
    main()
