"""A real Debian ``docker-registry`` on a free 127.0.0.1 port, optionally with htpasswd or token auth, or TLS.

Token auth (``token=``) points the registry at a token service: anything with ``realm``,
``service``, ``issuer`` and ``cert_path`` (the signing certificate, used as the
``rootcertbundle``), such as :class:`tests.support.tokenserver.TokenServer`.
``access_log=True`` keeps the registry's access log in ``registry.log`` so a test can
count the requests it really served (see :meth:`RunningRegistry.requests`).
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REGISTRY_BIN = "docker-registry"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningRegistry:
    """A registry process and how to reach it."""

    host: str
    root: Path
    proc: subprocess.Popen
    username: str | None = None
    password: str | None = None
    ca_cert: Path | None = None
    log: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL (https when TLS is on)."""
        return f"{'https' if self.ca_cert else 'http'}://{self.host}"

    def requests(self, method: str, path_prefix: str) -> list[str]:
        """Access-log lines of ``method`` requests whose path starts with ``path_prefix`` (needs access_log)."""
        text = self.log.read_text(errors="replace") if self.log else ""
        needle = f'"{method} {path_prefix}'
        return [line for line in text.splitlines() if needle in line]

    def stop(self) -> None:
        """Terminate the process and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_htpasswd(path: Path, user: str, password: str) -> None:
    """Write a bcrypt htpasswd file, the only hash docker-registry accepts."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    path.write_text(f"{user}:{hashed}\n")


def make_self_signed(dirpath: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Create a self-signed certificate for ``host`` (IP SAN + localhost); return (cert, key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imgbuild-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = dirpath / "cert.pem", dirpath / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def start_registry(
    workdir: Path,
    *,
    storage: Path | None = None,
    auth: tuple[str, str] | None = None,
    tls: bool = False,
    port: int | None = None,
    token: object | None = None,
    access_log: bool = False,
) -> RunningRegistry:
    """Start docker-registry serving ``storage`` (default workdir/storage) and wait until /v2/ answers."""
    binary = shutil.which(REGISTRY_BIN) or shutil.which(REGISTRY_BIN, path="/usr/bin:/usr/sbin")
    if not binary:
        raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = storage or workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    lines = [
        "version: 0.1",
        f"log: {{level: warn, accesslog: {{disabled: {'false' if access_log else 'true'}}}}}",
        "storage:",
        f"  filesystem: {{rootdirectory: {storage}}}",
        "  delete: {enabled: true}",
        "  maintenance: {uploadpurging: {enabled: false}}",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: imgbuild-test-secret",
    ]
    ca = None
    if tls:
        cert, key = make_self_signed(workdir)
        lines.append(f"  tls: {{certificate: {cert}, key: {key}}}")
        ca = cert
    if auth:
        htp = workdir / "htpasswd"
        make_htpasswd(htp, *auth)
        lines += ["auth:", f"  htpasswd: {{realm: imgbuild-test, path: {htp}}}"]
    elif token is not None:
        lines += ["auth:", "  token:", f"    realm: {token.realm}", f"    service: {token.service}",
                  f"    issuer: {token.issuer}", f"    rootcertbundle: {token.cert_path}"]
    cfg = workdir / "config.yml"
    cfg.write_text("\n".join(lines) + "\n")
    log = workdir / "registry.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    proc = subprocess.Popen([binary, "serve", str(cfg)], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    reg = RunningRegistry(f"127.0.0.1:{port}", storage, proc, *(auth or (None, None)), ca_cert=ca, log=log)
    _wait_ready(reg)
    return reg


def _wait_ready(reg: RunningRegistry, timeout: float = 15.0) -> None:
    ctx = ssl.create_default_context(cafile=str(reg.ca_cert)) if reg.ca_cert else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reg.proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {reg.log.read_text() if reg.log else ''}")
        try:
            urllib.request.urlopen(f"{reg.url}/v2/", timeout=1, context=ctx)
            return
        except urllib.error.HTTPError:
            return  # 401 means it is up
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.05)
    reg.stop()
    raise RuntimeError("docker-registry did not become ready")
