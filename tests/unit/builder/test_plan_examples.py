"""Every example Kubefile plans cleanly, and rootfs-demo's copy of basefs/default stays equal to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild.builder.plan import make_plan

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(p.parent.name for p in (ROOT / "kubefiles").glob("*/Kubefile") if not (p.parent / "fetch.sh").exists())
"""Contexts a fetch.sh assembles (etcd, etcd-app, hello) plan in tests/integration/test_etcd_images.py, after fetching."""


def test_examples_exist() -> None:
    assert {"minimal", "pause-demo", "rootfs-demo", "app-demo", "sealer-app", "multistage"} <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_plans_natively(name: str) -> None:
    plan = make_plan(ROOT / "kubefiles" / name)
    assert plan.backend == "native" and plan.total_steps >= 2


def test_rootfs_demo_carries_basefs_default_unchanged() -> None:
    base = ROOT / "basefs" / "default"
    demo = ROOT / "kubefiles" / "rootfs-demo"
    for path in base.rglob("*"):
        if path.is_file():
            rel = path.relative_to(base)
            assert (demo / rel).read_bytes() == path.read_bytes(), rel
            assert (demo / rel).stat().st_mode == path.stat().st_mode, rel


def test_rootfs_demo_labels_name_existing_scripts() -> None:
    labels = make_plan(ROOT / "kubefiles" / "rootfs-demo").stages[-1].config["config"]["Labels"]
    for key in ("check", "init", "clean", "init-registry", "clean-registry"):
        script = labels[key].split()[0]
        assert (ROOT / "kubefiles" / "rootfs-demo" / "scripts" / script).is_file(), key
