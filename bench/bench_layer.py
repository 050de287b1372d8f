"""Layer writing speed: imgbuild's writer vs ``tar | zstd -T0 -3`` and vs buildah's gzip path.

A ~600 MB mixed tree (a dozen large files, half random and half text, plus ~3000
small text files) is generated once under /tmp and reused. We time:

* imgbuild: ``entries_from_tree`` + ``write_layer`` (zstd level 3, all cores), and gzip level 6;
* ``tar -c --sort=name | zstd -T0 -3`` (the bar: within 1.3x);
* ``tar -c --sort=name | gzip -6`` (single-threaded gzip, the compression buildah uses);
* real buildah: ``buildah bud`` of ``FROM scratch / COPY . /`` (chroot isolation, vfs storage,
  private root) followed by ``buildah push`` to an ``oci:`` directory (gzip), if buildah exists.

Ratios above 1 mean imgbuild is faster. Run with ``python -m bench layer``.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import time
from pathlib import Path

from imgbuild.engine.exec import LocalExecutor, which
from imgbuild.oci.layer import entries_from_tree, write_layer

EXEC = LocalExecutor()

__all__ = ["TREE", "make_tree", "main"]

TREE = Path(os.environ.get("IMGBUILD_BENCH_TREE", "/tmp/imgbuild-bench-tree"))
WORK = Path("/tmp/imgbuild-bench-work")
_STAMP = "tree-v1"
_WORDS = ("kube", "let", "api", "server", "etcd", "pod", "node", "image", "layer", "config", "the", "and",
          "registry", "cluster", "= ", "{", "}", "\n", "  ", "true", "false", "0", "42", "name:", "#", "sealos")


def _text(rng: random.Random, size: int) -> bytes:
    """Compressible, non-trivial text: random words."""
    words = rng.choices(_WORDS, k=size // 4 + 16)
    return " ".join(words).encode()[:size]


def make_tree(root: Path = TREE) -> Path:
    """Generate the ~600 MB mixed tree once (deterministically); reuse it when it is already there."""
    if (root / _STAMP).exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(1234)
    text_pool = _text(rng, 8 << 20)
    big = root / "big"
    big.mkdir(parents=True)
    for i in range(12):  # 12 x 40 MiB, half random, half text
        with open(big / f"blob-{i:02d}.bin", "wb") as f:
            for _ in range(40):
                f.write(rng.randbytes(512 << 10))
                off = rng.randrange(len(text_pool) - (512 << 10))
                f.write(text_pool[off: off + (512 << 10)])
    for i in range(3000):  # ~3000 small text files, ~40 KiB on average: ~120 MB
        d = root / "small" / f"d{i % 40:02d}" / f"s{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        size = rng.randrange(512, 80 << 10)
        off = rng.randrange(len(text_pool) - size)
        (d / f"file-{i:04d}.txt").write_bytes(text_pool[off: off + size])
    (root / _STAMP).write_text("done\n")
    return root


def _cpu() -> float:
    """User+system seconds of this process (all threads) and of its waited-for children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(label: str, fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``fn``, printed."""
    c0, t0 = _cpu(), time.perf_counter()
    fn()
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    print(f"  {label:<44} {wall:7.2f} s wall {cpu:7.2f} s cpu", flush=True)
    return wall, cpu


def _best_of(runs: int, *pairs) -> list[tuple[float, float]]:
    """Run each (label, fn) ``runs`` times, interleaved so load changes hit all alike; best wall of each."""
    results: list[list[tuple[float, float]]] = [[] for _ in pairs]
    for _ in range(runs):
        for i, (label, fn) in enumerate(pairs):
            results[i].append(_timed(label, fn))
    return [min(r) for r in results]


def _imgbuild(tree: Path, out: Path, compression: str) -> None:
    with open(out, "wb") as f:
        res = write_layer(entries_from_tree(tree), f, compression=compression)
    print(f"    {compression}: {res.size / 1e6:.1f} MB, {res.digest}")


def _shell(cmd: str) -> None:
    EXEC.run(["bash", "-o", "pipefail", "-c", cmd])


def _buildah(tree: Path, work: Path) -> float:
    """Seconds for buildah bud (COPY the tree) + push to oci: (gzip); a private root, removed afterwards."""
    root, runroot = work / "buildah-root", work / "buildah-runroot"
    (work / "Containerfile").write_text("FROM scratch\nCOPY . /\n")
    g = ["buildah", "--root", str(root), "--runroot", str(runroot), "--storage-driver", "vfs"]
    try:
        bud, _ = _timed("buildah bud (COPY tree, vfs, chroot)", lambda: EXEC.run(
            [*g, "bud", "--isolation", "chroot", "--layers=false", "-f", str(work / "Containerfile"),
             "-t", "localhost/bench:layer", str(tree)]))
        push, _ = _timed("buildah push oci: (gzip)", lambda: EXEC.run(
            [*g, "push", "localhost/bench:layer", f"oci:{work / 'oci-out'}:bench"]))
    finally:
        EXEC.run([*g, "rmi", "--all", "--force"], check=False)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(runroot, ignore_errors=True)
        shutil.rmtree(work / "oci-out", ignore_errors=True)
    print(f"  {'buildah bud + push':<44} {bud + push:7.2f} s wall")
    return bud + push


def main() -> dict[str, float]:
    """Run the layer benchmark; returns ratios (>1 = imgbuild faster)."""
    print(f"  generating/reusing tree {TREE} ...", flush=True)
    tree = make_tree()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    _shell(f"tar -C {tree} -cf - . > /dev/null")  # warm the page cache
    (ours, ours_cpu), (tzstd, tzstd_cpu) = _best_of(
        3, ("imgbuild write_layer zstd -3 (all cores)", lambda: _imgbuild(tree, WORK / "l.zst", "zstd")),
        ("tar -c --sort=name | zstd -T0 -3", lambda: _shell(
            f"tar -C {tree} --sort=name -cf - . | zstd -T0 -3 -q -c > {WORK / 't.zst'}")))
    (ours_gz, _), (tgzip, _) = _best_of(
        1, ("imgbuild write_layer gzip -6", lambda: _imgbuild(tree, WORK / "l.gz", "gzip")),
        ("tar -c --sort=name | gzip -6", lambda: _shell(
            f"tar -C {tree} --sort=name -cf - . | gzip -6 -c > {WORK / 't.gz'}")))
    ratios = {"zstd_vs_tar_zstd": tzstd / ours, "zstd_cpu_vs_tar_zstd_cpu": tzstd_cpu / ours_cpu,
              "zstd_vs_tar_gzip": tgzip / ours, "gzip_vs_tar_gzip": tgzip / ours_gz}
    if which("buildah"):
        ratios["zstd_vs_buildah_bud_push"] = _buildah(tree, WORK) / ours
    shutil.rmtree(WORK, ignore_errors=True)
    print(f"  writer time / tar|zstd time: {ours / tzstd:.2f}x (target <= 1.3x)")
    for key, value in ratios.items():
        print(f"  {key}: {value:.2f}x")
    return ratios
