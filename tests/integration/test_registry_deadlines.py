"""Registries that misbehave: every transfer has a deadline, redirects off http(s) and loops are errors, manifests
are capped at 4 MB. A fake registry on 127.0.0.1; the client's stall window shortened to keep the tests quick.
"""

from __future__ import annotations

import re
import time

import pytest

from imgbuild.errors import RegistryError
from imgbuild.home import home
from imgbuild.oci.registry import RETRY_BUDGET_S, STALL_S, RegistryClient
from imgbuild.oci.store import open_store
from imgbuild.oci.transfer import pull
from tests.support.badregistry import BadRegistry

CASES = {
    "redirect-file": "redirected to 'file:///etc/passwd', which is not an http(s) URL",
    "redirect-loop": "redirected in a loop",
    "huge-manifest": "the manifest is 52,4",
    "drip": "bytes of the manifest in 2 s; giving up",
    "drip-blob": "download kept failing after",
    "silent": "the registry sent nothing for 2 s",
}


@pytest.mark.parametrize("mode", sorted(CASES))
def test_a_misbehaving_registry_fails_in_time_and_says_why(mode: str) -> None:
    store = open_store(home())
    with BadRegistry(mode, drip_every=0.5) as reg:
        client = RegistryClient(reg.host, timeout=2, retry_budget=4)
        start = time.monotonic()
        with pytest.raises(RegistryError, match=re.escape(CASES[mode])):
            pull(reg.ref, store=store, client=client, jobs=1)
        assert time.monotonic() - start < 20
    assert not store.tags()
    assert not [p for p in (store.root / ".tmp").rglob("*") if p.is_file() and not p.name.endswith(".lock")]


def test_the_defaults_are_well_under_a_minute_per_stall() -> None:
    assert STALL_S <= 30 and RETRY_BUDGET_S <= 60
    client = RegistryClient("127.0.0.1:1")
    assert (client.timeout, client.retry_budget) == (STALL_S, RETRY_BUDGET_S)


def test_a_well_behaved_fake_registry_still_pulls() -> None:
    with BadRegistry("ok") as reg:
        desc = pull(reg.ref, store=open_store(home()), client=RegistryClient(reg.host, timeout=2), jobs=1)
    assert desc.digest.startswith("sha256:")
