"""gc racing a pull: blobs an earlier, killed pull left are re-used by the next pull and survive a gc meanwhile.

A real registry, a real ``imgbuild store gc`` process started at the worst moment (after
the pull found the blobs already stored, before it tagged).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imgbuild.home import home
from imgbuild.oci.store import open_store
from imgbuild.oci.transfer import pull, push
from imgbuild.progress import NullProgress
from tests.support.images import make_random_image

pytestmark = pytest.mark.registry
ROOT = Path(__file__).resolve().parents[2]


class _GcWhenReused(NullProgress):
    """Runs ``imgbuild store gc`` in another process as soon as the pull reports a blob it already had."""

    def __init__(self, layers: set[str]) -> None:
        self.layers = layers
        self.gc_runs: list[str] = []

    def finished(self, label: str, outcome: str = "done") -> None:
        if outcome == "exists" and label.split("/")[-1] in self.layers and not self.gc_runs:
            res = subprocess.run([sys.executable, "-m", "imgbuild", "store", "gc"], cwd=ROOT, capture_output=True,
                                 text=True, timeout=120)
            assert res.returncode == 0, res.stderr
            self.gc_runs.append(res.stdout)


def test_a_pull_reusing_a_killed_pulls_blobs_survives_a_concurrent_gc(registry, tmp_path: Path) -> None:
    store = open_store(home())
    ref = f"{registry.host}/lease/app:1"
    make_random_image(store, "lease/app:1", [4 << 20, 1 << 20], workdir=tmp_path)
    push("lease/app:1", ref, store=store)
    image = store.image("lease/app:1")
    layers = image.layers
    store.untag("lease/app:1")  # as a killed pull leaves them: blobs stored, nothing tagged, an hour old
    past = time.time() - 7200
    for desc in [image.manifest.config, *layers]:
        os.utime(store.blob_path(desc.digest), (past, past))
    progress = _GcWhenReused({str(d.digest) for d in layers})
    pull(ref, store=store, jobs=1, progress=progress)
    assert progress.gc_runs, "the pull found no blob already stored"
    assert all(store.has_blob(d.digest) for d in layers) and store.verify() == []
    store.untag(ref)
    assert store.gc()[0] >= 2  # once tagged and untagged again, the lease is over
