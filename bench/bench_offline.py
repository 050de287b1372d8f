"""Saving images into a registry/ dir: ``imgbuild registry save`` vs ``skopeo copy`` one by one.

Twenty images sharing base layers are pushed once into a local docker-registry (the source):
images 0-9 share a 150 MB base layer, images 10-19 another, and each has its own 35 MB layer,
so the unique content is 1 GB (3.7 GB counted per image). Layers are uncompressed tars of
random bytes, made straight into an OCI layout under /tmp. Then, in the same run:

* ``imgbuild registry save --images <all 20> --registry-dir D1`` (a fresh process, jobs=4)
  writes the docker-distribution layout directly;
* ``skopeo copy docker://src/... docker://dst/...`` for each image in turn into a second
  docker-registry whose storage is an empty directory on the same disk (registry start-up
  not timed; skopeo mounts shared blobs across repositories, as it does by default);
* ``imgbuild registry save`` again (everything present: nothing copied).

Both results must hold the same manifest digests. The ratio printed is skopeo's time over
ours: >= 2.0 is the target. Run: ``python -m bench offline``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

from imgbuild.engine.exec import LocalExecutor, require_tool
from imgbuild.oci.model import Descriptor, Digest, ImageConfig, Manifest, MediaType
from imgbuild.oci.regdir import RegistryDir

EXEC = LocalExecutor()

__all__ = ["main"]

WORK = Path("/tmp/imgbuild-bench-offline")
BASE_MB, APP_MB, N_IMAGES = 150, 35, 20


def _random_tar_layer(layout: Path, mb: int) -> Descriptor:
    """Write an uncompressed tar with one random file of ``mb`` MiB into the layout's blobs; return it."""
    tmp = layout / "blobs" / "tmp.tar"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    size = mb << 20

    class _Random:
        def __init__(self) -> None:
            self.left = size

        def read(self, n: int = -1) -> bytes:
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            return os.urandom(n)

    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("data.bin")
        info.size, info.mtime = size, 0
        tf.addfile(info, _Random())
    h = Digest.of(b"").hasher()
    with open(tmp, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = Digest.from_hex(h.hexdigest())
    dest = layout / "blobs" / "sha256" / digest.hex
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
    return Descriptor(MediaType.OCI_LAYER, digest, dest.stat().st_size)


def _put(layout: Path, data: bytes) -> None:
    p = layout / "blobs" / "sha256" / Digest.of(data).hex
    p.write_bytes(data)


def make_layout(layout: Path) -> list[str]:
    """An OCI layout holding the 20 images, tagged img0..img19; returns the tags."""
    shutil.rmtree(layout, ignore_errors=True)
    bases = [_random_tar_layer(layout, BASE_MB) for _ in range(2)]
    entries, tags = [], []
    for i in range(N_IMAGES):
        app = _random_tar_layer(layout, APP_MB)
        layers = [bases[i * 2 // N_IMAGES], app]
        cfg = ImageConfig.new().with_changes(config={"Labels": {"bench": str(i)}})
        for layer in layers:
            cfg = cfg.with_layer(layer.digest)  # uncompressed: diffID == digest
        man = Manifest.build(cfg.descriptor(), layers)
        _put(layout, cfg.raw)
        _put(layout, man.raw)
        tag = f"img{i}"
        entries.append(man.descriptor(**{"org.opencontainers.image.ref.name": tag}).to_dict())
        tags.append(tag)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return tags


def _timed(label: str, fn) -> float:
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    print(f"  {label:<60} {wall:7.2f} s", flush=True)
    return wall


def _skopeo(*args: str) -> None:
    EXEC.run(["skopeo", *args])


def main() -> dict:
    """Run the benchmark and return its ratios."""
    require_tool("skopeo")
    require_tool("docker-registry")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.registry import start_registry

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    env_home = {"IMGBUILD_HOME": str(WORK / "home"), "XDG_DATA_HOME": str(WORK / "xdg"), "HOME": str(WORK)}
    os.environ.update(env_home)  # skopeo's blob-info cache and our store start empty
    print(f"  making {N_IMAGES} images ({2 * BASE_MB + N_IMAGES * APP_MB} MiB unique)...", flush=True)
    tags = make_layout(WORK / "layout")
    src = start_registry(WORK / "src")
    dst = start_registry(WORK / "dst", storage=WORK / "dst-storage")
    try:
        for tag in tags:
            _skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{WORK / 'layout'}:{tag}",
                    f"docker://{src.host}/bench/{tag}:v1")
        refs = [f"{src.host}/bench/{t}:v1" for t in tags]
        cli = [str(Path(sys.executable).with_name("imgbuild")), "-q", "registry", "save", "--registry-dir",
               str(WORK / "regdir"), "--images", ",".join(refs), "--jobs", "4"]
        os.sync()
        ours = _timed("imgbuild registry save (20 images, jobs=4)", lambda: EXEC.run(cli))
        again = _timed("imgbuild registry save again (all present)", lambda: EXEC.run(cli))
        os.sync()

        def skopeo_all() -> None:
            for t in tags:
                _skopeo("copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false",
                        f"docker://{src.host}/bench/{t}:v1", f"docker://{dst.host}/bench/{t}:v1")
        theirs = _timed("skopeo copy one by one into docker-registry", skopeo_all)
    finally:
        src.stop()
        dst.stop()
    mine, skop = RegistryDir(WORK / "regdir"), RegistryDir(WORK / "dst-storage")
    same = all(mine.resolve(f"bench/{t}", "v1") == skop.resolve(f"bench/{t}", "v1") for t in tags)
    print(f"  same digests in both: {same}; on disk: imgbuild {mine.total_size() >> 20} MiB, "
          f"registry {skop.total_size() >> 20} MiB", flush=True)
    shutil.rmtree(WORK, ignore_errors=True)
    return {"skopeo_over_imgbuild": theirs / ours, "rerun_s": again, "same_digests": same}


if __name__ == "__main__":
    print(main())
