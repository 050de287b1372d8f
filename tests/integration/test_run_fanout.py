"""``--distribute registry`` on real sandbox hosts: nodes fetch the rootfs from the registry host, not over SSH.

One master (the registry host) and two nodes run an image with a 6 MB file in its rootfs: the master gets the
fan-out artifact over SSH and expands the tree from it, its registry starts before the nodes' distribution,
each node fetches the shared rootfs from it and receives only its own files over SSH, and ends with the same
tree direct distribution gives. An unchanged re-run (not naming the way: the cluster keeps it) runs nothing;
an added node fetches too; a big patch image makes every node fetch the new artifact; reset leaves every host
as it was. A setuid file keeps its bit on every host.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from imgbuild.cli.main import run as cli
from imgbuild.cluster.model import Cluster
from imgbuild.engine.applier import open_engine
from imgbuild.engine.context import Options
from imgbuild.engine.report import RecordingReporter
from imgbuild.home import home as _home
from tests.integration.test_run_engine import CONTEXT, _on, _upper_snapshot, build_images
from tests.support.sandbox import sandbox_slot

pytestmark = [pytest.mark.root, pytest.mark.ssh, pytest.mark.registry, pytest.mark.slow]

IMAGE = "localhost/e2e/fanout:v1"
PATCH = "localhost/e2e/fanout-patch:v2"
BIG = 6 << 20


class _Counting(RecordingReporter):
    """Records steps and notes, and counts the bytes streamed over SSH per host."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes: dict[str, int] = {}

    def sent(self, host: str, nbytes: int, total: int | None = None) -> None:
        self.bytes[host] = self.bytes.get(host, 0) + nbytes


@pytest.fixture(scope="module")
def hosts():
    with sandbox_slot("imgbtfan", 4) as sb:
        yield sb


def _tree(sb, host, root: str) -> dict[str, str]:
    listing = _on(sb, host, f"cd {root} && find . -path ./registry -prune -o -type f -print0 | sort -z | "
                            "xargs -0 sha256sum")
    return dict(reversed(line.split(None, 1)) for line in listing.splitlines())


def test_nodes_fetch_the_rootfs_from_the_registry(hosts, tmp_path, capsys):
    context = tmp_path / "ctx"
    shutil.copytree(CONTEXT, context)
    (context / "bin").mkdir()
    (context / "bin" / "big").write_bytes(os.urandom(BIG))
    (context / "bin" / "suid").write_text("#!/bin/sh\n")
    (context / "bin" / "suid").chmod(0o4755)  # the mount drops the bit; the hosts get it back
    build_images(IMAGE, context, capsys)
    h1, h2, h3, h4 = hosts.hosts
    before = {h.name: _upper_snapshot(h) for h in hosts.hosts}
    key = ["--pk", str(hosts.key_file)]

    # the dry run lists the registry host's distribution and registry start before the nodes' fetches
    assert cli(["run", IMAGE, "--masters", h1.address, "--nodes", f"{h2.address},{h3.address}", *key,
                "--distribute", "registry", "--dry-run", "--json"]) == 0
    plan = [(s["phase"], s["host"], s["what"]) for s in json.loads(capsys.readouterr().out)["steps"]]
    order = [p for p in plan if p[0] in ("Distribute", "Registry")]
    init_registry = next(i for i, p in enumerate(order) if p[2].startswith("init-registry"))
    first_fetch = next(i for i, p in enumerate(order) if p[2].startswith("fetch rootfs"))
    assert init_registry < first_fetch and {p[1] for p in order[first_fetch:] if p[0] == "Distribute"} == {
        h2.address, h3.address}
    assert cli(["run", IMAGE, "--masters", h1.address, "--nodes", "127.0.0.1", "--distribute", "rsync"]) == 2
    capsys.readouterr()

    desired = Cluster.from_flags([IMAGE], masters=h1.address, nodes=f"{h2.address},{h3.address}",
                                 pk=str(hosts.key_file))
    reporter = _Counting()
    with open_engine(_home(), reporter=reporter) as engine:
        engine.apply(desired, Options(distribute="registry"))
    assert reporter.bytes[h1.address] > BIG  # the registry host: its rootfs and the artifact, over SSH
    for h in (h1, h2, h3):
        assert _on(hosts, h, "stat -c %a /var/lib/sealos/data/default/rootfs/bin/suid").strip() == "4755", h
    for h in (h2, h3):
        assert reporter.bytes.get(h.address, 0) < BIG // 8, (h.address, reporter.bytes)
        assert f"host={h.address}" in _on(hosts, h, "cat /etc/e2e-demo.conf")
    rootfs = "/var/lib/sealos/data/default/rootfs"
    shared = {k: v for k, v in _tree(hosts, h1, rootfs).items() if not k.startswith(("./etc/", "./.imgbuild"))}
    for h in (h2, h3):
        got = _tree(hosts, h, rootfs)
        assert {k: v for k, v in got.items() if not k.startswith(("./etc/", "./.imgbuild"))} == shared
        assert _on(hosts, h, f"ls -A {rootfs}/registry 2>/dev/null || true").strip() == ""
    catalog = _on(hosts, h2, "curl -fsS http://sealos.hub:5000/v2/_catalog")
    assert "imgbuild-distribute/rootfs" in catalog and "demo/pause" in catalog

    with open_engine(_home(), reporter=(again := _Counting())) as engine:  # the cluster keeps its way
        assert engine.apply(desired, Options()).steps == ()
    assert sum(again.bytes.values()) == 0

    bigger = Cluster.from_flags([IMAGE], masters=h1.address, nodes=f"{h2.address},{h3.address},{h4.address}",
                                pk=str(hosts.key_file))
    with open_engine(_home(), reporter=(added := _Counting())) as engine:
        steps = engine.apply(bigger, Options()).steps
    assert {s.host for s in steps} == {h4.address}
    assert added.bytes.get(h4.address, 0) < BIG // 8
    assert _tree(hosts, h4, rootfs).keys() == _tree(hosts, h2, rootfs).keys()

    # a big patch image changes most of every node's tree: the nodes fetch the new artifact again
    patch = tmp_path / "patch"
    (patch / "bin").mkdir(parents=True)
    (patch / "bin" / "big2").write_bytes(os.urandom(2 * BIG))
    (patch / "Kubefile").write_text('FROM scratch\nLABEL sealos.io.type="patch"\nCOPY bin bin\n')
    assert cli(["build", "-q", "-t", PATCH, str(patch)]) == 0
    capsys.readouterr()
    patched = Cluster.from_flags([IMAGE, PATCH], masters=h1.address,
                                 nodes=f"{h2.address},{h3.address},{h4.address}", pk=str(hosts.key_file))
    with open_engine(_home(), reporter=(upgraded := _Counting())) as engine:
        engine.apply(patched, Options())
    assert upgraded.bytes[h1.address] > BIG  # the registry host: the new artifact and the changes
    for h in (h2, h3, h4):
        assert upgraded.bytes.get(h.address, 0) < BIG // 8, (h.address, upgraded.bytes)
        assert _on(hosts, h, f"stat -c %s {rootfs}/bin/big2").strip() == str(2 * BIG)

    assert cli(["reset"]) == 0
    capsys.readouterr()
    for h in hosts.hosts:
        assert _upper_snapshot(h) == before[h.name], h.name
