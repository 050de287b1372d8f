"""--distribute registry's pieces against a real docker-registry: publish a tree, fetch it with curl, delta on top."""

import os
from pathlib import Path

import pytest

from imgbuild.engine.exec import LocalExecutor
from imgbuild.engine.fanout import HELD, REPOSITORY, SEEDED, blob_url, publish, seed, seed_registry_host
from imgbuild.engine.transfer import Job, distribute, quick_pending
from imgbuild.engine.units import Layer
from imgbuild.errors import ImgbuildError
from tests.support.registry import start_registry

pytestmark = [pytest.mark.registry]


def _tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(os.urandom(300_000))
    (root / "bin" / "tool").chmod(0o755)
    (root / "etc").mkdir()
    (root / "etc" / "conf").write_text("a=1\n")
    (root / "link").symlink_to("bin/tool")
    (root / "registry").mkdir()
    (root / "registry" / "big").write_bytes(b"x" * 1000)
    return root


def _snapshot(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        st = p.lstat()
        out[rel] = (st.st_mode, st.st_uid, int(st.st_mtime),
                    os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None)
    return out


def test_publish_fetch_then_only_host_files_are_sent(tmp_path):
    image = _tree(tmp_path / "image")
    rendered = tmp_path / "rendered"
    (rendered / "etc").mkdir(parents=True)
    (rendered / "etc" / "host.conf").write_text("ip=127.0.0.9\n")
    common = (Layer(image, "", ("registry",)),)
    art = publish(common, tmp_path / "fanout", "k1")
    assert publish(common, tmp_path / "fanout", "k1") == art  # read back, not rebuilt
    reg = start_registry(tmp_path / "srv", storage=art.root)
    try:
        dest = tmp_path / "host" / "rootfs"
        local = LocalExecutor()
        url = blob_url("127.0.0.1", reg.url.rsplit(":", 1)[1], art.digest)
        assert seed(local, url, str(dest)) == SEEDED
        assert not (dest / "registry").exists() and (dest / ".imgbuild-manifest.gz").is_file()
        assert _snapshot(dest / "bin") == _snapshot(image / "bin")
        assert seed(local, url, str(dest)) == HELD  # a tree is there: nothing fetched

        full = common + (Layer(rendered),)
        [res] = distribute([Job(local, full, str(dest))])
        assert res.ok and res.sent_files <= 2 and res.bytes < 10_000, res  # the rendered file (and etc/), no content
        assert (dest / "etc" / "host.conf").read_text() == "ip=127.0.0.9\n"
        [again] = distribute([Job(local, full, str(dest))])
        assert again.unchanged
        assert quick_pending(local, full, str(dest)) < 4096 and quick_pending(local, full, str(tmp_path / "no")) is None
        (rendered / "etc" / "new.bin").write_bytes(b"n" * 100_000)
        assert 100_000 < quick_pending(local, full, str(dest)) < 110_000
    finally:
        reg.stop()


def test_a_fetch_that_fails_leaves_the_host_as_it_was(tmp_path):
    art = publish((Layer(_tree(tmp_path / "image")),), tmp_path / "fanout", "k1")
    reg = start_registry(tmp_path / "srv", storage=tmp_path / "empty")  # does not hold the artifact
    try:
        dest = tmp_path / "host" / "rootfs"
        with pytest.raises(ImgbuildError, match="curl|cut short"):
            seed(LocalExecutor(), blob_url("127.0.0.1", reg.url.rsplit(":", 1)[1], art.digest), str(dest))
        assert not dest.exists() and not Path(f"{dest}.imgbuild-new").exists()
    finally:
        reg.stop()


def test_the_artifact_is_an_image_the_registry_lists(tmp_path):
    art = publish((Layer(_tree(tmp_path / "image")),), tmp_path / "fanout", "abc")
    from imgbuild.oci.regdir import list_registry_dir

    listing = list_registry_dir(art.root).to_dict()
    assert REPOSITORY in str(listing) and "abc" in str(listing)
    assert publish((Layer(tmp_path / "image"),), tmp_path / "fanout", "other").tag == "other"
    assert not (art.root / "docker/registry/v2/repositories" / REPOSITORY / "_manifests/tags/abc").exists()


def test_a_registry_host_expands_the_tree_from_the_artifact_it_receives(tmp_path):
    image = _tree(tmp_path / "image")
    common = (Layer(image, "", ("registry",)),)
    art = publish(common, tmp_path / "fanout", "k1")
    dest = tmp_path / "host" / "rootfs"
    local = LocalExecutor()
    assert seed_registry_host(local, art, str(dest)) == SEEDED
    assert _snapshot(dest / "bin") == _snapshot(image / "bin")
    assert (dest / "registry" / art.blob_path).stat().st_size == art.size
    # what the registry host's unit holds: the whole image (its registry/ too) and the artifact under registry/
    [res] = distribute([Job(local, (Layer(image), Layer(art.root, "registry")), str(dest))])
    assert res.ok and res.bytes < 20_000, res  # registry/big (1 KB) and headers: neither the tree nor the blob
    assert (dest / "registry" / "big").is_file()
    assert seed_registry_host(local, art, str(dest)) == HELD


def test_a_registry_that_asks_for_credentials_gets_them_on_curls_stdin(tmp_path):
    art = publish((Layer(_tree(tmp_path / "image"), "", ("registry",)),), tmp_path / "fanout", "k1")
    reg = start_registry(tmp_path / "srv", storage=art.root, auth=("admin", 'pa"ss\\word'))
    try:
        url = blob_url("127.0.0.1", reg.url.rsplit(":", 1)[1], art.digest)
        local = LocalExecutor()
        with pytest.raises(ImgbuildError, match="401"):
            seed(local, url, str(tmp_path / "a"), user="admin", password="wrong")
        assert seed(local, url, str(tmp_path / "b"), user="admin", password='pa"ss\\word') == SEEDED
        assert (tmp_path / "b" / "bin" / "tool").is_file()
    finally:
        reg.stop()
