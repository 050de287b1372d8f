"""Cluster values: machines, roles, from_flags as sealos' run takes them, dump with comments kept, --set."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from imgbuild.cluster import Cluster, Clusterfile, Config, Host, load_clusterfile, parse_clusterfile
from imgbuild.cluster.env import FrozenMap
from imgbuild.cluster.hosts import SSH
from imgbuild.cluster.model import Condition, Status
from imgbuild.cluster.values import apply_set, load_values, merge_values
from imgbuild.errors import ClusterfileError, InputError

TEXT = """\
# the lab cluster (comment kept)
apiVersion: apps.sealos.io/v1beta1
kind: Cluster
metadata:
  name: lab  # inline comment
spec:
  hosts:
  - ips: [127.0.0.5, 127.0.0.6:2222]   # nodes first in the file
    roles: [node, amd64]
    env: [ROLE=worker]
  - ips: [127.0.0.2, 127.0.0.3]
    roles: [master, amd64]
    ssh: {user: admin, passwd: host-pw}
  - ips: [127.0.0.9]
    roles: [registry]
  image: [labring/kubernetes:v1.25.0]
  ssh: {user: root, passwd: cluster-pw, port: 2200}
  env: [registryDomain=hub.lab]
# trailing comment
"""


def test_machines_masters_first_with_effective_ssh() -> None:
    c = load_clusterfile(TEXT).cluster
    assert [m.endpoint for m in c.machines()] == [
        "127.0.0.2:2200", "127.0.0.3:2200", "127.0.0.5:2200", "127.0.0.6:2222", "127.0.0.9:2200"]
    assert c.master0.address == "127.0.0.2" and c.master0.ssh.user == "admin" and c.master0.ssh.passwd == "host-pw"
    assert c.machine("127.0.0.6").ssh == SSH(user="root", passwd="cluster-pw", port=2222)
    assert [m.address for m in c.nodes] == ["127.0.0.5", "127.0.0.6"]
    assert [m.address for m in c.registry_hosts] == ["127.0.0.9"]
    assert c.machine("127.0.0.5").env == {"ROLE": "worker"} and c.machine("127.0.0.5").arch == "amd64"
    assert c.machine("127.0.0.77") is None and c.machine("junk") is None


def test_registry_defaults_to_master0() -> None:
    c = Cluster.from_flags(["labring/kubernetes:v1.25.0"], masters="127.0.0.2,127.0.0.3")
    assert [m.address for m in c.registry_hosts] == ["127.0.0.2"]


def test_from_flags_as_sealos_run() -> None:
    c = Cluster.from_flags(["labring/kubernetes:v1.25.0", "labring/helm:v3.8.2"],
                           masters="127.0.0.2,127.0.0.3:23,127.0.0.4:24", nodes="127.0.0.5-127.0.0.7",
                           passwd="pw", port=22, env=["a=b"], cluster_name="lab")
    assert [h.ips for h in c.hosts] == [("127.0.0.2:22",), ("127.0.0.3:23",), ("127.0.0.4:24",),
                                        ("127.0.0.5:22", "127.0.0.6:22", "127.0.0.7:22")]
    assert [h.roles for h in c.hosts] == [("master",)] * 3 + [("node",)]
    assert c.ssh == SSH(user="root", passwd="pw", port=22) and c.env == {"a": "b"} and c.name == "lab"
    assert c.master0.endpoint == "127.0.0.2:22"


def test_from_flags_ipv6_single_and_port() -> None:
    c = Cluster.from_flags(["x:1"], masters="::1,[::2]:2222", port=2200)
    assert [h.ips for h in c.hosts] == [("[::1]:2200",), ("[::2]:2222",)]
    assert Cluster.from_flags(["x:1"], single=True).master0.endpoint == "127.0.0.1:22"


@pytest.mark.parametrize("kwargs, message", [
    ({"masters": ""}, "no master given"),
    ({"masters": "127.0.0.2", "nodes": "127.0.0.2:2222"}, "host 127.0.0.2 is given twice"),
    ({"masters": "127.0.0.2-127.0.0.1"}, "starts after it ends"),
    ({"masters": "127.0.0.2", "single": True}, "--single"),
    ({"masters": "127.0.0.2", "cluster_name": "../x"}, "cluster name"),
    ({"masters": "127.0.0.2", "env": ["nokey"]}, "not KEY=VALUE"),
    ({"masters": "127.0.0.2", "port": 70000}, "port 70000"),
])
def test_from_flags_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Cluster.from_flags(["labring/kubernetes:v1.25.0"], **kwargs)


def test_from_flags_image_errors() -> None:
    with pytest.raises(InputError, match="no image"):
        Cluster.from_flags([], masters="127.0.0.2")
    with pytest.raises(InputError, match="invalid image reference"):
        Cluster.from_flags(["labring/Kube:v1"], masters="127.0.0.2")
    assert Cluster.from_flags(["a:1", "a:1"], masters="127.0.0.2").images == ("a:1",)


def test_generated_clusterfile_loads_back() -> None:
    c = Cluster.from_flags(["labring/kubernetes:v1.25.0"], masters="127.0.0.2", nodes="::1", passwd="007",
                           env={"k": "multi\nline"})
    text = Clusterfile.new(c, [Config("cfg", "etc/a.yaml", "a: 1\nb: 2\n", strategy="merge")]).dump()
    assert "passwd: '007'" in text and "data: |" in text
    back = parse_clusterfile(text)
    assert back.cluster == c and back.configs[0].data == "a: 1\nb: 2\n"


def test_status_change_keeps_every_comment() -> None:
    cf = load_clusterfile(TEXT)
    status = Status(phase="ClusterSuccess", conditions=(Condition("ApplyClusterSuccess", "True", "Ready"),))
    out = cf.with_cluster(cf.cluster.with_status(status)).dump()
    assert out.startswith(TEXT)  # status appended, nothing above touched
    assert parse_clusterfile(out).cluster.status == status
    again = parse_clusterfile(out)
    status2 = replace(status, phase="ClusterFailed")
    out2 = again.with_cluster(again.cluster.with_status(status2)).dump()
    assert out2.count("\nstatus:") == 1 and "ClusterFailed" in out2 and out2.startswith(TEXT)


def test_spec_change_rewrites_the_changed_keys_only() -> None:
    cf = load_clusterfile(TEXT)
    c = replace(cf.cluster, images=cf.cluster.images + ("labring/helm:v3.8.2",))
    out = cf.with_cluster(c).dump()
    assert out == TEXT.replace("  image: [labring/kubernetes:v1.25.0]\n",
                               "  image:\n  - labring/kubernetes:v1.25.0\n  - labring/helm:v3.8.2\n")
    assert parse_clusterfile(out).cluster == c


def test_spec_keys_added_and_removed_keep_the_rest() -> None:
    cf = load_clusterfile(TEXT)
    c = replace(cf.cluster, env=FrozenMap(), command=("kubeadm init",))
    out = cf.with_cluster(c).dump()
    assert "registryDomain" not in out and "  command:\n  - kubeadm init\n# trailing comment" in out
    assert "# nodes first in the file" in out and "# inline comment" in out
    assert parse_clusterfile(out).cluster == c
    restored = parse_clusterfile(out).with_cluster(cf.cluster).dump()
    assert parse_clusterfile(restored).cluster == cf.cluster and restored.count("registryDomain") == 1


def test_with_configs_replaces_appends_and_drops() -> None:
    text = TEXT + "---\napiVersion: apps.sealos.io/v1beta1\nkind: Config\nmetadata: {name: a}\nspec: {path: a}\n" \
                  "---\napiVersion: apps.sealos.io/v1beta1\nkind: Config\nmetadata: {name: b}\nspec: {path: b}\n"
    cf = load_clusterfile(text)
    out = cf.with_configs([Config("b", "b2"), Config("c", "c", "x")])
    assert [c.name for c in out.configs] == ["b", "c"]
    assert [(c.name, c.path) for c in parse_clusterfile(out.dump()).configs] == [("b", "b2"), ("c", "c")]


def test_problems_are_all_collected() -> None:
    bad = TEXT.replace("127.0.0.3]", "127.0.0.300]").replace("[node, amd64]", "[nod, amd64]")
    with pytest.raises(ClusterfileError) as info:
        load_clusterfile(bad)
    assert len(info.value.problems) == 2
    assert [p.where for p in info.value.problems] == ["<Clusterfile>:9", "<Clusterfile>:11"]


def test_sealos_sys_env_is_ignored_with_a_warning() -> None:
    cf = load_clusterfile(TEXT.replace("[registryDomain=hub.lab]", "[SEALOS_SYS_X=1, a=1, a=2]"))
    assert cf.cluster.env == {"a": "2"}
    assert any("SEALOS_SYS_X ignored" in w for w in cf.warnings)
    assert any("a is set twice" in w for w in cf.warnings)


def test_strings_keep_their_text() -> None:
    cf = load_clusterfile(TEXT.replace("passwd: cluster-pw", "passwd: 0123").replace("port: 2200", "port: '0022'"))
    assert cf.cluster.ssh.passwd == "0123" and cf.cluster.ssh.port == 22


def test_masked_dict_hides_passwords() -> None:
    cf = load_clusterfile(TEXT.replace("registryDomain=hub.lab", "registryPassword=s3"))
    shown = str(cf.cluster.masked_dict())
    assert "cluster-pw" not in shown and "host-pw" not in shown and "s3" not in shown
    assert "cluster-pw" in str(cf.cluster.to_dict())


def test_path_argument_forms(tmp_path: Path) -> None:
    p = tmp_path / "Clusterfile"
    p.write_text(TEXT)
    assert load_clusterfile(str(p)).name == str(p) and load_clusterfile(p).cluster.name == "lab"
    assert load_clusterfile(TEXT.encode()).cluster.name == "lab"
    one_line = '{"apiVersion": "apps.sealos.io/v1beta1", "kind": "Cluster", "metadata": {"name": "j"}, ' \
        '"spec": {"image": ["a:1"], "hosts": [{"ips": ["127.0.0.2"], "roles": ["master"]}]}}'
    assert load_clusterfile(one_line).cluster.name == "j"
    with pytest.raises(ClusterfileError, match="cannot read Clusterfile"):
        load_clusterfile(tmp_path / "missing")


def test_values_merge_and_set(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("ssh: {user: root, port: 22}\nmasters: [127.0.0.2]\n")
    b.write_text("ssh: {port: 2222}\n")
    values = load_values([a, b], ["clusterName=lab,ssh.user=admin", "masters[1]=127.0.0.3", "tags={a,b}",
                                  "n=10", "zero=012", "flag=true", "none=null", "dotted\\.key=x"])
    assert values == {"ssh": {"user": "admin", "port": 2222}, "masters": ["127.0.0.2", "127.0.0.3"],
                      "clusterName": "lab", "tags": ["a", "b"], "n": 10, "zero": "012", "flag": True,
                      "none": None, "dotted.key": "x"}
    assert merge_values({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}
    assert apply_set({}, "list[2].name=x") == {"list": [None, None, {"name": "x"}]}


@pytest.mark.parametrize("expr, message", [("novalue", "not KEY=VALUE"), ("a..b=c", "empty key"),
                                            ("=x", "not KEY=VALUE"), ("a[99999999]=x", "too large")])
def test_set_errors(expr: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        apply_set({}, expr)


def test_values_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "v.yaml"
    bad.write_text("a: [\n")
    with pytest.raises(InputError, match="values file is not YAML") as info:
        load_values([bad])
    assert info.value.where.startswith(str(bad) + ":")
    bad.write_text("- a list\n")
    with pytest.raises(InputError, match="must be a YAML mapping"):
        load_values([bad])
    with pytest.raises(InputError, match="cannot read values file"):
        load_values([tmp_path / "missing.yaml"])


def test_hosts_are_values() -> None:
    h = Host(("127.0.0.2",), ("master",), FrozenMap({"a": "b"}))
    assert h == Host(("127.0.0.2",), ("master",), FrozenMap({"a": "b"}))
    c = Cluster.from_flags(["x:1"], masters="127.0.0.2")
    assert len(set(c.machines()) | set(c.machines())) == 1


def test_reprs_never_show_secrets() -> None:
    from imgbuild.cluster import ClusterState

    corpus = Path(__file__).resolve().parents[2] / "data" / "clusterfiles" / "valid"
    cf = load_clusterfile(corpus / "status-by-sealos.yaml")
    state = ClusterState.from_text(cf.dump())
    state.cli_env = {"registryPassword": "cli-pw"}
    text = repr(cf) + repr(cf.cluster) + repr(state) + repr(Config("c", "p", "mysql-passwd: hunter2"))
    for secret in ("s3cret", "passw0rd", "cli-pw", "hunter2"):
        assert secret not in text
