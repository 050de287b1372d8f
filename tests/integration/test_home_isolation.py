"""One Home: the library works in the Home its store carries and never touches ``$IMGBUILD_HOME``.

``$IMGBUILD_HOME`` names a directory holding only a sentinel file; every verb is given a store
opened on another Home (real overlay mounts, a real native build, gc and diff), and afterwards
that directory still holds only the sentinel, while the other Home has the caches and mounts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild import api
from imgbuild.home import Home
from imgbuild.oci.store import open_store
from tests.support.layered_images import make_layered_image

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$IMGBUILD_HOME``: a directory with one sentinel file in it."""
    home = tmp_path / "env-home"
    home.mkdir()
    (home / "sentinel").write_text("untouched")
    monkeypatch.setenv("IMGBUILD_HOME", str(home))
    return home


def test_verbs_on_another_homes_store_write_nothing_under_imgbuild_home(env_home: Path, tmp_path: Path):
    other = Home(tmp_path / "other-home").ensure()
    store = open_store(other)
    make_layered_image(store, "localhost/iso/app:v1", {"etc/a": b"a"}, {"etc/b": b"b"})
    with api.mount("localhost/iso/app:v1", store=store) as m:
        assert (m.path / "etc/b").read_bytes() == b"b"
        assert [r.id for r in api.mounts(home=other)] == [m.id]
    rw = api.mount("localhost/iso/app:v1", store=store, rw=True)
    (rw.path / "etc/c").write_bytes(b"c")
    api.commit(rw.id, "localhost/iso/app:v2", store=store)
    api.umount(rw.id, home=other)
    assert [c.path for c in api.diff("localhost/iso/app:v1", "localhost/iso/app:v2", store=store).files.added] == \
        ["etc/c"]
    api.build(ROOT / "kubefiles" / "pause-demo", store=store, tags=("localhost/iso/pause:v1",))
    api.gc(store=store)
    assert sorted(p.name for p in env_home.iterdir()) == ["sentinel"]
    assert (other.cache / "layers").is_dir() and (other.cache / "build-steps").is_dir() and other.mounts.is_dir()
