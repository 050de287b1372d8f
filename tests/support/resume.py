"""kill -9 of ``imgbuild run`` at random moments, each followed by a re-run: shared by the test and the bench.

:func:`kill_and_resume` builds nothing: it expects the image in the Home named
by ``env['IMGBUILD_HOME']``, runs the CLI as a child process, SIGKILLs it after a
random delay, re-runs it to completion, and returns what each host ends with
(the rendered config and the steps done), so callers can compare it with an
uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from typing import Sequence

__all__ = ["imgbuild_argv", "kill_and_resume", "host_view"]


def imgbuild_argv(*args: str) -> list[str]:
    """The CLI as a child process of this Python."""
    return [sys.executable, "-c", "import sys; from imgbuild.cli.main import main; main()", *args]


def host_view(sb, hosts: Sequence, command: str) -> dict[str, str]:
    """``command``'s output on each host (through nsenter, not SSH)."""
    out = {}
    for h in hosts:
        res = subprocess.run(h.nsenter_argv(["sh", "-c", command]), capture_output=True, text=True, timeout=60)
        out[h.name] = res.stdout
    return out


def kill_and_resume(run_args: Sequence[str], env: dict, delay: float, rng: random.Random) -> dict:
    """Start ``imgbuild run_args``, kill -9 it after up to ``delay`` s, re-run it; the re-run's JSON result."""
    child = subprocess.Popen(imgbuild_argv(*run_args, "-q"), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(rng.uniform(0.2, delay))
    killed = child.poll() is None
    if killed:
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    done = subprocess.run(imgbuild_argv(*run_args, "--json"), env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise AssertionError(f"re-run after kill failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    result["killed"] = killed
    return result
