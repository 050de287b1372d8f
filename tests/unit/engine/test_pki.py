"""The cluster PKI: one CA reused across runs, host certificates with the right SANs, re-issued only on change."""

import ssl
import stat
import subprocess

from imgbuild.engine.pki import ClusterPKI, host_bundle


def test_ca_made_once_and_reused(tmp_path):
    first = ClusterPKI(tmp_path / "pki").ensure().ca_cert_pem
    assert ClusterPKI(tmp_path / "pki").ensure().ca_cert_pem == first
    assert stat.S_IMODE((tmp_path / "pki" / "ca.key").stat().st_mode) == 0o600


def test_host_cert_verifies_against_ca_with_sans(tmp_path):
    pki = ClusterPKI(tmp_path / "pki").ensure()
    dest = host_bundle(pki, "10.1.2.3", "node-1", True, tmp_path / "out")
    assert sorted(p.name for p in dest.iterdir()) == ["ca.crt", "ca.key", "host.crt", "host.key", "token"]
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(dest / "host.crt")],
                          capture_output=True, text=True, check=True).stdout
    for san in ("IP Address:10.1.2.3", "IP Address:127.0.0.1", "DNS:node-1", "DNS:localhost"):
        assert san in text
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(dest / "ca.crt"), str(dest / "host.crt")],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    ctx = ssl.create_default_context(cafile=str(dest / "ca.crt"))
    ctx.load_cert_chain(str(dest / "host.crt"), str(dest / "host.key"))


def test_host_cert_reissued_only_when_sans_change(tmp_path):
    pki = ClusterPKI(tmp_path / "pki").ensure()
    a = pki.host_pair("10.1.2.3", "n1")
    assert pki.host_pair("10.1.2.3", "n1") == a
    assert pki.host_pair("10.1.2.3", "renamed") != a


def test_nodes_do_not_get_the_ca_key(tmp_path):
    pki = ClusterPKI(tmp_path / "pki").ensure()
    host_bundle(pki, "10.1.2.4", "n2", True, tmp_path / "b")
    dest = host_bundle(pki, "10.1.2.4", "n2", False, tmp_path / "b")
    assert not (dest / "ca.key").exists()


def test_one_token_shared_by_every_host_0600(tmp_path):
    pki = ClusterPKI(tmp_path / "pki").ensure()
    a = host_bundle(pki, "10.1.2.3", "a", True, tmp_path / "a")
    b = host_bundle(ClusterPKI(tmp_path / "pki").ensure(), "10.1.2.4", "b", False, tmp_path / "b")
    assert (a / "token").read_bytes() == (b / "token").read_bytes() and len((a / "token").read_text().strip()) == 64
    assert stat.S_IMODE((b / "token").stat().st_mode) == 0o600


def test_bundles_made_in_parallel_share_one_ca(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    pki = ClusterPKI(tmp_path / "pki").ensure()
    with ThreadPoolExecutor(8) as pool:
        dests = list(pool.map(lambda i: host_bundle(pki, f"10.1.3.{i}", f"h{i}", False, tmp_path / f"h{i}"),
                              range(1, 9)))
    for dest in dests:
        verify = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "pki" / "ca.crt"),
                                 str(dest / "host.crt")], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
