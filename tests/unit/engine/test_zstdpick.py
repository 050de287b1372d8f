"""The zstd decision: forced, absent, small, incompressible, no spare CPU, slow link vs fast link."""

import os
import re
import time

import pytest

from imgbuild.engine import _zstdpick as Z
from imgbuild.engine._manifest import scan
from imgbuild.engine.exec import Result


class _Link:
    """An executor that swallows stdin at ``rate`` bytes per second."""

    host = "fake"

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def run(self, argv, *, input=None, **kw):
        time.sleep(len(input) / self.rate)
        return Result(tuple(argv), "", "", 0, self.host)


@pytest.fixture
def trees(tmp_path):
    text, noise = tmp_path / "text", tmp_path / "noise"
    text.mkdir()
    noise.mkdir()
    (text / "a.txt").write_bytes(b"kube let api server etcd pod node image " * 50_000)
    (noise / "a.bin").write_bytes(os.urandom(2_000_000))
    return scan(text), scan(noise)


def _decide(ex, entries, total=Z.AUTO_MIN_BYTES, zstd=True, forced=None):
    return Z.decide(ex, forced, zstd, total, entries, sorted(entries), {}, 1)


def test_the_cheap_answers(trees):
    text, noise = trees
    assert _decide(_Link(1e9), text, forced=True).zstd and not _decide(_Link(1e9), text, forced=False).zstd
    assert "no zstd" in _decide(_Link(1e9), text, zstd=False).why
    assert "under 64 MiB" in _decide(_Link(1e9), text, total=1 << 20).why
    assert "ratio" in _decide(_Link(1e9), noise).why and not _decide(_Link(1e9), noise).zstd


def test_busy_cpu_is_not_probed(trees, monkeypatch):
    monkeypatch.setattr(Z, "_spare_now", lambda: 0.0)
    monkeypatch.setattr(Z, "_probe", lambda ex: pytest.fail("probed"))
    choice = _decide(_Link(1e9), trees[0])
    assert not choice.zstd and "no spare CPU" in choice.why


def test_slow_link_compresses_fast_link_does_not(trees, monkeypatch):
    monkeypatch.setattr(Z, "_spare_now", lambda: 2.0)
    monkeypatch.setattr(Z, "_cpu", iter([(0, 0), (100, 100)] * 2).__next__)  # the probe sees idle cores
    slow = _decide(_Link(20e6), trees[0])
    measured = re.search(r"link (\d+) MB/s", slow.why)
    assert slow.zstd and measured and int(measured.group(1)) <= 20, slow.why  # a loaded machine only slows it
    fast = _decide(_Link(1e12), trees[0])
    assert not fast.zstd
