"""``imgbuild exec`` and ``imgbuild scp`` end to end against a cluster state naming two loopback sshd hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgbuild.cli.main import run
from imgbuild.cluster.clusterfile import parse_clusterfile
from imgbuild.cluster.state import ClusterState
from imgbuild.home import home
from tests.integration.ssh_support import start_sshd

pytestmark = [pytest.mark.ssh, pytest.mark.root]


@pytest.fixture
def cluster(tmp_path: Path):
    """Cluster ``c1``: master 127.0.0.2 and node 127.0.0.3 (one sshd, port P on both), root by key."""
    server = start_sshd(tmp_path / "sshd", 1, addresses=("127.0.0.2", "127.0.0.3"))
    master, node = (f"127.0.0.{i}:{server.port}" for i in (2, 3))
    text = (f"apiVersion: apps.sealos.io/v1beta1\nkind: Cluster\nmetadata:\n  name: c1\nspec:\n"
            f"  image: [localhost/unused:v1]\n"
            f"  hosts:\n  - ips: [{master}]\n    roles: [master]\n  - ips: [{node}]\n    roles: [node]\n"
            f"  ssh:\n    pk: {server.key_file}\n")
    try:
        ClusterState.new(parse_clusterfile(text)).save(home())
        yield server, master, node
    finally:
        server.stop()


def test_exec_prefixes_lines_and_filters_hosts(cluster, capsys):
    _, master, node = cluster
    assert run(["exec", "-c", "c1", "--", "echo", "hello world"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == sorted([f"[{master}] hello world", f"[{node}] hello world"])
    assert run(["exec", "-c", "c1", "--roles", "node", "--", "echo $((6*7))"]) == 0
    assert capsys.readouterr().out == f"[{node}] 42\n"
    assert run(["exec", "-c", "c1", "--roles", "registry", "--", "true"]) == 0  # registry: master0 by default
    assert run(["exec", "-c", "c1", "--ips", "127.0.0.3", "--", "hostname"]) == 0
    assert capsys.readouterr().out.startswith(f"[{node}] ")
    assert run(["exec", "-c", "c1", "--ips", "127.0.0.9", "--", "true"]) == 2
    assert "not a host of cluster" in capsys.readouterr().err


def test_exec_failure_names_hosts_and_json(cluster, capsys):
    _, master, node = cluster
    code = run(["exec", "-c", "c1", "--json", "--", f"test $(hostname) = x || {{ echo bad >&2; exit 3; }}"])
    captured = capsys.readouterr()
    assert code == 1 and "failed on 2 of 2 hosts" in captured.err and "exit 3" in captured.err
    data = json.loads(captured.out)
    assert {d["host"] for d in data} == {master, node} and all(d["exit_code"] == 3 for d in data)
    assert all(d["stderr"] == "bad\n" for d in data)
    assert run(["exec", "-c", "nope", "--", "true"]) == 2


def test_scp_sends_once_then_nothing(cluster, capsys, tmp_path):
    _, master, node = cluster
    src = tmp_path / "manifests"
    (src / "sub").mkdir(parents=True)
    (src / "sub/a.yaml").write_text("kind: A\n")
    dest = tmp_path / "on-hosts"  # both loopback hosts share this machine's disk: one DEST per role
    for role, d in (("master", dest / "m"), ("node", dest / "n")):
        assert run(["scp", "-c", "c1", "--roles", role, str(src), str(d)]) == 0
        assert (d / "sub/a.yaml").read_text() == "kind: A\n"
    capsys.readouterr()
    assert run(["scp", "-c", "c1", "--roles", "master", "--json", str(src), str(dest / "m")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["host"] == master and data[0]["unchanged"] and data[0]["bytes"] == 0
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    assert run(["scp", "-c", "c1", "--roles", "node", str(src), str(foreign)]) == 1
    assert "not written by imgbuild" in capsys.readouterr().err
    assert run(["scp", "-c", "c1", "--roles", "node", "--replace", str(src), str(foreign)]) == 0
