"""Native builds of the example Kubefiles: files, modes, owners, config and labels as the Kubefile says.

Images are built into the test's store, their layers extracted with extract_layer and
listed with iter_layer_members, and compared with the context file by file.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from imgbuild.builder.request import BuildRequest
from imgbuild.builder.context import BuildContext
from imgbuild.errors import UnsafePathError, BuildError, ContextError
from imgbuild.oci.layer import extract_layer, iter_layer_members
from imgbuild.oci.store import open_store
from imgbuild.home import home
from tests.support.local import build

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "kubefiles"


def _build(context: Path, **kw):
    return build(BuildRequest(context=context, **kw))


def _extract(digest: str, dest: Path) -> Path:
    store = open_store(home())
    image = store.image(digest)
    for desc in image.layers:
        with store.open_blob(desc.digest) as fh:
            extract_layer(fh, desc.media_type, dest)
    return dest


def _members(digest: str) -> dict[str, tarfile.TarInfo]:
    store = open_store(home())
    out: dict[str, tarfile.TarInfo] = {}
    for desc in store.image(digest).layers:
        with store.open_blob(desc.digest) as fh:
            out.update({m.name.rstrip("/"): m for m in iter_layer_members(fh, desc.media_type)})
    return out


def _context_files(context: Path) -> dict[str, bytes]:
    ctx = BuildContext.open(context)
    [root] = ctx.resolve(".")
    return {f.rel: Path(f.path).read_bytes() for f in ctx.walk(root) if f.kind == "file"}


def _tree_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_minimal_files_and_config(tmp_path: Path) -> None:
    out = _build(EXAMPLES / "minimal", tags=("localhost:5000/demo/minimal:v1",))
    tree = _extract(out.digest, tmp_path / "rootfs")
    assert (tree / "opt/demo/files/hello.txt").read_text() == "hello\n"
    assert (tree / "opt/demo/files/sub/world.txt").read_text() == "world\n"
    assert not (tree / "opt/demo/files/notes.tmp").exists()  # .dockerignore
    assert sorted(os.listdir(tree / "texts")) == ["hello.txt"]  # glob: files only, ignored excluded
    members = _members(out.digest)
    data = members["data/data.bin"]
    assert (data.uid, data.gid, data.mode & 0o7777) == (1000, 1000, 0o640)
    assert members["data"].isdir()
    cfg = open_store(home()).image("localhost:5000/demo/minimal:v1").config
    section = cfg.data["config"]
    assert section["WorkingDir"] == "/opt/demo" and section["User"] == "1000:1000"
    assert section["Entrypoint"] == ["/bin/demo"] and section["Cmd"] == ["--serve"]
    assert section["ExposedPorts"] == {"8080/tcp": {}} and section["Volumes"] == {"/data": {}}
    assert cfg.labels["org.opencontainers.image.version"] == "1.0"
    assert cfg.labels["sealos.io.type"] == "application"
    assert cfg.created == "1970-01-01T00:00:00Z"
    assert len(cfg.diff_ids) == 4 and len(cfg.history) == 13  # WORKDIR made /opt/demo: a layer, as in Docker
    assert members["opt/demo"].isdir()


def test_rebuild_is_identical_and_cached(tmp_path: Path) -> None:
    first = _build(EXAMPLES / "minimal")
    second = _build(EXAMPLES / "minimal")
    assert first.digest == second.digest
    assert second.results[0].cached_layers == 4
    third = _build(EXAMPLES / "minimal", cache=False)
    assert third.digest == first.digest  # deterministic even without the cache


def test_source_date_epoch_sets_created(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    out = _build(EXAMPLES / "pause-demo")
    assert out.results[0].config.created == "2023-11-14T22:13:20Z"
    assert _build(EXAMPLES / "pause-demo", timestamp=0).results[0].config.created == "1970-01-01T00:00:00Z"


def test_sealer_app_files_under_application_apps(tmp_path: Path) -> None:
    out = _build(EXAMPLES / "sealer-app")
    tree = _extract(out.digest, tmp_path / "t")
    app = tree / "application/apps/greeting"
    assert (app / "config.yaml").read_bytes() == (EXAMPLES / "sealer-app/manifests/config.yaml").read_bytes()
    assert os.access(app / "install.sh", os.X_OK)
    [layer] = out.results[0].manifest.layers
    assert layer.annotations["io.imgbuild.layer.role"] == "application"
    labels = out.results[0].config.labels
    assert json.loads(labels["io.imgbuild.launch"]) == ["greeting"]


def test_multistage_copy_from(tmp_path: Path) -> None:
    out = _build(EXAMPLES / "multistage")
    tree = _extract(out.digest, tmp_path / "t")
    assert (tree / "payload/artifact.txt").read_text() == "built in stage one\n"
    assert ((tree / "payload/private.txt").stat().st_mode & 0o777) == 0o600
    assert len(out.results[0].manifest.layers) == 1  # the first stage's layers are not in the image


def _rootfs_context(tmp_path: Path) -> Path:
    """rootfs-demo without images to bundle, plus a registry/ dir of its own."""
    ctx = tmp_path / "rootfs"
    shutil.copytree(EXAMPLES / "rootfs-demo", ctx, symlinks=True)
    shutil.rmtree(ctx / "images")
    blob = ctx / "registry/docker/registry/v2/blobs/sha256/ab/abcd/data"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"blob")
    (ctx / "README.md").write_text("ignored by .kubeignore")
    return ctx


def test_sealos_rootfs_shape_split_by_role(tmp_path: Path) -> None:
    ctx = _rootfs_context(tmp_path)
    out = _build(ctx, tags=("localhost:5000/demo/rootfs:v1",))
    result = out.results[0]
    roles = [d.annotations["io.imgbuild.layer.role"] for d in result.manifest.layers]
    assert roles == ["rootfs", "scripts", "registry"]
    tree = _extract(out.digest, tmp_path / "t")
    assert _tree_files(tree) == _context_files(ctx)
    assert "README.md" not in _tree_files(tree)
    store = open_store(home())
    for desc, role in zip(result.manifest.layers, roles):
        with store.open_blob(desc.digest) as fh:
            tops = {m.name.split("/")[0] for m in iter_layer_members(fh, desc.media_type)}
        assert (tops == {role}) if role != "rootfs" else not tops & {"scripts", "registry"}
    cfg = result.config
    assert cfg.labels["init"] == "init.sh $criData $registryDomain $registryPort"
    assert cfg.labels["sealos.io.type"] == "rootfs" and cfg.data["author"] == "imgbuild"
    assert cfg.env_map["registryDomain"] == "sealos.hub" and cfg.env_map["registryPort"] == "5000"


def test_changing_a_script_changes_only_the_scripts_layer(tmp_path: Path) -> None:
    ctx = _rootfs_context(tmp_path)
    before = _build(ctx).results[0].manifest.layers
    with open(ctx / "scripts/init.sh", "a") as fh:
        fh.write("# changed\n")
    after = _build(ctx).results[0].manifest.layers
    changed = [a.annotations["io.imgbuild.layer.role"] for a, b in zip(after, before) if a.digest != b.digest]
    assert changed == ["scripts"]


def test_type_detection_without_label(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/init.sh").write_text("echo\n")
    (tmp_path / "Kubefile").write_text("FROM scratch\nCOPY scripts scripts\n")
    assert _build(tmp_path).results[0].image_type == "rootfs"
    (tmp_path / "Kubefile").write_text("FROM scratch\nCOPY scripts/init.sh /x\n")
    assert _build(tmp_path).results[0].image_type == "application"


def test_cli_extras_and_image_base(tmp_path: Path) -> None:
    base = _build(EXAMPLES / "pause-demo", tags=("imgbuild.local/demo/pause:3.9",))
    (tmp_path / "f").write_text("x")
    (tmp_path / "Kubefile").write_text("FROM imgbuild.local/demo/pause:3.9\nCOPY f /tmp/f\n")
    out = _build(tmp_path, labels={"team": "a"}, env={"MODE": "x"}, annotations={"note": "n"}, pull="never")
    r = out.results[0]
    assert r.manifest.layers[0] == base.results[0].manifest.layers[0]
    assert r.config.labels["team"] == "a" and r.config.env_map["MODE"] == "x"
    assert r.manifest.annotations == {"note": "n"}
    assert r.config.entrypoint == ["/pause"] and r.image_type == "application"  # has a base


def test_add_extracts_local_archives(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg/bin/tool")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"tool"))
    (tmp_path / "pkg.tar.gz").write_bytes(buf.getvalue())
    (tmp_path / "Kubefile").write_text("FROM scratch\nADD pkg.tar.gz /opt/\nCOPY pkg.tar.gz /raw/\n")
    tree = _extract(_build(tmp_path).digest, tmp_path / "t")
    assert (tree / "opt/pkg/bin/tool").read_bytes() == b"tool"
    assert (tree / "raw/pkg.tar.gz").read_bytes() == buf.getvalue()


@pytest.mark.parametrize("entries", [
    [("../evil", b"x")],
    [("ln", "/etc"), ("ln/evil", b"x")],
], ids=["dotdot", "through-symlink"])
def test_add_refuses_archives_that_escape(tmp_path: Path, entries) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:  # bzip2: ADD takes what tarfile reads, not only layers
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "bad.tar.bz2").write_bytes(buf.getvalue())
    (ctx / "Kubefile").write_text("FROM scratch\nADD bad.tar.bz2 /opt/\n")
    with pytest.raises(UnsafePathError) as info:
        _build(ctx)
    assert info.value.where == "Kubefile:2"
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


def test_symlinks_are_kept_and_escaping_sources_refused(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "d").mkdir(parents=True)
    (ctx / "d/real").write_text("r")
    os.symlink("/etc/passwd", ctx / "d/abs")
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY d /d\n")
    members = _members(_build(ctx).digest)
    assert members["d/abs"].issym() and members["d/abs"].linkname == "/etc/passwd"
    os.symlink("/etc/passwd", ctx / "escape")
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY escape /e\n")
    with pytest.raises(ContextError) as info:
        _build(ctx)
    assert info.value.where == "Kubefile:2"


def test_heredoc_and_exclude(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    for name in ("keep.txt", "drop.log"):
        (tmp_path / "src" / name).write_text(name)
    (tmp_path / "Kubefile").write_text("# syntax=docker/dockerfile:1.7-labs\nFROM scratch\n"
                                       "COPY --exclude=*.log src /src\nCOPY <<EOF /etc/motd\nhi there\nEOF\n")
    tree = _extract(_build(tmp_path).digest, tmp_path / "t")
    assert sorted(os.listdir(tree / "src")) == ["keep.txt"]
    assert (tree / "etc/motd").read_text() == "hi there\n"


def test_url_sources_are_an_explicit_error(tmp_path: Path) -> None:
    (tmp_path / "Kubefile").write_text("FROM scratch\nAPP x https://example.com/x.yaml\n")
    with pytest.raises(BuildError, match="offline"):
        _build(tmp_path)


def test_multi_platform_index(tmp_path: Path) -> None:
    for arch in ("amd64", "arm64"):
        (tmp_path / "bin" / arch).mkdir(parents=True)
        (tmp_path / "bin" / arch / "tool").write_text(arch)
    (tmp_path / "Kubefile").write_text("FROM scratch\nCOPY bin/${ARCH}/tool /bin/tool\n")
    out = _build(tmp_path, platforms=("linux/amd64", "linux/arm64"), tags=("localhost:5000/demo/multi:v1",))
    assert out.descriptor.media_type == "application/vnd.oci.image.index.v1+json"
    store = open_store(home())
    from imgbuild.oci.model import Platform

    for arch in ("amd64", "arm64"):
        image = store.image("localhost:5000/demo/multi:v1", Platform.parse(f"linux/{arch}"))
        tree = tmp_path / f"x-{arch}"
        for desc in image.layers:
            with store.open_blob(desc.digest) as fh:
                extract_layer(fh, desc.media_type, tree)
        assert (tree / "bin/tool").read_text() == arch


def test_copy_onto_a_base_directory_goes_inside_and_keeps_base_parents(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "d").mkdir(parents=True)
    (base / "d/.hidden").write_text("h")
    (base / "Kubefile").write_text("FROM scratch\nCOPY d /opt/.d/\nCOPY --chmod=1777 d /tmp\n")
    _build(base, tags=("imgbuild.local/test/base:v1",))
    child = tmp_path / "child"
    child.mkdir()
    (child / "f").write_text("f")
    (child / "Kubefile").write_text("FROM imgbuild.local/test/base:v1\nCOPY f /opt/.d\nCOPY f /tmp/x/f\n")
    out = _build(child)
    store = open_store(home())
    [first, second] = out.results[0].manifest.layers[-2:]
    with store.open_blob(first.digest) as fh:
        assert [m.name for m in iter_layer_members(fh, first.media_type)] == ["opt/.d/f"]
    with store.open_blob(second.digest) as fh:
        names = [m.name.rstrip("/") for m in iter_layer_members(fh, second.media_type)]
    assert names == ["tmp/x", "tmp/x/f"]  # /tmp (1777 in the base) is not reset


def _bundle(tmp_path: Path) -> Path:
    """A registry/ tree as the offline bundler leaves it (content does not matter to the builder)."""
    root = tmp_path / "bundle"
    link = root / "docker/registry/v2/repositories/demo/pause/_manifests/tags/3.9/current/link"
    link.parent.mkdir(parents=True)
    link.write_text("sha256:" + "a" * 64)
    return root


@pytest.mark.parametrize("kubefile, target", [
    ("FROM scratch\nCOPY . .\n", "registry"),               # sealos: COPY . . sees the bundle as registry/
    ("FROM scratch\nCOPY registry /srv/registry\n", "srv/registry"),
    ("FROM scratch\nCOPY bin /bin\n", "registry"),           # sealer style: appended as a last layer
])
def test_bundled_registry_is_merged_or_appended(tmp_path: Path, kubefile: str, target: str) -> None:
    from imgbuild.builder.native import BuildOptions, build_native
    from imgbuild.builder.plan import make_plan

    ctx = tmp_path / "ctx"
    (ctx / "bin").mkdir(parents=True)
    (ctx / "bin/tool").write_text("t")
    (ctx / "registry").mkdir()
    (ctx / "registry/own.txt").write_text("mine")
    (ctx / "Kubefile").write_text(kubefile)
    result = build_native(make_plan(ctx), open_store(home()), BuildOptions(registry_dir=_bundle(tmp_path)))
    tree = _extract(result.digest, tmp_path / "t")
    link = tree / target / "docker/registry/v2/repositories/demo/pause/_manifests/tags/3.9/current/link"
    assert link.read_text() == "sha256:" + "a" * 64
    roles = [d.annotations["io.imgbuild.layer.role"] for d in result.manifest.layers]
    assert roles.count("registry") == (0 if target.startswith("srv") else 1)
    if "COPY bin" in kubefile:
        assert roles == ["rootfs", "registry"]
        assert result.config.history[-1]["created_by"] == "imgbuild: bundled images (registry/)"


def test_a_cache_entry_whose_blob_was_collected_is_rebuilt(tmp_path: Path) -> None:
    first = _build(EXAMPLES / "pause-demo", tags=("localhost:5000/demo/pause:gc",))
    store = open_store(home())
    store.untag("localhost:5000/demo/pause:gc")
    store.gc()
    [layer] = first.results[0].manifest.layers
    assert not store.has_blob(layer.digest)
    second = _build(EXAMPLES / "pause-demo")
    assert second.digest == first.digest and second.results[0].cached_layers == 0
    assert store.has_blob(layer.digest)
