"""Values templating of the Clusterfile itself: ``apply -f Clusterfile --values v.yaml --set a.b=c``, as sealos."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from imgbuild.cluster import load_clusterfile
from imgbuild.cluster.values import ip_at, ip_net
from imgbuild.errors import ClusterfileError

TEMPLATES = Path(__file__).resolve().parents[2] / "data" / "clusterfiles" / "templates"


def test_sealos_template_with_values_set_and_env() -> None:
    cf = load_clusterfile(TEMPLATES / "Clusterfile.yaml", values=[TEMPLATES / "example.values.yaml"],
                          sets=["clusterName=testlocal", "nodes={127.0.10.5:22,127.0.10.6:22}"],
                          env={"SSH_PASSWORD": "s3cret"})
    c = cf.cluster
    assert c.name == "testlocal" and cf.rendered and cf.name.endswith("Clusterfile.yaml (rendered)")
    assert [m.endpoint for m in c.masters] == ["127.0.10.27:22", "127.0.10.140:22", "127.0.10.101:22"]
    assert [m.endpoint for m in c.nodes] == ["127.0.10.5:22", "127.0.10.6:22"]
    assert c.ssh.passwd == "s3cret" and c.ssh.port == 22 and c.ssh.pk == "/path/to/private/key/file"
    assert c.images[0] == "dockerhub.tencentcloudcr.com/labring/kubernetes:v1.23.8"
    assert "{{" not in cf.dump() and "serviceSubnet: 10.96.0.0/18" in cf.dump()


def test_missing_values_print_no_value_as_sealos_and_fail_where_used() -> None:
    with pytest.raises(ClusterfileError, match="cluster name '<no value>'") as info:
        load_clusterfile(TEMPLATES / "Clusterfile.yaml", values=[TEMPLATES / "example.values.yaml"])
    assert info.value.where.endswith("Clusterfile.yaml (rendered):4")


def test_ip_functions_and_conditionals() -> None:
    cf = load_clusterfile(TEMPLATES / "node-local-dns.yaml",
                          sets=["localDNS.enabled=true", "localDNS.bind=169.254.20.11",
                                "localDNS.image=node-local-dns:1.3.2"])
    config = cf.configs[0]
    assert config.match == "node-local-dns:1.3.2"
    assert yaml.safe_load(config.data)["config"]["zones"][0]["plugins"]["forward"]["parameters"] == "10.96.0.10"
    kubelet = yaml.safe_load(cf.others[0].text)
    assert kubelet["clusterDNS"] == ["169.254.20.11"]


def test_template_syntax_error_names_the_file_line() -> None:
    text = "apiVersion: apps.sealos.io/v1beta1\nkind: Cluster\nmetadata:\n  name: {{ .Values.name \n"
    with pytest.raises(ClusterfileError, match="^template: ") as info:
        load_clusterfile(text, name="Clusterfile")
    assert info.value.where == "Clusterfile:4"


def test_values_without_braces_leave_the_text_alone(tmp_path: Path) -> None:
    plain = (Path(__file__).resolve().parents[2] / "data" / "clusterfiles" / "valid" / "apply-doc.yaml")
    cf = load_clusterfile(plain, sets=["unused=1"])
    assert cf.dump() == plain.read_text()


def test_ip_helpers() -> None:
    assert ip_at("10.96.0.0/18", 10) == "10.96.0.10"
    assert ip_at("10.96.0.0/30", 4) == "out of ip address range"
    assert ip_net("10.96.3.7/18") == "10.96.0.0/18"
    assert ip_net("nope").startswith("invalid cidr")
