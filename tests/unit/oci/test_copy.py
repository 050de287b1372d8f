"""copy / copy_each: each blob once, skipped when present, names written last; progress as the CLI shows it."""

from __future__ import annotations

import io
import threading

import pytest

from imgbuild.cli.output import BarProgress, LineProgress, short_size
from imgbuild.errors import DigestMismatch, StoreError
from imgbuild.oci.image import open_layout
from imgbuild.oci.model import Descriptor
from imgbuild.oci.store import Store
from imgbuild.oci.transfer import Failed, StoreSink, copy, copy_each
from imgbuild.progress import NullProgress, RecordingProgress, item, split
from imgbuild.reference import parse_reference
from tests.support.oci_images import make_image


@pytest.fixture
def src(tmp_path) -> Store:
    st = Store(tmp_path / "src")
    shared = {"etc/base": b"base" * 1000}
    make_image(st, "localhost:5000/a:v1", shared, {"etc/a": b"a"})
    make_image(st, "localhost:5000/b:v1", shared, {"etc/b": b"b"})
    return st


def _source(store: Store, ref: str):
    return open_layout(store, store.resolve(ref))


def test_copy_each_moves_each_blob_once_then_names_each_image(src, tmp_path):
    dst = Store(tmp_path / "dst")
    rec = RecordingProgress()
    refs = ["localhost:5000/a:v1", "localhost:5000/b:v1"]
    done = copy_each([(_source(src, r), parse_reference(r)) for r in refs], StoreSink(dst), progress=rec, verb="load")
    started = [e.label for e in rec.events if e.kind == "started" and "/" in e.label]
    assert len(started) == len(set(started)) == 5  # 2 configs, 3 distinct layers: the shared one once
    assert set(rec.outcomes().values()) == {"copied"} and len(done.moved()) == 5
    assert sum(rec.moved(label) for label in started) == sum(d.size for d in done.moved())
    assert [e.label for e in rec.events][0] == "load" and rec.events[-1].label == "load"
    for r, result in zip(refs, done.results):
        assert dst.resolve(r).digest == src.resolve(r).digest == result.digest
    assert dst.verify() == []
    again = RecordingProgress()
    copy(_source(src, refs[0]), StoreSink(dst), name=parse_reference(refs[0]), progress=again, verb="load")
    assert set(again.outcomes().values()) == {"exists"} and not [e for e in again.events if e.kind == "advanced"]


class _Flaky(StoreSink):
    """A store sink that fails one blob."""

    def __init__(self, store: Store, bad: str) -> None:
        super().__init__(store)
        self.bad = bad

    def put_blob(self, desc, open_blob, on_bytes):
        if str(desc.digest) == self.bad:
            raise StoreError("disk full", str(desc.digest))
        return super().put_blob(desc, open_blob, on_bytes)


def test_a_failed_blob_writes_no_name_or_fails_only_its_images(src, tmp_path):
    a, b = _source(src, "localhost:5000/a:v1"), _source(src, "localhost:5000/b:v1")
    only_a = str(a.layers[1].digest)
    dst = Store(tmp_path / "dst")
    with pytest.raises(StoreError, match="disk full"):
        copy(a, _Flaky(dst, only_a), name=parse_reference("localhost:5000/a:v1"))
    assert dst.entries() == []
    pairs = [(a, parse_reference("localhost:5000/a:v1")), (b, parse_reference("localhost:5000/b:v1"))]
    done = copy_each(pairs, _Flaky(dst, only_a), keep_going=True)
    assert isinstance(done.results[0], Failed) and str(done.results[0]).startswith(f"blob {only_a}: disk full")
    assert done.results[1] == b.descriptor and [r.normalized for r, _ in dst.tags()] == ["localhost:5000/b:v1"]
    assert done.outcomes[only_a] == "failed" and all(d.digest != only_a for d in done.moved())


def test_a_source_that_lies_about_a_blob_stores_nothing(src, tmp_path):
    image = _source(src, "localhost:5000/a:v1")
    layer = image.layers[1]

    class Lying:
        descriptor, manifest, config, layers = image.descriptor, image.manifest, image.config, image.layers

        def open_blob(self, desc: Descriptor):
            return io.BytesIO(b"x" * desc.size) if desc.digest == layer.digest else image.open_blob(desc)

    dst = Store(tmp_path / "dst")
    with pytest.raises(DigestMismatch):
        copy(Lying(), StoreSink(dst), name=parse_reference("localhost:5000/a:v1"))
    assert not dst.has_blob(layer.digest) and dst.entries() == []


def test_labels_split_into_task_and_item():
    assert split(item("push", "sha256:ab")) == ("push", "sha256:ab")
    assert split("push") == (None, "push") and split("distribute/10.0.0.2") == ("distribute", "10.0.0.2")
    NullProgress().finished("x")


def test_line_progress_prints_one_line_per_finished_item_as_before():
    out = io.StringIO()
    p = LineProgress(out)
    digest = "sha256:" + "ab" * 32
    p.started("push", 12_300_000)
    p.started(f"push/{digest}", 12_300_000)
    p.advanced(f"push/{digest}", 12_300_000)
    p.finished(f"push/{digest}", "pushed")
    p.started("push/sha256:" + "cd" * 32, 240)
    p.finished("push/sha256:" + "cd" * 32, "exists")
    p.finished("push")
    assert out.getvalue() == f"pushed {digest[:19]} 12.3MB\nexists sha256:{'cd' * 6} 240B\n"
    assert short_size(0) == "0.00B" and short_size(99_950) == "100kB" and short_size(10**12) == "1.00TB"


def test_bar_progress_counts_skipped_items_towards_the_task():
    p = BarProgress(io.StringIO())
    p.started("pull", 300)
    for name, size in (("a", 100), ("b", 200)):
        p.started(f"pull/{name}", size)
    p.advanced("pull/a", 100)
    p.finished("pull/a", "pulled")
    p.finished("pull/b", "exists")
    assert p._bars["pull"].n == 300 and set(p._bars) == {"pull"}
    threads = [threading.Thread(target=p.advanced, args=("pull/none", 1)) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    p.finished("pull")
    assert p._bars == {}
