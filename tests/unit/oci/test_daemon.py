"""The checks on a daemon's image export (:mod:`imgbuild.oci.daemon`), with a fake Engine API serving crafted tars.

A real daemon never serves a corrupt export, so these cases need a fake: the export is
streamed into a scratch layout and every member hashed; a config whose name is not its
digest, a layer that is not its diffID, a ``blobs/`` member under another name, or a
member outside the archive is refused; gzip layers and links (docker save's duplicate
layers) are read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from imgbuild.errors import DigestMismatch, InputError, UnsafePathError
from imgbuild.oci.daemon import Daemon, daemon_ref, open_image, store_name
from imgbuild.oci.model import MediaType
from imgbuild.oci.validate import validate_image


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _layer(text: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("file.txt")
        info.size = len(text.encode())
        tar.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


def _export(members: list[tuple[str, bytes | str]]) -> bytes:
    """A tar of ``(name, bytes)`` files and ``(name, "->target")`` symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data[2:]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _archive(layers: list[bytes], *, diff_ids: list[str] | None = None, config_name: str | None = None,
             extra: list[tuple[str, bytes | str]] = ()) -> bytes:
    """A docker-archive as ``docker save`` writes it: ``<id>/layer.tar`` (the second a link to the first if equal)."""
    ids = diff_ids or [f"sha256:{_sha(raw)}" for raw in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": ids}}).encode()
    members: list[tuple[str, bytes | str]] = []
    names = []
    for i, raw in enumerate(layers):
        name = f"layer{i}/layer.tar"
        same = next((n for n, r in zip(names, layers) if r == raw), None)
        members.append((name, f"->../{same}" if same else raw))
        names.append(name)
    config_name = config_name or f"{_sha(config)}.json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["demo/app:v1"], "Layers": names}]).encode()
    return _export([*members, (config_name, config), *extra, ("manifest.json", manifest)])


class _API:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_image(self, ref: str, chunk_size: int):
        return (self.data[i:i + 1000] for i in range(0, len(self.data), 1000))


def _open(tmp_path: Path, data: bytes):
    return open_image(Daemon(_API(data), "unix:///fake.sock"), "demo/app:v1", tmp_path)


def test_an_export_becomes_an_image_with_its_config_and_layers_checked(tmp_path: Path) -> None:
    base, gz = _layer("base"), gzip.compress(_layer("zipped"), mtime=0)
    data = _archive([base, base, gz], diff_ids=[f"sha256:{_sha(base)}"] * 2 + [f"sha256:{_sha(_layer('zipped'))}"])
    with _open(tmp_path, data) as image:
        assert validate_image(image) == []
        assert [d.media_type for d in image.layers] == [MediaType.OCI_LAYER] * 2 + [MediaType.OCI_LAYER_GZIP]
        assert image.layers[0].digest == image.layers[1].digest == f"sha256:{_sha(base)}"
        with image.open_blob(image.layers[2]) as fh:
            assert fh.read() == gz
    assert list(tmp_path.iterdir()) == []  # the scratch layout is gone


@pytest.mark.parametrize("case, error, says", [
    ("config", DigestMismatch, "config of"),
    ("layer", DigestMismatch, "diffID"),
    ("blob-name", DigestMismatch, "blobs/sha256/"),
    ("escape", UnsafePathError, "escapes the archive"),
    ("count", InputError, "1 layers but the config lists 2"),
    ("no-manifest", InputError, "lacks manifest.json"),
])
def test_a_corrupt_export_is_refused(tmp_path: Path, case: str, error: type, says: str) -> None:
    good = _layer("good")
    data = {
        "config": lambda: _archive([good], config_name=f"{'0' * 64}.json"),
        "layer": lambda: _archive([good], diff_ids=[f"sha256:{_sha(_layer('other'))}"]),
        "blob-name": lambda: _archive([good], extra=[(f"blobs/sha256/{'1' * 64}", b"not that")]),
        "escape": lambda: _archive([good], extra=[("../../etc/evil", b"x")]),
        "count": lambda: _archive([good], diff_ids=[f"sha256:{_sha(good)}"] * 2),
        "no-manifest": lambda: _export([("layer0/layer.tar", good)]),
    }[case]()
    with pytest.raises(error, match=says):
        with _open(tmp_path, data):
            pass
    assert list(tmp_path.iterdir()) == []


def test_references() -> None:
    assert daemon_ref("docker-daemon:app:v1") == "app:v1" and daemon_ref("app:v1") is None
    with pytest.raises(InputError):
        daemon_ref("docker-daemon:")
    assert store_name("app:v1").normalized == "docker.io/library/app:v1"
    assert store_name("0123456789ab") is None and store_name("sha256:" + "a" * 64) is None
