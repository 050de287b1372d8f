"""Hostile layers lose their power: no devices, no setuid, 0700 caches and mounts, nosuid,nodev, bounded expansion.

Real mounts as root, with a Home that already existed as 0755 (as a user may have made it).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from imgbuild.cli.main import run
from imgbuild.engine.exec import LocalExecutor
from imgbuild.errors import InputError
from imgbuild.home import home
from imgbuild.oci.store import open_store
from imgbuild.rootfs.mount import mount
from imgbuild.rootfs.policy import UnpackPolicy
from tests.support.hostile import bomb_image, member, raw_image

pytestmark = pytest.mark.root

HOSTILE = [
    member("dev", "dir", mode=0o755), member("dev/vda", "blk", mode=0o666, dev=(254, 0)),
    member("dev/mem", "chr", mode=0o666, dev=(1, 1)),
    member("bin", "dir", mode=0o755), member("bin/su", data=b"#!/bin/sh\nid -u\n", mode=0o4755),
]


@pytest.fixture
def open_home() -> Path:
    """The test's Home, made 0755 beforehand with a 0755 cache, as a user's existing directory may be."""
    h = home()
    (h.cache / "layers").mkdir(parents=True)
    for p in (h.root, h.cache, h.cache / "layers"):
        p.chmod(0o755)
    raw_image(open_store(h), "evil/special:1", HOSTILE)
    return h.root


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _mount_options(point: Path) -> set[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(point):
            return set(fields[5].split(","))
    raise AssertionError(f"{point} is not mounted")


def _nobody_can_list(path: Path) -> bool:
    return subprocess.run(["ls", str(path)], user=65534, capture_output=True).returncode == 0


def test_default_mount_has_no_devices_no_setuid_and_private_dirs(open_home: Path, capsys) -> None:
    assert run(["mount", "--mechanism", "overlay", "evil/special:1"]) == 0
    merged = Path(capsys.readouterr().out.strip())
    assert os.listdir(merged / "dev") == [] and _mode(merged / "bin/su") == 0o755
    assert {"nosuid", "nodev", "ro"} <= _mount_options(merged)
    h = home()
    assert _mode(h.cache) == 0o700 and _mode(h.mounts) == 0o700
    assert not _nobody_can_list(h.cache / "layers") and not _nobody_can_list(merged)
    assert run(["umount", "evil/special:1"]) == 0


def test_special_files_only_when_asked_and_only_in_a_private_copy(open_home: Path, capsys) -> None:
    assert run(["mount", "--special-files", "--mechanism", "overlay", "evil/special:1"]) == 2
    assert "special files (devices, setuid) need the copy mechanism" in capsys.readouterr().err
    assert run(["mount", "--special-files", "evil/special:1"]) == 0
    merged = Path(capsys.readouterr().out.strip())
    assert stat.S_ISBLK((merged / "dev/vda").lstat().st_mode) and _mode(merged / "bin/su") == 0o4755
    assert not _nobody_can_list(merged.parent)
    assert not list((home().cache / "layers").glob("*/dev/vda"))  # never in the shared cache
    assert run(["umount", "evil/special:1"]) == 0


def _bomb_image(kind: str, size: int) -> str:
    """An image whose one layer is ``size`` zero bytes in a tar, compressed with gzip or zstd."""
    ref = f"evil/bomb-{kind}:1"
    _desc, blob_size = bomb_image(open_store(home()), ref, size, kind)
    assert size / blob_size > 900
    return ref


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
@pytest.mark.parametrize("mechanism", ["overlay", "copy"])
def test_a_decompression_bomb_stops_at_its_allowance(kind: str, mechanism: str) -> None:
    ref = _bomb_image(kind, 24 << 20)
    tight = UnpackPolicy(min_allowance=4 << 20)
    with pytest.raises(InputError, match="refusing a possible decompression bomb"):
        mount(ref, store=open_store(home()), executor=LocalExecutor(), mechanism=mechanism, policy=tight)
    layers = home().cache / "layers"
    assert not [p for p in layers.glob("*") if p.name != ".locks"] and not list(home().mounts.glob("*/"))
    with mount(ref, store=open_store(home()), executor=LocalExecutor(), mechanism=mechanism,
               policy=UnpackPolicy(max_ratio=0)) as m:
        assert (m.path / "zeros").stat().st_size == 24 << 20


def test_the_cli_refuses_a_bomb_past_the_default_allowance(capsys) -> None:
    ref = _bomb_image("zstd", 300 << 20)
    assert run(["mount", "--mechanism", "copy", ref]) == 2
    err = capsys.readouterr().err
    assert "layer expands past 268,435,456 bytes" in err and "--max-expansion" in err


def test_copy_from_an_image_refuses_a_bomb(tmp_path, capsys) -> None:
    ref = _bomb_image("zstd", 300 << 20)
    (tmp_path / "Kubefile").write_text(f"FROM scratch\nCOPY --from={ref} /zeros /zeros\n")
    assert run(["build", "--backend", "native", "-t", "evil/copied:1", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "decompression bomb in COPY --from" in err and "Traceback" not in err
