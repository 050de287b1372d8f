"""Building sealos' cluster-image sources: registry/ made by the build, options that exist, failures that name things.

No registry is needed: images point at ports on 127.0.0.1 where nothing listens.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import pytest

from imgbuild.builder.request import BuildRequest, build
from imgbuild.cli.main import run
from imgbuild.errors import BuildError, ContextError, RegistryError
from imgbuild.oci.layer import iter_layer_members
from tests.support.local import EXEC, store
from tests.support.registry import free_port
from tests.unit.builder.test_helm import deploy, write

SEALOS = 'FROM scratch\nCOPY charts charts\nCOPY registry registry\nCMD ["helm install app charts/app"]\n'


def sealos_context(root: Path, image: str) -> Path:
    """A context as sealos' cluster-image sources are: a chart and a Kubefile that copies registry/, which is absent."""
    return write(root, {
        "Kubefile": SEALOS,
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        "charts/app/values.yaml": f"image: {image}\n",
        "charts/app/templates/d.yaml": deploy("app", "        - name: app\n          image: {{ .Values.image }}"),
    })


def _build(ctx: Path, **kw):
    return build(BuildRequest(context=ctx, **kw), store(), executor=EXEC)


def _members(digest: str) -> dict[str, tarfile.TarInfo]:
    image = store().image(digest)
    out: dict[str, tarfile.TarInfo] = {}
    for desc in image.layers:
        with image.open_layer(desc) as fh:
            out.update({m.name.rstrip("/"): m for m in iter_layer_members(fh, desc.media_type)})
    return out


def test_lint_and_dry_run_accept_a_context_that_only_lacks_registry(tmp_path: Path, capsys) -> None:
    image = f"127.0.0.1:{free_port()}/acme/app:1"
    ctx = sealos_context(tmp_path / "ctx", image)
    assert run(["lint", str(ctx)]) == 0
    assert run(["build", "--dry-run", str(ctx)]) == 0
    out = capsys.readouterr().out
    assert "STEP 3/4: COPY registry registry" in out and "registry/: 1 image(s) to bundle" in out
    assert image in out and "charts/app/templates/d.yaml:10" in out and "to fetch" in out
    assert run(["build", "--dry-run", "--json", str(ctx)]) == 0
    bundle = json.loads(capsys.readouterr().out)["bundle"]
    assert bundle["images"] == [{"ref": image, "foundIn": "charts/app/templates/d.yaml:10", "from": "to fetch"}]
    (ctx / "Kubefile").write_text(SEALOS.replace("COPY charts charts", "COPY bin bin"))
    assert run(["lint", str(ctx)]) == 2  # any other missing source is still an error
    with pytest.raises(ContextError, match="COPY source 'bin' not found"):
        _build(ctx)


@pytest.mark.parametrize("kubefile", ["FROM scratch\nCOPY registry registry\n", "FROM scratch\nCOPY . .\n"])
def test_a_prepared_registry_builds_offline(tmp_path: Path, capsys, kubefile: str) -> None:
    from imgbuild.oci.regdir import RegistryDir
    from imgbuild.oci.regsave import save_images

    ref = f"127.0.0.1:{free_port()}/acme/prepared:1"  # nothing listens there: it can only come from registry/
    made = _build(write(tmp_path / "src", {"Kubefile": "FROM scratch\nCOPY f f\n", "f": "x"}), tags=(ref,),
                  save_image=False)
    ctx = write(tmp_path / "ctx", {"Kubefile": kubefile, "images/shim/list": ref + "\n"})
    save_images([ref], RegistryDir(ctx / "registry"), store=store())
    store().untag(ref)
    assert run(["build", "--dry-run", str(ctx)]) == 0
    assert "registry/ in the context" in capsys.readouterr().out
    outcome = _build(ctx)
    members = _members(outcome.digest)
    link = "registry/docker/registry/v2/repositories/acme/prepared/_manifests/tags/1/current/link"
    assert link in members and outcome.warnings == ()
    hexd = made.digest.split(":", 1)[1]
    assert f"registry/docker/registry/v2/blobs/sha256/{hexd[:2]}/{hexd}/data" in members  # the image itself


def test_save_image_false_bundles_nothing_and_registry_is_empty(tmp_path: Path) -> None:
    ctx = sealos_context(tmp_path / "ctx", f"127.0.0.1:{free_port()}/acme/app:1")
    outcome = _build(ctx, save_image=False)
    members = _members(outcome.digest)
    assert members["registry"].isdir() and members["registry"].mode == 0o755
    assert not [n for n in members if n.startswith("registry/")]
    assert [d.annotations["io.imgbuild.layer.role"] for d in outcome.results[0].manifest.layers] == ["rootfs", "registry"]


def test_unreachable_registries_fail_fast_naming_every_image(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    images = [f"127.0.0.1:{ports[i % 2]}/acme/img{i}:1" for i in range(440)]
    ctx = write(tmp_path / "ctx", {"Kubefile": "FROM scratch\nCOPY registry registry\n",
                                   "images/shim/list": "\n".join(images) + "\n"})
    start = time.monotonic()
    with pytest.raises(RegistryError) as err:
        _build(ctx)
    assert time.monotonic() - start < 30  # was 86 s offline: now one question per registry
    msg = str(err.value)
    assert msg.startswith("440 image(s) cannot be fetched, their registry does not answer (--skip-missing-images")
    assert f"127.0.0.1:{ports[0]}/acme/img0:1 (images/shim/list:1)" in msg and "and 215 more" in msg
    outcome = _build(ctx, skip_missing_images=True)
    skipped = [w for w in outcome.warnings if "is not bundled (images/shim/list:" in w]
    assert len(skipped) == 440  # every skip is shown
    assert _members(outcome.digest)["registry"].isdir()


def test_a_base_image_that_cannot_be_pulled_names_image_and_line(tmp_path: Path) -> None:
    base = f"127.0.0.1:{free_port()}/acme/base:1"
    ctx = write(tmp_path / "ctx", {"Kubefile": f"FROM scratch AS a\nCOPY f f\nFROM {base}\nCOPY f f\n", "f": "x"})
    with pytest.raises(BuildError) as err:
        _build(ctx, save_image=False)
    assert err.value.where == "Kubefile:3"
    assert f"base image {base} cannot be pulled: cannot reach the registry" in err.value.message
    (ctx / "Kubefile").write_text(f"FROM {base}\nRUN true\n")  # the buildah backend: bases are pulled first
    with pytest.raises(BuildError) as err:
        _build(ctx, save_image=False)
    assert err.value.where == "Kubefile:1" and f"base image {base} cannot be pulled" in err.value.message


def test_add_archive_creates_its_directory_0755(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("bin/tool")
        info.size, info.mode = 2, 0o755
        tf.addfile(info, io.BytesIO(b"hi"))
    ctx = write(tmp_path / "ctx", {"Kubefile": "FROM scratch\nADD tools.tgz /opt/tools\n"})
    (ctx / "tools.tgz").write_bytes(buf.getvalue())
    members = _members(_build(ctx, save_image=False).digest)
    assert members["opt/tools"].mode == 0o755 and members["opt/tools/bin/tool"].mode == 0o755


@pytest.mark.parametrize("argv, message", [
    (["--save-image=maybe"], "--save-image takes true or false, not 'maybe'"),
    (["--helm", "sometimes"], "--helm must be auto, always or never"),
])
def test_bad_option_values_exit_2(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    ctx = sealos_context(tmp_path / "ctx", "acme/app:1")
    assert run(["build", "--dry-run", *argv, str(ctx)]) == 2
    assert message in capsys.readouterr().err
