"""A registry/ directory written by RegistryDir is served unchanged by a stock docker-registry."""

import json
import os
import urllib.request

import pytest

from tests.support.local import EXEC
from imgbuild.oci.model import Descriptor, Index, Platform
from imgbuild.oci.regdir import RegistryDir
from tests.support.registry import start_registry
from tests.unit.oci.test_regdir import make_image

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


def skopeo(*args: str) -> str:
    return EXEC.run(["skopeo", *args]).stdout


def test_stock_registry_serves_what_regdir_wrote(tmp_path):
    rd = RegistryDir(tmp_path / "registry")
    base = os.urandom(200_000)
    one, _ = make_image(rd, [base, os.urandom(1000)])
    amd, _ = make_image(rd, [base, b"amd"], Platform("linux", "amd64"))
    arm, _ = make_image(rd, [b"arm"], Platform("linux", "arm64", "v8"))
    idx = Index.build([
        Descriptor(amd.media_type, amd.digest, amd.size, platform=Platform("linux", "amd64")),
        Descriptor(arm.media_type, arm.digest, arm.size, platform=Platform("linux", "arm64", "v8")),
    ])
    rd.put_manifest("library/nginx", "1.25", one.raw)
    rd.put_manifest("team/multi", None, amd.raw)
    rd.put_manifest("team/multi", None, arm.raw)
    rd.put_manifest("team/multi", "v2", idx.raw)

    reg = start_registry(tmp_path / "srv", storage=rd.root)
    try:
        with urllib.request.urlopen(f"{reg.url}/v2/_catalog") as resp:
            assert json.load(resp)["repositories"] == ["library/nginx", "team/multi"]
        info = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{reg.host}/library/nginx:1.25"))
        assert info["config"]["digest"] == str(one.config.digest)
        dig = skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                     f"docker://{reg.host}/library/nginx:1.25").strip()
        assert dig == str(one.digest)
        out = tmp_path / "out"
        skopeo("copy", "--src-tls-verify=false", "--preserve-digests", f"docker://{reg.host}/library/nginx:1.25",
               f"oci:{out}:x")
        index = json.loads((out / "index.json").read_text())
        assert index["manifests"][0]["digest"] == str(one.digest)
        raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{reg.host}/team/multi:v2")
        assert raw.encode() == idx.raw
        out2 = tmp_path / "out2"
        skopeo("copy", "--all", "--src-tls-verify=false", "--preserve-digests",
               f"docker://{reg.host}/team/multi:v2", f"oci:{out2}:x")
        assert json.loads((out2 / "index.json").read_text())["manifests"][0]["digest"] == str(idx.digest)
        tags = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{reg.host}/team/multi"))
        assert tags["Tags"] == ["v2"]
    finally:
        reg.stop()
