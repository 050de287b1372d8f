"""The repository's Dockerfile, built with ``buildah bud`` (no docker daemon) and smoke-tested, offline.

The base is an offline stand-in for ``debian:bookworm-slim`` with python3 and buildah (this
machine's files, built by imgbuild, handed to buildah as a docker-archive), so the Dockerfile's
apt-get steps are skipped; the wheels come from the machine's pip configuration into the build
context (``PIP_OPTS``). buildah keeps its images in the test's own storage. The smoke test runs
the image as its own user: ``imgbuild version`` and a small native build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imgbuild.cli.main import run
from tests.support.podman import base_image_context

pytestmark = [pytest.mark.buildah, pytest.mark.root, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
_SMOKE = ("mkdir -p /tmp/ctx && echo hello > /tmp/ctx/hello.txt && printf 'FROM scratch\\nCOPY hello.txt /\\n' "
          "> /tmp/ctx/Kubefile && imgbuild build -q -t smoke:1 /tmp/ctx && imgbuild images")


def _buildah(env: dict, *args: str, timeout: int = 600) -> str:
    res = subprocess.run(["buildah", *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"buildah {args[0]} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def _context(tmp_path: Path) -> Path:
    """The repository's Dockerfile and sources (no caches) with the wheels they install."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for name in ("Dockerfile", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, ctx / name)
    shutil.copytree(ROOT / "imgbuild", ctx / "imgbuild", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(ctx / "wheels"),
                             "setuptools>=68", "wheel", f"{ctx}[docker]"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=600)
    assert wheels.returncode == 0, wheels.stderr[-3000:]
    return ctx


@pytest.fixture
def buildah_env(tmp_path: Path):
    """buildah with its storage under the test's tmp dir (the machine's images untouched), removed after."""
    store = tmp_path / "containers"
    (store / "graph").mkdir(parents=True)
    conf = tmp_path / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "overlay"\nrunroot = "{store}/run"\ngraphroot = "{store}/graph"\n')
    env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}
    yield env
    subprocess.run(["buildah", "rm", "--all"], env=env, capture_output=True, check=False)
    subprocess.run(["buildah", "rmi", "--all", "--force"], env=env, capture_output=True, check=False)
    subprocess.run(["umount", "-R", "-l", str(store / "graph" / "overlay")], capture_output=True, check=False)


def test_dockerfile_builds_with_buildah_and_runs_imgbuild(tmp_path: Path, buildah_env: dict, capsys) -> None:
    assert run(["build", "-q", "-t", "imgbuild-test-base:1", str(base_image_context(tmp_path / "base"))]) == 0
    assert run(["save", "-o", str(tmp_path / "base.tar"), "--format", "docker-archive", "imgbuild-test-base:1"]) == 0
    _buildah(buildah_env, "pull", "-q", f"docker-archive:{tmp_path / 'base.tar'}")

    _buildah(buildah_env, "bud", "--isolation", "chroot", "--pull=never", "--layers=false",
             "--build-arg", "BASE=localhost/imgbuild-test-base:1",
             "--build-arg", "PIP_OPTS=--no-index --find-links /context/wheels",
             "-t", "imgbuild-ci:test", str(_context(tmp_path)))

    container = _buildah(buildah_env, "from", "-q", "localhost/imgbuild-ci:test").strip()
    exec_ = ("run", "--isolation", "chroot", container, "--")
    version = _buildah(buildah_env, *exec_, "imgbuild", "version")
    assert version.startswith("imgbuild 0.1.0") and "buildah: buildah version" in version
    assert _buildah(buildah_env, *exec_, "id", "-u").strip() == "1000"  # not root
    listing = _buildah(buildah_env, *exec_, "sh", "-c", _SMOKE)
    assert "smoke" in listing and "1" in listing.split()
