"""A deep tree never breaks the Home: a deep layer is refused, and deep leftovers do not stop umount or gc.

Real overlay and copy mounts (we are root), through the CLI as a user runs it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgbuild.cli.main import run
from imgbuild.home import home
from imgbuild.oci.store import open_store
from tests.support.hostile import deep_members, nest_dirs, raw_image
from tests.support.oci_images import make_image

pytestmark = pytest.mark.root


@pytest.mark.parametrize("mechanism", ["overlay", "copy"])
def test_a_1500_deep_layer_is_refused_with_a_clear_error(mechanism: str, capsys: pytest.CaptureFixture) -> None:
    raw_image(open_store(home()), "evil/deep:1", deep_members(1500))
    assert run(["mount", "--mechanism", mechanism, "evil/deep:1"]) == 2
    err = capsys.readouterr().err
    assert "1500" not in err and "513 directories deep" in err and "at most 512 levels" in err
    assert "internal error" not in err
    assert run(["mounts"]) == 0 and "evil/deep" not in capsys.readouterr().out
    assert run(["store", "gc"]) == 0


def test_deep_leftovers_in_the_cache_and_a_mount_do_not_stop_umount_or_gc(capsys: pytest.CaptureFixture) -> None:
    h = home()
    make_image(open_store(h), "tool:1", {"bin/tool": b"tool"})
    stray = h.cache / "layers" / ("ab" * 32)
    stray.mkdir(parents=True)
    nest_dirs(stray, 1500)  # a layer an older imgbuild unpacked, that no image uses any more
    assert run(["mount", "--mechanism", "copy", "tool:1"]) == 0
    merged = Path(capsys.readouterr().out.strip())
    nest_dirs(merged, 1500)
    assert run(["umount", "tool:1"]) == 0, capsys.readouterr().err
    assert not merged.exists()
    assert run(["store", "gc"]) == 0, capsys.readouterr().err
    assert not stray.exists()
