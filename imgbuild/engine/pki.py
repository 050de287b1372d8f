"""The cluster's PKI: one CA per cluster and a certificate per host, made on this machine at Init.

As sealos makes kubeadm's certificates on the machine that runs it and ships
them, the engine keeps a cluster CA under the cluster's state directory
(``pki/ca.crt``, ``pki/ca.key``, 0600) and issues each host a certificate whose
SANs are the host's address, its hostname, ``127.0.0.1`` and ``localhost``.
:func:`host_bundle` lays out what one host receives (``ca.crt``, ``host.crt``,
``host.key``, the cluster's join ``token``, and ``ca.key`` on masters) in a local directory the distributor
sends to ``$SEALOS_SYS_PKI``. An existing CA is reused, so a re-run or a scale-up
issues certificates every member trusts; a host certificate is re-issued only
when its SANs change.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
from pathlib import Path

from imgbuild.errors import StoreError
from imgbuild.fsutil import atomic_write

__all__ = ["ClusterPKI", "host_bundle"]

_DAYS_CA = 3650
_DAYS_HOST = 825


class ClusterPKI:
    """A cluster CA kept in ``directory`` (made on first use) that signs host certificates."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._key = None
        self._cert = None

    def ensure(self) -> "ClusterPKI":
        """Load the CA, or make it (ECDSA P-256, 10 years) when the directory has none."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        crt, key = self.directory / "ca.crt", self.directory / "ca.key"
        try:
            if crt.exists() and key.exists():
                self._cert = x509.load_pem_x509_certificate(crt.read_bytes())
                self._key = serialization.load_pem_private_key(key.read_bytes(), password=None)
                return self
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read the cluster CA: {exc}", str(self.directory)) from exc
        self._key = _new_key()
        self._cert = _sign(_name("imgbuild cluster CA"), self._key.public_key(), self._key, None, _DAYS_CA, ca=True)
        atomic_write(key, _key_pem(self._key), mode=0o600)
        atomic_write(crt, _cert_pem(self._cert), mode=0o644)
        return self

    def token(self) -> bytes:
        """The cluster's join token (32 random hex bytes, made once, 0600): every host shares it, so joiners
        (kubeadm, k3s, k0s) need not ask master0 for one."""
        import secrets

        path = self.directory / "token"
        if not path.exists():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(path, (secrets.token_hex(32) + "\n").encode(), mode=0o600)
        return path.read_bytes()

    @property
    def ca_cert_pem(self) -> bytes:
        """The CA certificate, PEM."""
        return _cert_pem(self._require()[0])

    @property
    def ca_key_pem(self) -> bytes:
        """The CA private key, PEM (masters receive it, as kubeadm's control-plane nodes do)."""
        return _key_pem(self._require()[1])

    def host_pair(self, address: str, hostname: str) -> tuple[bytes, bytes]:
        """``(cert_pem, key_pem)`` for a host, re-issued only when its SANs changed; kept under ``hosts/``."""
        cert_path = self.directory / "hosts" / f"{address}.crt"
        key_path = self.directory / "hosts" / f"{address}.key"
        sans = _sans(address, hostname)
        if cert_path.exists() and key_path.exists() and _cert_sans(cert_path.read_bytes()) == sans:
            return cert_path.read_bytes(), key_path.read_bytes()
        ca_cert, ca_key = self._require()
        key = _new_key()
        cert = _sign(_name(hostname or address), key.public_key(), ca_key, ca_cert, _DAYS_HOST, ca=False, sans=sans)
        cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(key_path, _key_pem(key), mode=0o600)
        atomic_write(cert_path, _cert_pem(cert), mode=0o644)
        return _cert_pem(cert), _key_pem(key)

    def _require(self):
        if self._cert is None:
            self.ensure()
        return self._cert, self._key


def host_bundle(pki: ClusterPKI, address: str, hostname: str, master: bool, dest: Path) -> Path:
    """Write what one host receives into ``dest`` (created 0700) and return it."""
    cert, key = pki.host_pair(address, hostname)
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(dest / "ca.crt", pki.ca_cert_pem, mode=0o644)
    atomic_write(dest / "host.crt", cert, mode=0o644)
    atomic_write(dest / "host.key", key, mode=0o600)
    atomic_write(dest / "token", pki.token(), mode=0o600)
    ca_key = dest / "ca.key"
    if master:
        atomic_write(ca_key, pki.ca_key_pem, mode=0o600)
    elif ca_key.exists():
        os.unlink(ca_key)
    return dest


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "imgbuild"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])])


def _sans(address: str, hostname: str) -> tuple[str, ...]:
    """The SANs of a host certificate, sorted, as ``ip:`` / ``dns:`` strings."""
    out = {"ip:127.0.0.1", "dns:localhost"}
    try:
        out.add(f"ip:{ipaddress.ip_address(address)}")
    except ValueError:
        out.add(f"dns:{address}")
    if hostname:
        out.add(f"dns:{hostname}")
    return tuple(sorted(out))


def _cert_sans(pem: bytes) -> tuple[str, ...]:
    from cryptography import x509

    try:
        ext = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound):
        return ()
    ips = [f"ip:{v}" for v in ext.value.get_values_for_type(x509.IPAddress)]
    names = [f"dns:{v}" for v in ext.value.get_values_for_type(x509.DNSName)]
    return tuple(sorted(ips + names))


def _sign(subject, public_key, ca_key, ca_cert, days: int, *, ca: bool, sans: tuple[str, ...] = ()):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(minutes=5)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(ca_cert.subject if ca_cert is not None else subject)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + _dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        names = [x509.IPAddress(ipaddress.ip_address(s[3:])) if s.startswith("ip:") else x509.DNSName(s[4:])
                 for s in sans]
        builder = (builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                         ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                   .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False),
                                  critical=True))
    return builder.sign(ca_key, hashes.SHA256())


def _cert_pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
