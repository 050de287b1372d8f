"""Test images for the offline tests: real gzip tar layers, OCI layout dirs, pushed with skopeo."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

from tests.support.local import EXEC
from imgbuild.oci.model import Descriptor, Digest, ImageConfig, Index, Manifest, MediaType, Platform


def layer(files: dict[str, bytes]) -> bytes:
    """A gzip-compressed tar holding ``files`` (deterministic: fixed mtime)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), compresslevel=1, mtime=0)


def random_layer(size: int, name: str = "data.bin") -> bytes:
    """A layer with one file of ``size`` random bytes."""
    return layer({name: os.urandom(size)})


class TestImage:
    """An image (manifest or index) and every blob it needs, ready to be written as an OCI layout."""

    __test__ = False

    def __init__(self, top: Manifest | Index, blobs: dict[str, bytes]) -> None:
        self.top, self.blobs = top, blobs

    @property
    def digest(self) -> Digest:
        """The top manifest/index digest."""
        return self.top.digest

    @classmethod
    def single(cls, layers: list[bytes], plat: Platform = Platform("linux", "amd64"), label: str = "") -> "TestImage":
        """A one-platform image over these compressed layers."""
        cfg = ImageConfig.new(plat).with_changes(config={"Labels": {"test": label}} if label else {})
        descs = []
        for data in layers:
            cfg = cfg.with_layer(Digest.of(gzip.decompress(data)))
            descs.append(Descriptor.for_bytes(MediaType.OCI_LAYER_GZIP, data))
        man = Manifest.build(cfg.descriptor(), descs)
        blobs = {str(Digest.of(d)): d for d in layers}
        blobs[str(cfg.digest)] = cfg.raw
        blobs[str(man.digest)] = man.raw
        return cls(man, blobs)

    @classmethod
    def multi(cls, children: dict[Platform, "TestImage"]) -> "TestImage":
        """An index over single-platform images."""
        descs, blobs = [], {}
        for plat, img in children.items():
            descs.append(Descriptor(img.top.media_type, img.digest, img.top.size, platform=plat))
            blobs.update(img.blobs)
        idx = Index.build(descs)
        blobs[str(idx.digest)] = idx.raw
        return cls(idx, blobs)

    def write_layout(self, path: Path, tag: str = "latest") -> Path:
        """Write an OCI image layout holding this image under ``tag``."""
        for digest, data in self.blobs.items():
            p = path / "blobs" / "sha256" / Digest(digest).hex
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        desc = self.top.descriptor(**{"org.opencontainers.image.ref.name": tag}).to_dict()
        (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
        return path

    def push(self, workdir: Path, dest: str) -> None:
        """Copy this image to ``docker://dest`` with skopeo, digests preserved."""
        layout = self.write_layout(workdir / f"layout-{self.digest.hex[:12]}")
        args = ["--all"] if isinstance(self.top, Index) else []
        EXEC.run(["skopeo", "copy", "-q", *args, "--preserve-digests", "--dest-tls-verify=false",
                   f"oci:{layout}:latest", f"docker://{dest}"])

    def docker_archive(self, workdir: Path, out: Path, name: str) -> None:
        """Write this (single-platform) image as a docker-archive named ``name`` with skopeo."""
        layout = self.write_layout(workdir / f"layout-{self.digest.hex[:12]}")
        EXEC.run(["skopeo", "copy", "-q", f"oci:{layout}:latest", f"docker-archive:{out}:{name}"])


def remote_digest(host: str, ref: str) -> str:
    """The digest skopeo sees for ``host/ref`` (manifest or index)."""
    raw = EXEC.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{ref}"]).stdout
    return str(Digest.of(raw.encode()))


def pull_check(host: str, ref: str, dest: Path, *, all_platforms: bool = False) -> str:
    """Copy ``host/ref`` into an OCI layout with skopeo (verifying every blob) and return its top digest."""
    args = ["--all"] if all_platforms else []
    EXEC.run(["skopeo", "copy", "-q", *args, "--preserve-digests", "--src-tls-verify=false",
               f"docker://{host}/{ref}", f"oci:{dest}:x"])
    return json.loads((dest / "index.json").read_text())["manifests"][0]["digest"]
