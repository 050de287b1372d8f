"""Transfer units: role-aware layers, keys from digests alone, sent by the incremental transfer."""

import os

from imgbuild.engine.context import HostRun, ImageRun, Ledger, Options, RunContext
from imgbuild.engine.exec import LocalExecutor
from imgbuild.engine.transfer import Job, distribute, raise_failures
from imgbuild.engine.units import host_units


class _State:
    def is_done(self, host, key):
        return False

    def mark_done(self, host, key):
        pass


def _tree(root, files):
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _ctx(tmp_path):
    rootfs = _tree(tmp_path / "rootfs", {"etc/x.conf.tmpl": "t", "registry/docker/blob": "r", "scripts/init.sh": "i"})
    app = _tree(tmp_path / "app", {"manifests/a.yaml": "a", "registry/docker/app-blob": "b"})
    images = [ImageRun("r:1", "sha256:r", "rid", "rootfs", {}, {}, (), (), "/", "amd64", "", path=rootfs),
              ImageRun("a:1", "sha256:a", "aid", "application", {}, {}, (), (), "/", "amd64", "a", path=app)]
    hosts = [HostRun("10.0.0.2", 22, ("master",), {"k": "v"}, None), HostRun("10.0.0.3", 22, ("node",), {}, None)]
    ctx = RunContext("c", hosts, images, Ledger(_State(), lambda: None), Options(data_dir=str(tmp_path / "data")))
    staging = tmp_path / "staging"
    _tree(staging / "hosts" / "10.0.0.2" / "rid", {"etc/x.conf": "rendered for m0"})
    _tree(staging / "pki" / "10.0.0.2", {"ca.crt": "ca"})
    _tree(staging / "pki" / "10.0.0.3", {"ca.crt": "ca"})
    ctx.extra["staging"] = staging
    return ctx


def test_roles_decide_what_each_host_gets(tmp_path):
    ctx = _ctx(tmp_path)
    m0, node = (host_units(ctx, h) for h in ctx.hosts)
    assert [u.what for u in m0] == ["rootfs", "application a", "pki"] and [u.what for u in node] == ["rootfs", "pki"]
    node_rootfs = node[0]
    assert node_rootfs.layers[0].exclude == ("registry",)
    assert any(layer.prefix == "registry" for layer in m0[0].layers)


def test_keys_change_with_what_was_rendered_only_for_that_host(tmp_path):
    ctx = _ctx(tmp_path)
    ctx.extra["rendered"] = {("10.0.0.2", "rid"): {"etc/x.conf": "d1"}, ("10.0.0.3", "rid"): {"etc/x.conf": "d1"}}
    before = [u.key for h in ctx.hosts for u in host_units(ctx, h)]
    ctx.extra["rendered"][("10.0.0.3", "rid")] = {"etc/x.conf": "d2"}
    after = [u.key for h in ctx.hosts for u in host_units(ctx, h)]
    assert before[:3] == after[:3] and before[3] != after[3]


def test_units_sent_by_transfer_merge_layers(tmp_path):
    ctx = _ctx(tmp_path)
    m0 = ctx.hosts[0]
    rootfs = host_units(ctx, m0)[0]
    results = distribute([Job(LocalExecutor(), rootfs.layers, rootfs.dest)])
    raise_failures(results)
    dest = tmp_path / "data" / "c" / "rootfs"
    assert (dest / "etc/x.conf").read_text() == "rendered for m0"
    assert (dest / "registry/docker/blob").exists() and (dest / "registry/docker/app-blob").exists()
    assert sorted(os.listdir(dest.parent)) == ["rootfs"]
