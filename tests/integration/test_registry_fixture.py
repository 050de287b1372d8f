"""The registry fixtures start real docker-registry servers: plain, htpasswd, TLS."""

import base64
import ssl
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.registry


def test_plain_registry_answers(registry):
    with urllib.request.urlopen(f"{registry.url}/v2/") as resp:
        assert resp.status == 200


def test_auth_registry_requires_credentials(auth_registry):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{auth_registry.url}/v2/")
    assert info.value.code == 401
    req = urllib.request.Request(f"{auth_registry.url}/v2/")
    token = base64.b64encode(b"alice:s3cret-pw").decode()
    req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200


def test_tls_registry_needs_its_ca(tls_registry):
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{tls_registry.url}/v2/", context=ssl.create_default_context())
    ctx = ssl.create_default_context(cafile=str(tls_registry.ca_cert))
    with urllib.request.urlopen(f"{tls_registry.url}/v2/", context=ctx) as resp:
        assert resp.status == 200
