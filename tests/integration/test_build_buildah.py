"""The buildah backend: RUN steps, sealer translation, failures pointing at the Kubefile line, cleanup.

The base image with a shell is built natively from this host's /bin/sh, /bin/cat and
their libraries, so the tests need no network.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from imgbuild.builder.request import BuildRequest
from imgbuild.errors import BuildError
from imgbuild.oci.layer import extract_layer
from imgbuild.oci.store import open_store
from imgbuild.home import home
from tests.support.local import EXEC, build

pytestmark = pytest.mark.buildah
ROOT = Path(__file__).resolve().parents[2]
SHELL = "imgbuild.local/test/shell:v1"


def _libs(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return [w for w in out.split() if w.startswith("/")]


@pytest.fixture
def shell_image(tmp_path: Path) -> str:
    """A tiny base image with /bin/sh and /bin/cat from this host."""
    ctx = tmp_path / "shell"
    for f in ["/bin/sh", "/bin/cat", *_libs("/bin/sh"), *_libs("/bin/cat")]:
        target = ctx / f.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY bin /bin\nCOPY lib /lib\nCOPY lib64 /lib64\n")
    build(BuildRequest(context=ctx, tags=(SHELL,)))
    return SHELL


def _tree(digest: str, dest: Path) -> Path:
    store = open_store(home())
    for desc in store.image(digest).layers:
        with store.open_blob(desc.digest) as fh:
            extract_layer(fh, desc.media_type, dest)
    return dest


def _buildah_images() -> set[str]:
    out = subprocess.run(["buildah", "images", "-q", "--no-trunc"], capture_output=True, text=True).stdout
    return set(out.split())


def test_run_builds_with_buildah_and_cleans_up(tmp_path: Path, shell_image: str) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello\n")
    (ctx / "Kubefile").write_text(
        f"FROM {shell_image}\nARG WHO=world\nCOPY hello.txt /hello.txt\n"
        "RUN cat /hello.txt > /copied.txt && echo \"built for $WHO\" > /built.txt\n"
        "LABEL stage=run\nAPP greet local://hello.txt\nLAUNCH [\"greet\"]\nCMD [\"/bin/sh\"]\n")
    before = _buildah_images()
    out = build(BuildRequest(context=ctx, tags=("localhost:5000/demo/run:v1",), build_args={"WHO": "tests"}))
    assert out.backend == "buildah"
    assert _buildah_images() <= before  # working images removed
    tree = _tree(out.digest, tmp_path / "t")
    assert (tree / "copied.txt").read_text() == "hello\n"
    assert (tree / "built.txt").read_text() == "built for tests\n"
    assert (tree / "application/apps/greet/hello.txt").read_text() == "hello\n"
    cfg = out.results[0].config
    assert cfg.labels["stage"] == "run" and cfg.labels["io.imgbuild.launch"] == '["greet"]'
    assert cfg.cmd == ["/bin/sh"] and cfg.created == "1970-01-01T00:00:00Z"
    assert all("io.imgbuild.layer.role" in d.annotations for d in out.results[0].manifest.layers)


def test_failing_run_reports_the_kubefile_line(tmp_path: Path, shell_image: str) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Kubefile").write_text(f"FROM {shell_image}\n\nRUN echo fine\nRUN echo broken-step-output; exit 3\n")
    before = _buildah_images()
    with pytest.raises(BuildError) as info:
        build(BuildRequest(context=ctx))
    assert info.value.where == "Kubefile:4"
    assert "broken-step-output" in str(info.value)
    assert _buildah_images() <= before


@pytest.mark.parametrize("example", ["minimal", "sealer-app", "multistage", "pause-demo", "rootfs-demo", "app-demo"])
def test_examples_give_the_same_files_with_both_backends(tmp_path: Path, example: str) -> None:
    ctx = ROOT / "kubefiles" / example
    build(BuildRequest(context=ROOT / "kubefiles" / "pause-demo", tags=("imgbuild.local/demo/pause:3.9",)))
    native = build(BuildRequest(context=ctx, backend="native"))
    viabuildah = build(BuildRequest(context=ctx, backend="buildah"))
    a, b = _tree(native.digest, tmp_path / "n"), _tree(viabuildah.digest, tmp_path / "b")

    def files(root: Path) -> dict[str, tuple[bytes, int]]:
        return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode & 0o7777)
                for p in root.rglob("*") if p.is_file()}

    assert files(a) == files(b)
    ca, cb = native.results[0].config, viabuildah.results[0].config
    for key in ("Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "StopSignal"):
        assert ca.data["config"].get(key) == cb.data["config"].get(key), key
    assert {k: v for k, v in cb.labels.items() if k != "io.buildah.version"} == ca.labels
    assert ca.env_map.items() <= cb.env_map.items()


@pytest.mark.registry
def test_copy_of_the_registry_the_build_makes_works_with_run(tmp_path: Path, shell_image: str, registry) -> None:
    """sealos writes registry/ into the context before buildah runs; we stage a linked context instead."""
    from imgbuild.oci.transfer import push
    from tests.support.images import make_random_image

    ref = f"{registry.host}/app/x:v1"
    make_random_image(open_store(home()), ref, [100])
    push(ref, store=open_store(home()))
    ctx = tmp_path / "ctx"
    (ctx / "images" / "shim").mkdir(parents=True)
    (ctx / "images" / "shim" / "list").write_text(ref + "\n")
    (ctx / "notes.txt").write_text("kept\n")
    (ctx / "Kubefile").write_text(
        f"FROM {shell_image}\nCOPY registry /registry\nCOPY notes.txt /notes.txt\n"
        "RUN cat /registry/docker/registry/v2/repositories/app/x/_manifests/tags/v1/current/link > /found\n")
    before = sorted(p.relative_to(ctx) for p in ctx.rglob("*"))
    out = build(BuildRequest(context=ctx, tags=("localhost:5000/demo/reg:v1",)))
    assert out.backend == "buildah"
    tree = _tree(out.digest, tmp_path / "t")
    assert (tree / "found").read_text().startswith("sha256:") and (tree / "notes.txt").read_text() == "kept\n"
    roles = [d.annotations.get("io.imgbuild.layer.role") for d in out.results[0].manifest.layers]
    assert sorted(p.relative_to(ctx) for p in ctx.rglob("*")) == before  # the user's context is untouched
    assert (tree / "registry" / "docker" / "registry" / "v2" / "blobs").is_dir()
    assert "registry" not in roles  # the COPY took the bundle: it is not appended again as a layer of its own


def test_a_context_on_another_filesystem_than_the_home_is_copied_to_stage_registry(tmp_path: Path,
                                                                                   shell_image: str) -> None:
    """A link cannot cross filesystems: the context's files are copied into the staged context, with a note."""
    from imgbuild.builder.native import Reporter
    from imgbuild.builder.request import build as build_with

    class Notes(Reporter):
        def __init__(self) -> None:
            self.notes: list[str] = []

        def note(self, text: str) -> None:
            self.notes.append(text)

    ctx = tmp_path / "tmpfs-ctx"
    ctx.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(ctx)], check=True)
    try:
        (ctx / "Kubefile").write_text(f"FROM {shell_image}\nCOPY registry registry\nCOPY data /data\n"
                                      "RUN test -d registry && echo dir > /listed\n")
        (ctx / "data").write_bytes(b"x" * 300_000)
        reporter = Notes()
        out = build_with(BuildRequest(context=ctx, tags=("localhost:5000/demo/tmpfs:v1",)), open_store(home()),
                         executor=EXEC, reporter=reporter)
        tree = _tree(out.digest, tmp_path / "t")
        assert (tree / "data").read_bytes() == b"x" * 300_000 and (tree / "listed").read_text() == "dir\n"
        assert any("another filesystem" in n and "MB copied" in n for n in reporter.notes), reporter.notes
        assert sorted(p.name for p in ctx.iterdir()) == ["Kubefile", "data"]  # the context is untouched
    finally:
        subprocess.run(["umount", str(ctx)], check=True)