"""find_images on a realistic context: the found set is exactly the expected one, with file:line sources."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from imgbuild.builder.images import find_images
from imgbuild.errors import ContextError, InputError, InvalidReference, UnsafePathError

DATA = Path(__file__).resolve().parents[2] / "data"
TGZ = "charts/queue-2.0.0.tgz!queue"
WORKER = f"{TGZ}/charts/worker-0.5.0.tgz!worker"


def add_bytes(tf: tarfile.TarFile, name: str, data: bytes, kind: bytes = tarfile.REGTYPE) -> None:
    """Add a member ``name`` holding ``data`` to an open tar."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.type = kind
    tf.addfile(info, io.BytesIO(data))


def pack(src: Path, top: str, extra: dict[str, bytes] | None = None) -> bytes:
    """A gzip tar of ``src`` under ``top/`` plus ``extra`` members, laid out as ``helm package`` does."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                add_bytes(tf, f"{top}/{p.relative_to(src).as_posix()}", p.read_bytes())
        for name, data in (extra or {}).items():
            add_bytes(tf, f"{top}/{name}", data)
    return buf.getvalue()


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """The 'full' fixture context plus a packaged chart holding a packaged subchart."""
    ctx = tmp_path / "ctx"
    shutil.copytree(DATA / "contexts" / "full", ctx)
    worker = pack(DATA / "chart-src" / "worker", "worker")
    queue = pack(DATA / "chart-src" / "queue", "queue", {"charts/worker-0.5.0.tgz": worker})
    (ctx / "charts" / "queue-2.0.0.tgz").write_bytes(queue)
    return ctx


EXPECTED = {
    "docker.io/acme/edge-static:1.0": ["manifests/apps/ingress.yaml.tmpl:12 manifest"],
    "docker.io/acme/exporter@sha256:" + "fedcba9876543210" * 4: ["manifests/crds/operator-cr.yaml:14 manifest"],
    "docker.io/fluent/fluent-bit:2.2": [f"{WORKER}/templates/deployment.yaml:12 helm-render"],
    "docker.io/library/alpine:3.19": [
        "charts/web/templates/deployment.yaml:16 chart-template",
        "manifests/apps/broken.yaml:5 manifest-line-scan",
    ],
    "docker.io/library/busybox:1.36": ["charts/web/values.yaml:12 chart-values", "images/shim/extra:2 shim-list"],
    "docker.io/library/nginx:latest": ["manifests/apps/deploy.yaml:18 manifest", "manifests/apps/pod.yml:11 manifest"],
    "docker.io/library/postgres:16.2": ["manifests/apps/deploy.yaml:33 manifest"],
    "docker.io/library/rabbitmq:3.12": [f"{TGZ}/templates/statefulset.yaml:10 helm-render"],  # appVersion default
    "docker.io/library/redis:7.2": ["images/shim/more.txt:1 shim-list"],
    "docker.io/library/redis:7.2.4": ["charts/web/values.yaml:18 chart-values"],
    "ghcr.io/acme/tools@sha256:" + "0123456789abcdef" * 4: ["manifests/apps/pod.yml:8 manifest"],
    "ghcr.io/acme/web-api:1.4.2": ["charts/web/values.yaml:8 chart-values"],
    "ghcr.io/acme/worker:0.5": [f"{WORKER}/templates/deployment.yaml:10 helm-render"],
    "quay.io/acme/backup-agent:3.0": ["manifests/crds/operator-cr.yaml:11 manifest"],
    "quay.io/acme/dbengine:5.7": ["manifests/crds/operator-cr.yaml:7 manifest", "manifests/imageList:4 image-list"],
    "quay.io/acme/edge-metrics:0.9": ["manifests/apps/ingress.yaml.tmpl:15 manifest"],
    "registry.example.com/shop/app:2.1": ["manifests/apps/deploy.yaml:14 manifest"],
    "registry.example.com/shop/migrate:2.1": ["manifests/apps/deploy.yaml:11 manifest"],
    "registry.example.com/web/frontend:1.4.1": ["charts/web.values.yaml:3 chart-values"],
    "registry.k8s.io/pause:3.9": ["manifests/imageList:2 image-list"],
}


def _table(images) -> dict[str, list[str]]:
    return {f.ref: [f"{s.file}:{s.line} {s.how}" for s in f.sources] for f in images}


def test_found_set_is_exactly_the_expected_one(context: Path) -> None:
    result = find_images(context)
    assert _table(result.found) == EXPECTED
    assert result.refs == sorted(EXPECTED)
    # the packaged charts render; charts/web cannot (it includes a define it lacks) and is read statically
    [warning] = result.warnings
    assert warning.file == "charts/web" and warning.message.startswith("cannot render the chart")
    assert 'no template "web.fullname"' in warning.message
    assert "(charts/web/templates/deployment.yaml:4:11)" in warning.message


def test_what_must_not_be_found(context: Path) -> None:
    refs = set(find_images(context).refs)
    bogus = {
        "docker.io/commented/out:1",  # commented line in values.yaml
        "docker.io/library/commented:0.1",  # commented line in a line-scanned file
        "docker.io/library/true:latest",  # `image: true` in a custom resource
        "docker.io/acme/sidecar:0.1",  # section with enabled: false
        "docker.io/prom/redis-exporter:v1.58.0",  # subchart disabled by the override file
        "quay.io/acme/metrics-sidecar:1.0",  # literal image in the disabled subchart's template
        "registry.example.com/web/frontend:1.4.0",  # tag replaced by charts/web.values.yaml
        "docker.io/library/redis:7.2.0",  # subchart tag replaced by the parent's values
        "registry.example.com/shop/ignored-tool:1.0",  # removed by .sealignore
        "docker.io/calico/node:v3.27.0",  # shipped as an archive, not pulled
    }
    assert refs.isdisjoint(bogus)


def test_templated_values_are_skipped_not_guessed(context: Path) -> None:
    skipped = [(s.file, s.line, s.value) for s in find_images(context).skipped]
    assert skipped == [
        ("manifests/apps/ingress.yaml.tmpl", 10, "{{ .registryDomain }}:{{ .registryPort }}/edge/proxy:1.0"),
        ("manifests/apps/ingress.yaml.tmpl", 18, "${EDGE_IMAGE}"),
    ]
    assert all("templated" in s.reason for s in find_images(context).skipped)


def test_ignored_archives_and_notes(context: Path) -> None:
    result = find_images(context)
    assert [(f.ref, str(f.sources[0])) for f in result.ignored] == [
        ("registry.example.com/shop/ignored-tool:1.0", "images/shim/extra:3")
    ]
    assert [(a.transport, a.path, a.ref, str(a.source)) for a in result.archives] == [
        ("docker-archive", "images/skopeo/calico-node.tar", "docker.io/calico/node:v3.27.0", "images/skopeo/tar.txt:2"),
        ("oci-archive", "images/skopeo/flannel.tar", "docker.io/flannel/flannel:v0.24.0", "images/skopeo/tar.txt:3"),
    ]
    notes = [str(n) for n in result.notes]
    assert notes == [
        "charts/web/charts/metrics: subchart metrics disabled by condition metrics.enabled=false"
        " (charts/web.values.yaml:5)",
        "charts/web/values.yaml:10: sidecar.enabled is false: not bundling docker.io/acme/sidecar:0.1",
        "manifests/apps/broken.yaml: not valid YAML at line 5 (found character that cannot start any token);"
        " scanned line by line",
    ]


def test_result_is_deterministic_and_json_ready(context: Path) -> None:
    one, two = find_images(context), find_images(context)
    assert one == two
    data = json.loads(json.dumps(one.to_dict()))
    assert [i["ref"] for i in data["images"]] == sorted(EXPECTED)
    first = data["images"][0]
    assert first == {
        "ref": "docker.io/acme/edge-static:1.0",
        "original": "docker.io/acme/edge-static:1.0",
        "sources": [{"file": "manifests/apps/ingress.yaml.tmpl", "line": 12, "how": "manifest"}],
    }
    assert set(data) == {"images", "skipped", "archives", "ignored", "notes", "warnings", "platform"}


def test_where_names_first_source_and_count(context: Path) -> None:
    by_ref = {f.ref: f for f in find_images(context).found}
    assert by_ref["docker.io/library/nginx:latest"].where == "manifests/apps/deploy.yaml:18 (+1 more)"
    assert by_ref["docker.io/library/nginx:latest"].original == "nginx"
    assert by_ref["registry.k8s.io/pause:3.9"].where == "manifests/imageList:2"


def test_image_list_adds_and_ignore_list_removes(context: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("# more\nquay.io/acme/new:1\n\nnginx  # dup of a manifest image\n")
    ignore = tmp_path / "ignore.txt"
    ignore.write_text("docker.io/library/postgres:16.2\nbusybox:1.36\n")
    result = find_images(context, image_lists=[extra], ignore_lists=[ignore])
    refs = set(result.refs)
    assert "quay.io/acme/new:1" in refs
    assert {"docker.io/library/postgres:16.2", "docker.io/library/busybox:1.36"}.isdisjoint(refs)
    assert len(refs) == len(EXPECTED) - 1
    nginx = next(f for f in result.found if f.ref == "docker.io/library/nginx:latest")
    assert f"{extra}:4" in [str(s) for s in nginx.sources]


def test_bad_line_in_a_user_list_fails_with_file_and_line(tmp_path: Path, context: Path) -> None:
    bad = tmp_path / "list.txt"
    bad.write_text("nginx:1.25\nNot A Ref\n")
    with pytest.raises(InvalidReference) as err:
        find_images(context, image_lists=[bad])
    assert err.value.where == f"{bad}:2"
    with pytest.raises(InvalidReference):
        find_images(context, ignore_lists=[bad])
    with pytest.raises(InputError, match="cannot read image list"):
        find_images(context, image_lists=[tmp_path / "missing.txt"])


def test_platform_is_validated_and_carried(context: Path) -> None:
    assert find_images(context, platform="linux/arm64").platform == "linux/arm64"
    assert find_images(context, platform="linux/arm/v7").platform == "linux/arm/v7"
    with pytest.raises(InputError, match="invalid platform"):
        find_images(context, platform="arm64")


def test_context_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ContextError):
        find_images(tmp_path / "nope")


def test_empty_context_finds_nothing(tmp_path: Path) -> None:
    result = find_images(tmp_path)
    assert result.found == () and result.skipped == () and result.archives == ()


def _tar_txt(ctx: Path, line: str) -> None:
    (ctx / "images" / "skopeo" / "tar.txt").write_text(line + "\n")


def test_archive_lines_are_checked(context: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.tar").write_text("x")
    _tar_txt(context, "docker-archive:../../../outside.tar@busybox:1")
    with pytest.raises(UnsafePathError, match="leaves the build context"):
        find_images(context)
    _tar_txt(context, "docker-archive:/etc/passwd@busybox:1")
    with pytest.raises(UnsafePathError):
        find_images(context)
    _tar_txt(context, "docker-archive:missing.tar@busybox:1")
    with pytest.raises(ContextError, match="archive file not found") as err:
        find_images(context)
    assert err.value.where == "images/skopeo/tar.txt:1"
    _tar_txt(context, "docker:calico-node.tar@busybox:1")
    with pytest.raises(ContextError, match="expected"):
        find_images(context)
    _tar_txt(context, "oci-archive:calico-node.tar@Bad Ref")
    with pytest.raises(InvalidReference):
        find_images(context)


def test_symlink_leaving_the_context_is_refused(context: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text("image: nginx\n")
    (context / "manifests" / "evil.yaml").symlink_to(tmp_path / "secret.yaml")
    with pytest.raises(UnsafePathError):
        find_images(context)


def test_files_excluded_by_the_context_ignore_file_are_not_scanned(context: Path) -> None:
    (context / ".sealignore").unlink()
    (context / ".dockerignore").write_text("manifests/crds\ncharts/queue-*.tgz\nimages/shim/more.txt\n")
    refs = set(find_images(context).refs)
    assert {"quay.io/acme/backup-agent:3.0", "docker.io/library/rabbitmq:3.12", "docker.io/library/redis:7.2"}.isdisjoint(refs)
    assert "quay.io/acme/dbengine:5.7" in refs  # still listed in manifests/imageList


def test_sealignore_lines_that_are_file_patterns_are_noted(context: Path) -> None:
    (context / ".sealignore").write_text("*.md\nregistry.example.com/shop/ignored-tool:1.0\n")
    result = find_images(context)
    assert [f.ref for f in result.ignored] == ["registry.example.com/shop/ignored-tool:1.0"]
    assert ".sealignore:1: '*.md' is not an image reference; not used to filter images" in map(str, result.notes)


def test_docker_daemon_lines_are_found_as_daemon_images(tmp_path: Path) -> None:
    (tmp_path / "images" / "shim").mkdir(parents=True)
    (tmp_path / "images" / "shim" / "list").write_text("docker-daemon:demo/app:v1\ndocker-daemon:Not A Ref\n")
    extra = tmp_path / "extra.txt"
    extra.write_text("docker-daemon:quay.io/acme/tool:2\n")
    result = find_images(tmp_path, image_lists=[extra])
    assert [(f.ref, f.daemon, f.original) for f in result.found] == [
        ("docker.io/demo/app:v1", True, "docker-daemon:demo/app:v1"),
        ("quay.io/acme/tool:2", True, "docker-daemon:quay.io/acme/tool:2")]
    assert [(s.file, s.line) for s in result.skipped] == [("images/shim/list", 2)]
    assert result.found[0].to_dict()["daemon"] is True
