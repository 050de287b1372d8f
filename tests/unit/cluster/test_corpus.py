"""The Clusterfile corpus: real-world sealos files load and round-trip; each invalid one fails at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild.cluster import load_clusterfile, parse_clusterfile
from imgbuild.errors import ClusterfileError

CORPUS = Path(__file__).resolve().parents[2] / "data" / "clusterfiles"
VALID = sorted((CORPUS / "valid").glob("*.yaml"))
INVALID = sorted((CORPUS / "invalid").glob("*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("# expect: "), f"{path.name} has no '# expect: LINE: MESSAGE' first line"
    return f"{path}:{first[len('# expect: '):]}"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_loads_and_dumps_byte_for_byte(path: Path) -> None:
    cf = load_clusterfile(path)
    assert cf.cluster.master0.is_master
    assert cf.cluster.images
    assert cf.dump() == path.read_text(encoding="utf-8")
    again = parse_clusterfile(cf.dump(), str(path))
    assert again.cluster == cf.cluster and again.configs == cf.configs


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_rewritten_from_the_model_loads_to_the_same_model(path: Path) -> None:
    cf = load_clusterfile(path)
    from imgbuild.cluster import Clusterfile

    regenerated = Clusterfile.new(cf.cluster, cf.configs).dump()
    back = parse_clusterfile(regenerated, "regenerated")
    assert back.cluster == cf.cluster
    assert back.configs == cf.configs


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_fails_at_its_line(path: Path) -> None:
    with pytest.raises(ClusterfileError) as info:
        load_clusterfile(path)
    assert f"{info.value.where}: {info.value.message}" == _expected(path)


def test_corpus_is_not_empty() -> None:
    assert len(VALID) >= 10 and len(INVALID) >= 30


def test_warnings_name_unknown_fields_and_kinds() -> None:
    cf = load_clusterfile(CORPUS / "valid" / "sealos-config-test.yaml")
    assert any("spec.provider" in w and ":12:" in w for w in cf.warnings)
    cf = load_clusterfile(CORPUS / "valid" / "kubeadm-and-config.yaml")
    assert any("ClusterConfiguration" in w for w in cf.warnings)
    assert [d.kind for d in cf.others] == ["ClusterConfiguration"]
