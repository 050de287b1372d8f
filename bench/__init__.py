"""bench/: benchmarks of imgbuild against the tools it replaces (tar|zstd, buildah, skopeo, scp).

Each ``bench_<name>.py`` module has a ``main() -> dict`` that runs its benchmark,
prints timings and ratios, and returns the ratios. Run them with ``python -m bench``
(all) or ``python -m bench <name> ...`` (some). Benchmarks are not part of the test
suite: they take minutes and want a quiet machine.
"""
