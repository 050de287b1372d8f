"""plan(desired, current): table-driven cases of what to do to get from the saved state to the Clusterfile."""

from __future__ import annotations

import pytest

from imgbuild.cluster import Action, Cluster, ClusterState, Clusterfile, plan
from imgbuild.cluster.state import ImageRecord
from imgbuild.errors import ClusterfileError

K8S, HELM, CALICO = "labring/kubernetes:v1.25.0", "labring/helm:v3.8.2", "labring/calico:v3.24.1"


def cluster(masters: str = "127.0.0.2", nodes: str = "127.0.0.5,127.0.0.6", images=(K8S, HELM), env=(),
            port: int | None = None, host_env: dict | None = None) -> Cluster:
    c = Cluster.from_flags(images, masters=masters, nodes=nodes, env=list(env), port=port)
    if host_env:
        from dataclasses import replace

        from imgbuild.cluster.env import FrozenMap

        c = replace(c, hosts=tuple(replace(h, env=FrozenMap(host_env.get(h.ips[0].split(":")[0], {})))
                                   for h in c.hosts))
    return c


def state(c: Cluster, *, created: bool = True, cli_env: dict | None = None, types: dict | None = None) -> ClusterState:
    s = ClusterState.new(Clusterfile.new(c))
    s.created = "2024-05-01T12:00:00Z" if created else ""
    s.cli_env = dict(cli_env or {})
    for image, kind in (types or {K8S: "rootfs", HELM: "application"}).items():
        s.images[image] = ImageRecord("sha256:" + "0" * 64, kind)
    return s


CASES = [
    ("no state: create", cluster(), None, {}, [Action("create", reason="the cluster has no state yet")]),
    ("first apply unfinished: create again", cluster(), state(cluster(), created=False), {},
     [Action("create", reason="the first apply of the cluster did not finish")]),
    ("same: noop", cluster(), state(cluster()), {}, [Action("noop", reason="the cluster matches its state")]),
    ("ssh port change is no host change", cluster(port=2222), state(cluster()), {},
     [Action("noop", reason="the cluster matches its state")]),
    ("scale up", cluster(masters="127.0.0.2,127.0.0.3", nodes="127.0.0.5,127.0.0.6,127.0.0.7"), state(cluster()), {},
     [Action("add_host", "127.0.0.3", reason="new master"), Action("add_host", "127.0.0.7", reason="new node")]),
    ("scale down", cluster(nodes="127.0.0.6"), state(cluster()), {},
     [Action("remove_host", "127.0.0.5", reason="not in the Clusterfile any more")]),
    ("node becomes master: removed and added", cluster(masters="127.0.0.2,127.0.0.5", nodes="127.0.0.6"),
     state(cluster()), {}, [Action("remove_host", "127.0.0.5", reason="roles node -> master"),
                            Action("add_host", "127.0.0.5", reason="roles node -> master")]),
    ("add an image", cluster(images=(K8S, HELM, CALICO)), state(cluster()), {},
     [Action("add_image", image=CALICO, reason="new image")]),
    ("remove an application image", cluster(images=(K8S,)), state(cluster()), {},
     [Action("remove_image", image=HELM, reason="not in the Clusterfile any more")]),
    ("cluster env change re-renders every host", cluster(env=["registryDomain=hub.lab"]), state(cluster()), {},
     [Action("rerender", h, reason="env changed: registryDomain") for h in ("127.0.0.2", "127.0.0.5", "127.0.0.6")]),
    ("host group env change re-renders its hosts", cluster(host_env={"127.0.0.5": {"etcd": "/data"}}),
     state(cluster()), {}, [Action("rerender", h, reason="env changed: etcd") for h in ("127.0.0.5", "127.0.0.6")]),
    ("host env overriding an equal cluster env: nothing", cluster(env=["a=1"], host_env={"127.0.0.5": {"a": "1"}}),
     state(cluster(env=["a=1"])), {}, [Action("noop", reason="the cluster matches its state")]),
    ("-e change re-renders", cluster(), state(cluster(), cli_env={"a": "1"}), {"cli_env": {"a": "2"}},
     [Action("rerender", h, reason="env changed: a") for h in ("127.0.0.2", "127.0.0.5", "127.0.0.6")]),
    ("no -e given: last run's -e kept", cluster(), state(cluster(), cli_env={"a": "1"}), {},
     [Action("noop", reason="the cluster matches its state")]),
    ("new hosts are not re-rendered, kept ones are",
     cluster(nodes="127.0.0.5,127.0.0.6,127.0.0.7", env=["x=1"]), state(cluster()), {},
     [Action("add_host", "127.0.0.7", reason="new node")]
     + [Action("rerender", h, reason="env changed: x") for h in ("127.0.0.2", "127.0.0.5", "127.0.0.6")]),
    ("everything at once, in order", cluster(nodes="127.0.0.6,127.0.0.8", images=(K8S, CALICO)), state(cluster()), {},
     [Action("remove_host", "127.0.0.5", reason="not in the Clusterfile any more"),
      Action("add_host", "127.0.0.8", reason="new node"),
      Action("remove_image", image=HELM, reason="not in the Clusterfile any more"),
      Action("add_image", image=CALICO, reason="new image")]),
]


@pytest.mark.parametrize("desired, current, kwargs, want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan(desired: Cluster, current: ClusterState | None, kwargs: dict, want: list[Action]) -> None:
    assert plan(desired, current, **kwargs) == want


REFUSED = [
    ("removing master0", cluster(masters="127.0.0.3"), state(cluster()), "master0 machine cannot be deleted"),
    ("moving master0", cluster(masters="127.0.0.3,127.0.0.2"), state(cluster()), "master0 cannot change"),
    ("removing the rootfs image", cluster(images=(HELM,)), state(cluster()), "rootfs image labring/kubernetes"),
    ("removing the first image when types are unknown", cluster(images=(HELM,)), state(cluster(), types={}),
     "rootfs image labring/kubernetes"),
]


@pytest.mark.parametrize("desired, current, message", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_plan_refuses(desired: Cluster, current: ClusterState, message: str) -> None:
    with pytest.raises(ClusterfileError, match=message):
        plan(desired, current)


def test_rerender_reason_never_shows_values() -> None:
    actions = plan(cluster(env=["registryPassword=n3w-s3cret"]), state(cluster(env=["registryPassword=old"])))
    assert actions and all("s3cret" not in a.reason and "old" not in a.reason for a in actions)


def test_plan_on_1000_hosts() -> None:
    """Correctness at scale; its speed is measured by bench/bench_cluster.py (never asserted in a test)."""
    nodes = "127.0.1.0-127.0.4.231"
    current = state(cluster(nodes=nodes))
    desired = cluster(nodes="127.0.1.5-127.0.4.240", env=["a=1"])
    actions = plan(desired, current)
    assert len(desired.machines()) > 1000 and len(actions) > 1000
