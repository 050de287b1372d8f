"""Config documents applied to read-only image trees, results in a separate output tree."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from imgbuild.cluster import Config, apply_configs
from imgbuild.cluster.configs import merge_documents
from imgbuild.errors import ClusterfileError

K8S, CALICO = "labring/kubernetes:v1.25.0", "docker.io/labring/calico:v3.24.1"


@pytest.fixture
def trees(tmp_path: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    k8s, calico = tmp_path / "k8s", tmp_path / "calico"
    (k8s / "etc").mkdir(parents=True)
    (k8s / "etc" / "config.toml").write_text("version = 1\n")
    (calico / "charts" / "calico").mkdir(parents=True)
    (calico / "charts" / "calico" / "values.yaml").write_text(
        "installation:\n  enabled: false\n  calicoNetwork:\n    ipPools: [{cidr: 100.64.0.0/10}]\n  keep: me\n")
    (calico / "manifests").mkdir()
    (calico / "manifests" / "calico.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: '1'}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: op}\nspec: {replicas: 1}\n")
    for tree in (k8s, calico):
        os.chmod(tree, 0o555)  # images are mounted read-only
    out = {K8S: tmp_path / "out-k8s", CALICO: tmp_path / "out-calico"}
    yield {K8S: k8s, CALICO: calico}, out
    for tree in (k8s, calico):
        os.chmod(tree, 0o755)


def _read(out: dict[str, Path], image: str, rel: str) -> str:
    return (out[image] / rel).read_text()


def test_strategies(trees) -> None:
    src, out = trees
    configs = [
        Config("containerd", "etc/config.toml", "version = 2\n", match=K8S),
        Config("pre", "etc/config.toml", "# first", match=K8S, strategy="insert"),
        Config("post", "/etc/config.toml", "# last", match="*kubernetes*", strategy="append"),
        Config("calico", "charts/calico/values.yaml", "installation:\n  enabled: true\n  calicoNetwork:\n"
               "    ipPools: [{cidr: 10.160.0.0/12}]\n", match="labring/calico:*", strategy="merge"),
    ]
    changed = apply_configs(configs, src, out)
    assert changed == {K8S: ["etc/config.toml"], CALICO: ["charts/calico/values.yaml"]}
    assert _read(out, K8S, "etc/config.toml") == "# first\nversion = 2\n\n# last"
    assert yaml.safe_load(_read(out, CALICO, "charts/calico/values.yaml")) == {"installation": {
        "enabled": True, "calicoNetwork": {"ipPools": [{"cidr": "10.160.0.0/12"}]}, "keep": "me"}}
    assert (src[K8S] / "etc" / "config.toml").read_text() == "version = 1\n"  # the image is untouched


def test_no_match_applies_to_every_image_and_creates_files(trees) -> None:
    src, out = trees
    changed = apply_configs([Config("hosts", "etc/hosts.extra", "127.0.0.2 api", strategy="append")], src, out)
    assert changed == {K8S: ["etc/hosts.extra"], CALICO: ["etc/hosts.extra"]}
    assert _read(out, CALICO, "etc/hosts.extra") == "\n127.0.0.2 api"


def test_match_hitting_no_image_names_the_config(trees) -> None:
    src, out = trees
    cfg = Config("dns", "a.yaml", "x", match="node-local-dns:*", where="Clusterfile:40")
    with pytest.raises(ClusterfileError, match="Config dns: match 'node-local-dns:\\*' hits no image") as info:
        apply_configs([cfg], src, out)
    assert info.value.where == "Clusterfile:40"


def test_merge_is_multi_document_aware(trees) -> None:
    src, out = trees
    patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: op}\nspec: {replicas: 3}\n"
    apply_configs([Config("op", "manifests/calico.yaml", patch, strategy="merge")], {CALICO: src[CALICO]},
                  {CALICO: out[CALICO]})
    docs = list(yaml.safe_load_all(_read(out, CALICO, "manifests/calico.yaml")))
    assert docs[0] == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1"}}
    assert docs[1]["spec"] == {"replicas": 3}


@pytest.mark.parametrize("current, data, want", [
    (None, "a: 1", [{"a": 1}]),
    ("", "a: 1\n---\nb: 2", [{"a": 1}, {"b": 2}]),
    ("a: {b: 1, c: [1, 2]}", "a: {c: [3], d: null}", [{"a": {"b": 1, "c": [3], "d": None}}]),
    ("x: 1\n---\ny: 2\n", "z: 3", [{"x": 1, "z": 3}, {"y": 2, "z": 3}]),  # no kind: every document, as sealos
    ("kind: A\nmetadata: {name: n}\nv: 1\n---\nkind: B\nv: 1\n", "kind: B\nv: 2", [
        {"kind": "A", "metadata": {"name": "n"}, "v": 1}, {"kind": "B", "v": 2}]),
])
def test_merge_documents(current: str | None, data: str, want: list) -> None:
    assert list(yaml.safe_load_all(merge_documents(current, data))) == want


def test_merge_errors() -> None:
    with pytest.raises(ClusterfileError, match="matches no document of the file \\(Deployment x\\)"):
        merge_documents("kind: Service\nmetadata: {name: x}\n", "kind: Deployment\nmetadata: {name: x}\n")
    with pytest.raises(ClusterfileError, match="the file is not YAML"):
        merge_documents("a: [", "b: 1")
    with pytest.raises(ClusterfileError, match="must be YAML mappings"):
        merge_documents("a: 1", "- x")


def test_merge_json_stays_json(tmp_path: Path) -> None:
    tree, out = tmp_path / "t", tmp_path / "o"
    tree.mkdir()
    (tree / "daemon.json").write_text('{"log-level": "info", "registry-mirrors": []}')
    apply_configs([Config("d", "daemon.json", '{"registry-mirrors": ["http://127.0.0.1:5000"]}', strategy="merge")],
                  {"img:1": tree}, {"img:1": out})
    assert json.loads((out / "daemon.json").read_text()) == {"log-level": "info",
                                                            "registry-mirrors": ["http://127.0.0.1:5000"]}


def test_symlinks_in_the_image_are_refused(tmp_path: Path) -> None:
    tree, out = tmp_path / "t", tmp_path / "o"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "link").symlink_to("/etc/passwd")
    with pytest.raises(ClusterfileError, match="passes through the symlink 'link'"):
        apply_configs([Config("c", "etc/link", "x")], {"i:1": tree}, {"i:1": out})
    assert not (out / "etc" / "link").exists()


def test_mode_of_the_original_file_is_kept(tmp_path: Path) -> None:
    tree, out = tmp_path / "t", tmp_path / "o"
    (tree / "scripts").mkdir(parents=True)
    (tree / "scripts" / "init.sh").write_text("#!/bin/bash\n")
    (tree / "scripts" / "init.sh").chmod(0o755)
    apply_configs([Config("c", "scripts/init.sh", "echo hi", strategy="append")], {"i:1": tree}, {"i:1": out})
    assert (out / "scripts" / "init.sh").stat().st_mode & 0o777 == 0o755


def test_path_leaving_the_image_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ClusterfileError, match="leaves the image"):
        apply_configs([Config("c", "../x", "x")], {"i:1": tmp_path}, {"i:1": tmp_path / "o"})


def test_matches_familiar_and_normalised_names() -> None:
    cfg = Config("c", "a", match="labring/calico:v3.24.1")
    assert cfg.matches("docker.io/labring/calico:v3.24.1") and cfg.matches("labring/calico:v3.24.1")
    assert not cfg.matches("labring/calico:v3.25.0")
    assert Config("c", "a", match="docker.io/labring/*").matches("labring/helm:v3.8.2")
