"""``imgbuild build`` vs ``buildah bud`` + ``buildah push oci:`` on a 600 MB, ~3,000-file context.

The context is bench_layer's generated tree (12 x 40 MiB files, half random and half
text, plus 3,000 small text files); the Kubefile, ``FROM scratch`` + ``COPY . .``, lives
outside it and is given with ``-f``. We time, through the real CLI (a fresh process each):

* ``imgbuild build`` (native backend, zstd) into an empty IMGBUILD_HOME: a cold build;
* the same again with nothing changed: the rebuild (target: under 2 s, same digest);
* ``buildah bud --isolation chroot`` of the same Containerfile, followed by
  ``buildah push ... oci:<dir>`` (what a buildah pipeline needs to get an OCI image out),
  in a private storage root (overlay when it works here, else vfs).

Ratios above 1 mean imgbuild is faster. Run with ``python -m bench build``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from bench.bench_layer import make_tree
from imgbuild.engine.exec import LocalExecutor, which

EXEC = LocalExecutor()

__all__ = ["main"]

WORK = Path("/tmp/imgbuild-bench-build")
KUBEFILE = "FROM scratch\nCOPY . .\n"


def _timed(label: str, argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = EXEC.run(argv, env=env)
    wall = time.perf_counter() - t0
    print(f"  {label:<48} {wall:7.2f} s", flush=True)
    return wall, res.stdout.strip()


def _imgbuild(tree: Path, kubefile: Path, home: Path, runs: int = 2) -> tuple[float, float, str, str]:
    """Best of ``runs`` cold builds (each into an empty home), then one rebuild with nothing changed."""
    cli = [str(Path(sys.executable).with_name("imgbuild")), "build", "-q", "-f", str(kubefile),
           "-t", "localhost/bench/build:v1", str(tree)]
    env = {"IMGBUILD_HOME": str(home)}
    colds = []
    for _ in range(runs):
        shutil.rmtree(home, ignore_errors=True)
        os.sync()
        cold, d1 = _timed("imgbuild build (native, zstd, cold)", cli, env)
        colds.append(cold)
    warm, d2 = _timed("imgbuild build again (nothing changed)", cli, env)
    return min(colds), warm, d1, d2


def _buildah_driver(root: Path, runroot: Path) -> str:
    """overlay if a private root can use it here, else vfs."""
    probe = EXEC.run(["buildah", "--root", str(root), "--runroot", str(runroot), "--storage-driver", "overlay",
                       "images"], check=False)
    shutil.rmtree(root, ignore_errors=True)
    return "overlay" if probe.ok else "vfs"


def _buildah(tree: Path, kubefile: Path) -> float:
    root, runroot = WORK / "buildah-root", WORK / "buildah-runroot"
    driver = _buildah_driver(root, runroot)
    g = ["buildah", "--root", str(root), "--runroot", str(runroot), "--storage-driver", driver]
    os.sync()
    try:
        bud, _ = _timed(f"buildah bud (chroot, {driver})", [
            *g, "bud", "--isolation", "chroot", "--layers=false", "-f", str(kubefile), "-t",
            "localhost/bench:build", str(tree)])
        push, _ = _timed("buildah push oci: (gzip)", [*g, "push", "localhost/bench:build",
                                                      f"oci:{WORK / 'oci-out'}:bench"])
    finally:
        EXEC.run([*g, "rmi", "--all", "--force"], check=False)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(runroot, ignore_errors=True)
    print(f"  {'buildah bud + push':<48} {bud + push:7.2f} s")
    return bud + push


def main() -> dict[str, float]:
    """Run the build benchmark; returns ratios (>1 = imgbuild faster)."""
    print("  generating/reusing the 600 MB context ...", flush=True)
    tree = make_tree()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    kubefile = WORK / "Kubefile"
    kubefile.write_text(KUBEFILE)
    EXEC.run(["bash", "-c", f"tar -C {tree} -cf - . > /dev/null"])  # warm the page cache for both
    home = WORK / "home"
    try:
        cold, warm, d1, d2 = _imgbuild(tree, kubefile, home)
        assert d1 == d2, f"rebuild changed the digest: {d1} -> {d2}"
        ratios = {"rebuild_seconds": warm}
        if which("buildah"):
            theirs = _buildah(tree, kubefile)
            ratios["native_vs_buildah_bud_push"] = theirs / cold
        print(f"  digest {d1}; rebuild {warm:.2f} s (target < 2 s)")
        for key, value in ratios.items():
            print(f"  {key}: {value:.2f}")
        return ratios
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        os.sync()
