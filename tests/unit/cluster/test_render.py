"""Per-host rendering of an image tree's *.tmpl files (imgbuild.cluster.render)."""

import hashlib
import os
import stat
from pathlib import Path

import pytest

from imgbuild.cluster.render import TemplateSet
from imgbuild.errors import ImgbuildError
from imgbuild.gotemplate import TemplateError

REPO = Path(__file__).resolve().parents[3]
ENV = {"registryDomain": "sealos.hub", "registryPort": "5000", "criData": "/var/lib/containerd",
       "registryData": "/var/lib/registry", "HOST_IP": "127.0.0.2", "etcdData": "/var/lib/etcd",
       "SEALOS_SYS_CLUSTER_NAME": "default", "SEALOS_SYS_PKI": "/etc/pki", "SEALOS_SYS_ROOTFS": "/rootfs"}


def _tree(root: Path, files: dict[str, str], modes: dict[str, int] | None = None) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod((modes or {}).get(rel, 0o644))
    return root


def test_renders_every_tmpl_per_host_without_suffix_keeping_mode(tmp_path):
    tree = _tree(tmp_path / "image", {
        "etc/registry.yml.tmpl": "addr: {{ .registryDomain }}:{{ .registryPort }}\n",
        "etc/sub/secret.conf.tmpl": "{{ .HOST_IP | quote }}",
        "scripts/init.sh.tmpl": "#!/bin/bash\necho {{ .HOST_IP }}\n",
        "etc/plain.conf": "not a template {{ .x }}",
        "etc/.tmpl": "a file named only .tmpl is not a template",
    }, {"etc/sub/secret.conf.tmpl": 0o600, "scripts/init.sh.tmpl": 0o755})
    ts = TemplateSet.load(tree)
    assert [t.source for t in ts.templates] == ["etc/registry.yml.tmpl", "etc/sub/secret.conf.tmpl",
                                                 "scripts/init.sh.tmpl"]
    for host in ("127.0.0.2", "127.0.0.3"):
        dest = tmp_path / "hosts" / host
        digests = ts.render_into(dest, {**ENV, "HOST_IP": host})
        assert (dest / "etc/registry.yml").read_text() == "addr: sealos.hub:5000\n"
        assert (dest / "etc/sub/secret.conf").read_text() == f'"{host}"'
        assert stat.S_IMODE((dest / "etc/sub/secret.conf").stat().st_mode) == 0o600
        assert stat.S_IMODE((dest / "scripts/init.sh").stat().st_mode) == 0o755
        assert not (dest / "etc/plain.conf").exists()
        assert digests == {rel: hashlib.sha256((dest / rel).read_bytes()).hexdigest()
                           for rel in ("etc/registry.yml", "etc/sub/secret.conf", "scripts/init.sh")}
    assert (tree / "etc/registry.yml.tmpl").exists() and not (tree / "etc/registry.yml").exists()


def test_a_missing_variable_names_file_line_and_key(tmp_path):
    tree = _tree(tmp_path / "image", {"etc/a.conf.tmpl": "# header\nport={{ .registryPort }}\nhost={{ .nope }}\n"})
    ts = TemplateSet.load(tree)
    with pytest.raises(TemplateError) as info:
        ts.render_into(tmp_path / "out", ENV)
    assert info.value.where == "etc/a.conf.tmpl:3:8"
    assert 'map has no entry for key "nope"' in str(info.value)


def test_a_bad_template_fails_at_load_with_file_line(tmp_path):
    tree = _tree(tmp_path / "image", {"ok.tmpl": "{{ .a }}", "etc/bad.yaml.tmpl": "a: 1\nb: {{ if .x }}\n"})
    with pytest.raises(TemplateError) as info:
        TemplateSet.load(tree)
    assert info.value.where.startswith("etc/bad.yaml.tmpl:") and "unexpected EOF" in info.value.message


def test_non_utf8_template_is_an_input_error(tmp_path):
    (tmp_path / "bin.tmpl").write_bytes(b"\xff\xfe{{ . }}")
    with pytest.raises(TemplateError, match="not UTF-8"):
        TemplateSet.load(tmp_path)


def test_symlinks_are_not_followed_or_rendered(tmp_path):
    tree = _tree(tmp_path / "image", {"a.tmpl": "{{ .registryDomain }}"})
    (tree / "link.tmpl").symlink_to("/etc/hostname")
    (tree / "dirlink").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    _tree(tmp_path / "elsewhere", {"x.tmpl": "{{ .secret }}"})
    ts = TemplateSet.load(tree)
    assert [t.source for t in ts.templates] == ["a.tmpl"] and ts.skipped == ["link.tmpl"]


def test_rerendering_unchanged_content_writes_nothing(tmp_path):
    ts = TemplateSet.load(_tree(tmp_path / "image", {"a.conf.tmpl": "{{ .registryDomain }}"}))
    dest = tmp_path / "out"
    ts.render_into(dest, ENV)
    inode = (dest / "a.conf").stat().st_ino
    ts.render_into(dest, ENV)
    assert (dest / "a.conf").stat().st_ino == inode
    ts.render_into(dest, {**ENV, "registryDomain": "other.hub"})
    assert (dest / "a.conf").read_text() == "other.hub" and (dest / "a.conf").stat().st_ino != inode


def test_an_unwritable_destination_is_an_imgbuild_error(tmp_path):
    ts = TemplateSet.load(_tree(tmp_path / "image", {"a.tmpl": "x"}))
    (tmp_path / "file").write_text("")
    with pytest.raises(ImgbuildError, match="cannot write rendered file"):
        ts.render_into(tmp_path / "file" / "sub", ENV)


def test_env_mapping_types_are_accepted(tmp_path):
    from types import MappingProxyType
    ts = TemplateSet.load(_tree(tmp_path / "image", {"a.tmpl": "{{ .registryDomain }}"}))
    assert ts.render(MappingProxyType(ENV)) == {"a": "sealos.hub"}


@pytest.mark.parametrize("image", ["basefs/etcd", "basefs/default", "kubefiles/etcd", "kubefiles/rootfs-demo"])
def test_the_repositorys_own_templates_render(image, tmp_path):
    ts = TemplateSet.load(REPO / image)
    assert len(ts) > 0
    out = ts.render(ENV)
    assert all("<no value>" not in text and "{{" not in text for text in out.values())


def test_two_hundred_templates_for_a_hundred_hosts_render_quickly(tmp_path):
    """Issue 15's budget (< 2 s) is measured by bench/bench_render.py; this guards against a gross regression."""
    text = "a={{ .registryDomain }}\n{{ range $i, $p := splitList \",\" .ports }}p{{ $i }}={{ $p | quote }}\n{{ end }}"
    tree = _tree(tmp_path / "image", {f"etc/f{i}.conf.tmpl": text for i in range(200)})
    ts = TemplateSet.load(tree)
    t0 = os.times()
    for h in range(100):
        ts.render({**ENV, "ports": "80,443", "HOST_IP": f"127.0.0.{h + 1}"})
    used = os.times()
    assert (used.user + used.system) - (t0.user + t0.system) < 10
