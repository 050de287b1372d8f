"""Basic-auth and TLS registries through the CLI: login, clear errors, CA bundles, --tls-verify=false."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from imgbuild.cli.main import run
from imgbuild.errors import AuthError, RegistryError
from imgbuild.oci.store import Store, open_store
from imgbuild.oci.transfer import pull, push
from imgbuild.home import home
from tests.support.images import make_random_image

pytestmark = pytest.mark.registry


def test_login_stores_credentials_0600_and_push_pull_use_them(auth_registry, imgbuild_home, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-pw\n"))
    assert run(["login", auth_registry.host, "-u", "alice", "--password-stdin"]) == 0
    out = capsys.readouterr()
    assert "s3cret-pw" not in out.out + out.err
    auth_file = imgbuild_home / "auth.json"
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    assert auth_registry.host in json.loads(auth_file.read_text())["auths"]
    ref = f"{auth_registry.host}/secure/app:v1"
    desc = make_random_image(open_store(home()), ref, [3000])
    assert run(["push", ref]) == 0
    assert capsys.readouterr().out.strip() == desc.digest
    assert run(["logout", auth_registry.host]) == 0
    with pytest.raises(AuthError):
        pull(ref, store=Store(imgbuild_home / "other"))


def test_wrong_password_is_a_clear_error_that_does_not_print_it(auth_registry, capsys):
    code = run(["login", auth_registry.host, "-u", "alice", "-p", "not-the-pw-xyz"])
    out = capsys.readouterr()
    assert code == 1
    assert "not-the-pw-xyz" not in out.out + out.err
    assert "refused" in out.err and auth_registry.host in out.err and "alice" in out.err


def test_debug_output_never_shows_the_password(auth_registry, capsys, caplog):
    caplog.set_level("DEBUG")
    run(["--debug", "login", auth_registry.host, "-u", "alice", "-p", "wrong-secret-42"])
    out = capsys.readouterr()
    assert "wrong-secret-42" not in out.out + out.err + caplog.text


def test_docker_config_credentials_are_read(auth_registry, imgbuild_home, tmp_path):
    import base64

    docker = Path(os.environ["DOCKER_CONFIG"])
    docker.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(b"alice:s3cret-pw").decode()
    (docker / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    store = Store(tmp_path / "s")
    ref = f"{auth_registry.host}/fromdocker/app:v1"
    desc = make_random_image(store, ref, [100])
    assert push(ref, store=store) == desc.digest


def test_tls_registry_refused_by_default(tls_registry, tmp_path):
    store = Store(tmp_path / "s")
    ref = f"{tls_registry.host}/tls/app:v1"
    make_random_image(store, ref, [100])
    with pytest.raises(RegistryError, match="certificate not trusted"):
        push(ref, store=store)


def test_tls_registry_with_ca_bundle_or_without_verification(tls_registry, tmp_path, monkeypatch, capsys):
    store = open_store(home())
    ref = f"{tls_registry.host}/tls/app:v1"
    desc = make_random_image(store, ref, [100, 2000])
    certs = tmp_path / "certs.d"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(tls_registry.ca_cert.read_bytes())
    assert run(["push", ref, "--cert-dir", str(certs)]) == 0
    assert capsys.readouterr().out.strip() == desc.digest
    monkeypatch.setenv("REGISTRY_CA", str(tls_registry.ca_cert))
    assert pull(ref, store=Store(tmp_path / "a")).digest == desc.digest
    monkeypatch.delenv("REGISTRY_CA")
    assert run(["pull", ref, "--tls-verify=false"]) == 0
    monkeypatch.setenv("IMGBUILD_INSECURE_REGISTRIES", f"other:5000,{tls_registry.host}")
    assert pull(ref, store=Store(tmp_path / "b")).digest == desc.digest


def test_bad_tls_verify_value_is_a_usage_error(registry, capsys):
    assert run(["pull", f"{registry.host}/x:y", "--tls-verify=maybe"]) == 2


def test_a_loopback_registry_is_asked_over_http_first_and_a_tls_one_then_over_https(registry, tls_registry):
    import subprocess
    import sys

    from imgbuild.oci.registry import RegistryClient

    with RegistryClient(tls_registry.host, tls_verify=False) as client:  # refuses the plain request: https
        assert client.base == f"https://{tls_registry.host}"
    with RegistryClient(registry.host) as client:
        assert client.base == f"http://{registry.host}"
    # a plain-http registry costs no TLS: not even the ssl module (nor http.client's email package) is loaded
    code = ("import sys; from imgbuild.oci.registry import RegistryClient; "
            f"RegistryClient({registry.host!r}).ping(); "
            "print([m for m in ('ssl', 'http.client', 'email') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class _ConnectProxy:
    """An https proxy on loopback: answers CONNECT, then pipes bytes both ways; records what it was asked."""

    def __init__(self) -> None:
        import socket
        import threading

        self.asked: list[str] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head and (got := client.recv(4096)):
                head += got
            target = head.split(b" ", 2)[1].decode()
            self.asked.append(head.split(b"\r\n", 1)[0].decode())
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def close(self) -> None:
        self._sock.close()


def test_https_through_a_connect_proxy_with_the_ca_as_the_system_store(tls_registry, tmp_path, monkeypatch):
    store = Store(tmp_path / "s")
    ref = f"{tls_registry.host}/proxied/app:v1"
    desc = make_random_image(store, ref, [100, 3000])
    proxy = _ConnectProxy()
    try:
        monkeypatch.setenv("https_proxy", proxy.url)
        for name in ("no_proxy", "NO_PROXY", "HTTPS_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.ca_cert))  # the system store, as openssl reads it
        assert push(ref, store=store) == desc.digest
        assert proxy.asked and all(line.startswith(f"CONNECT {tls_registry.host} ") for line in proxy.asked)
    finally:
        proxy.close()
