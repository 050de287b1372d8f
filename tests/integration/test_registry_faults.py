"""Pushes and pulls through a fault-injecting proxy still complete with correct digests."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild.oci.registry import RegistryClient
from imgbuild.oci.store import Store
from imgbuild.oci.transfer import pull, push
from tests.support.faultproxy import FaultProxy
from tests.support.images import make_random_image

pytestmark = pytest.mark.registry


def _image(tmp_path: Path, host: str) -> tuple[Store, str, object]:
    store = Store(tmp_path / "store")
    ref = f"{host}/faults/app:v1"
    desc = make_random_image(store, ref, [12 << 20, 3 << 20, 500], workdir=tmp_path)
    return store, ref, desc


def _fast(host: str) -> RegistryClient:
    """A client with small chunks so a 12 MB blob is a chunked, resumable upload; quick backoff."""
    return RegistryClient(host, chunk_size=2 << 20, monolithic_max=4 << 20, backoff=0.01)


def test_push_survives_503s_and_cut_uploads(registry, tmp_path: Path):
    with FaultProxy(registry.host, fail_first=3, cut_requests=3, cut_after=(1 << 20) + 7) as proxy:
        store, ref, desc = _image(tmp_path, proxy.host)
        assert push(ref, store=store, client=_fast(proxy.host)) == desc.digest
        assert proxy.served_503 == 3 and proxy.cut_up == 3
    # the registry holds exactly what we meant: pull it back directly
    back = Store(tmp_path / "back")
    direct = ref.replace(proxy.host, registry.host)
    assert pull(direct, store=back).digest == desc.digest
    assert back.verify() == []


def test_pull_resumes_downloads_cut_mid_blob(registry, tmp_path: Path):
    store, _, desc = _image(tmp_path, registry.host)
    ref = f"{registry.host}/faults/app:v1"
    push(ref, store=store)
    with FaultProxy(registry.host, fail_first=2, cut_responses=4, cut_after=(1 << 20) + 3) as proxy:
        back = Store(tmp_path / "back")
        got = pull(ref.replace(registry.host, proxy.host), store=back, client=_fast(proxy.host))
        assert got.digest == desc.digest
        assert proxy.cut_down == 4 and proxy.served_503 == 2
    assert back.verify() == []
    image = back.image(ref.replace(registry.host, proxy.host))
    assert [back.blob_size(d.digest) for d in image.layers] == [d.size for d in image.layers]


def test_too_many_faults_is_a_registry_error_not_a_hang(registry, tmp_path: Path):
    from imgbuild.errors import RegistryError

    with FaultProxy(registry.host, fail_first=1000) as proxy:
        client = RegistryClient(proxy.host, retries=2, backoff=0.01)
        with pytest.raises(RegistryError, match="503|not a registry"):
            client.has_blob("x/y", "sha256:" + "0" * 64)


def test_upload_url_reports_its_range_and_an_upload_resumes_from_it(registry, tmp_path: Path):
    import hashlib
    import io

    from imgbuild.oci.model import Descriptor, Digest

    data = bytes(range(256)) * 20000  # 5 MB
    desc = Descriptor("application/octet-stream", Digest.from_hex(hashlib.sha256(data).hexdigest()), len(data))
    client = RegistryClient(registry.host, chunk_size=1 << 20)
    scope = "repository:res/ume:pull,push"
    location = client.start_upload("res/ume")
    from imgbuild.oci import _upload

    location, offset = _upload.patch(client, location, _upload.Section(lambda: io.BytesIO(data), 0, 1 << 20,
                                                                       lambda n: None), 0, "test", scope)
    # as if the answer to the next PATCH were lost: ask the upload URL where it stands
    status = client.upload_status(location, scope)
    assert status is not None and status[1] == 1 << 20
    sent = []
    _upload.upload(client, status[0], desc, lambda: io.BytesIO(data), sent.append, "test", scope, offset=status[1])
    assert sum(sent) == len(data) - (1 << 20)
    assert client.has_blob("res/ume", str(desc.digest))
