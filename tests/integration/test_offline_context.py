"""A whole build context (manifests, chart + subchart + override values, shim list, tar.txt) saved by the CLI.

The images live in a real registry; the found set must be exactly the expected one, and the saved
registry/ directory, served by a second stock registry, must give skopeo every image with its
original digest.
"""

import json
import textwrap

import pytest

from imgbuild.builder.images import find_images
from imgbuild.cli.main import run
from imgbuild.oci.model import Platform
from imgbuild.oci.regdir import RegistryDir
from tests.integration.offline_support import TestImage, pull_check, random_layer
from tests.support.registry import start_registry

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def make_context(root, host, tar):
    write(root / "manifests/deploy.yaml", f"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web}}
        spec:
          template:
            spec:
              initContainers:
                - name: init
                  image: {host}/library/busybox:1.36
              containers:
                - name: nginx
                  image: "{host}/library/nginx:1.25"
                - name: later
                  image: "{{{{ .Values.sidecar }}}}"
        """)
    write(root / "charts/web/Chart.yaml", """
        apiVersion: v2
        name: web
        version: 0.1.0
        appVersion: "1.0"
        dependencies:
          - name: cache
            version: 0.1.0
            condition: cache.enabled
        """)
    write(root / "charts/web/values.yaml", f"""
        image:
          registry: {host}
          repository: web/app
          tag: "1.0"
        cache:
          enabled: true
        """)
    write(root / "charts/web/templates/deploy.yaml", """
        kind: Deployment
        spec:
          template:
            spec:
              containers:
                - image: "{{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}"
        """)
    write(root / "charts/web.values.yaml", """
        image:
          tag: "1.1"
        """)
    write(root / "charts/web/charts/cache/Chart.yaml", """
        apiVersion: v2
        name: cache
        version: 0.1.0
        appVersion: "7.2"
        """)
    write(root / "charts/web/charts/cache/values.yaml", f"""
        image:
          registry: {host}
          repository: cache/redis
        """)
    write(root / "charts/web/charts/cache/templates/sts.yaml", """
        kind: StatefulSet
        spec:
          template:
            spec:
              containers:
                - image: "{{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Chart.AppVersion }}"
        """)
    write(root / "images/shim/extra", f"""
        # tools the installer runs
        {host}/tools/debug:v1
        """)
    write(root / "images/skopeo/tar.txt", f"docker-archive:{tar.name}@example.com/offline/app:v3\n")


def test_context_images_found_exactly_saved_and_served_with_original_digests(tmp_path, registry, capsys):
    host = registry.host
    here = Platform.current()
    other = Platform("linux", "arm64" if here.architecture != "arm64" else "amd64")
    base = random_layer(200_000)
    nginx_here, nginx_other = TestImage.single([base, random_layer(3000)], here), \
        TestImage.single([random_layer(3000)], other)
    images = {
        "library/nginx:1.25": TestImage.multi({here: nginx_here, other: nginx_other}),
        "library/busybox:1.36": TestImage.single([random_layer(2000)]),
        "web/app:1.1": TestImage.single([base, random_layer(4000)]),
        "web/app:1.0": TestImage.single([random_layer(10)]),  # in the registry, but overridden away
        "cache/redis:7.2": TestImage.single([base, random_layer(1500)]),
        "tools/debug:v1": TestImage.single([random_layer(700)]),
    }
    for name, img in images.items():
        img.push(tmp_path, f"{host}/{name}")
    archived = TestImage.single([random_layer(2500)], label="archived")
    ctx = tmp_path / "ctx"
    tar = ctx / "images/skopeo/app.tar"
    tar.parent.mkdir(parents=True)
    archived.docker_archive(tmp_path, tar, "example.com/offline/app:v3")
    make_context(ctx, host, tar)

    found = find_images(ctx)
    expected = sorted(f"{host}/{n}" for n in images if n != "web/app:1.0")
    assert found.refs == expected
    assert [(a.transport, a.ref) for a in found.archives] == [("docker-archive", "example.com/offline/app:v3")]
    assert [s.value for s in found.skipped] == ["{{ .Values.sidecar }}"]

    rd = tmp_path / "registry"
    assert run(["registry", "save", str(ctx), "--registry-dir", str(rd), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(s["ref"] for s in report["saved"]) == sorted(expected + ["example.com/offline/app:v3"])
    assert report["missing"] == []
    regdir = RegistryDir(rd)
    assert regdir.repositories() == ["cache/redis", "library/busybox", "library/nginx", "offline/app",
                                     "tools/debug", "web/app"]
    assert regdir.tags("web/app") == ["1.1"]
    assert not regdir.has_blob(nginx_other.top.layers[0].digest)  # other platform left out

    assert run(["registry", "save", str(ctx), "--registry-dir", str(rd), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["saved"] == [] and again["blobsCopied"] == 0 and len(again["skippedExisting"]) == 6

    (tmp_path / "pulled").mkdir()
    srv = start_registry(tmp_path / "srv", storage=rd)
    try:
        for n, img in images.items():
            if n == "web/app:1.0":
                continue
            want = nginx_here.digest if n == "library/nginx:1.25" else img.digest
            assert pull_check(srv.host, n, tmp_path / "pulled" / n.replace("/", "_").replace(":", "_")) == want, n
        saved_archive = [s for s in report["saved"] if s["repository"] == "offline/app"][0]
        assert pull_check(srv.host, "offline/app:v3", tmp_path / "pulled/archive") == saved_archive["digest"]
    finally:
        srv.stop()
    assert run(["registry", "ls", str(rd), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert len(listing["images"]) == 6 and all(not i["missing"] for i in listing["images"])


def test_cli_missing_image_fails_with_file_line_and_answer(tmp_path, registry, capsys):
    ctx = tmp_path / "ctx"
    write(ctx / "images/shim/list", f"{registry.host}/gone/away:v9\n")
    rd = tmp_path / "registry"
    assert run(["registry", "save", str(ctx), "--registry-dir", str(rd)]) == 2
    err = capsys.readouterr().err
    assert f"{registry.host}/gone/away:v9 (images/shim/list:1): no such image in the registry" in err
    assert run(["registry", "save", str(ctx), "--registry-dir", str(rd), "--skip-missing-images"]) == 0
    out, err = capsys.readouterr()
    assert "warning: not saved:" in err and "images/shim/list:1" in err and "0 saved" in out
