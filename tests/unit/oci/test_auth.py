"""Credential lookup, storage and challenge answers (real files and a real helper script, no network)."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from imgbuild.errors import AuthError, InputError
from imgbuild.oci.auth import (
    Authenticator, ConfigAuth, Credentials, StaticAuth, auth_files, registry_host, remove_credentials, split_scopes,
    save_credentials,
)
from imgbuild.engine.exec import LocalExecutor
from imgbuild.home import home
from imgbuild.oci.registry import insecure_hosts, is_loopback


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_credentials_hide_the_password():
    c = Credentials("alice", "top-secret")
    assert "top-secret" not in repr(c)
    assert Credentials.from_basic(c.basic()) == c
    assert Credentials.from_basic("!!!") is None


def test_save_and_remove_write_0600_docker_format(imgbuild_home: Path):
    path = save_credentials("localhost:5000", Credentials("alice", "pw"), home().auth_file)
    assert path == imgbuild_home / "auth.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data == {"auths": {"localhost:5000": {"auth": _b64("alice:pw")}}}
    auth = ConfigAuth.for_home(home(), None)
    assert auth.credentials("localhost:5000") == Credentials("alice", "pw")
    assert auth.credentials("127.0.0.1:5000") == Credentials("alice", "pw")  # same host
    assert auth.credentials("localhost:5001") is None
    assert remove_credentials("localhost:5000", home().auth_file) is True
    assert remove_credentials("localhost:5000", home().auth_file) is False


def test_lookup_order_ours_then_podman_then_docker(imgbuild_home: Path, tmp_path: Path, monkeypatch):
    podman = Path(os.environ["REGISTRY_AUTH_FILE"])
    podman.write_text(json.dumps({"auths": {"reg.example": {"auth": _b64("bob:p2")},
                                            "other.example": {"auth": _b64("carol:p3")}}}))
    docker = Path(os.environ["DOCKER_CONFIG"])
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"auths": {"https://docker.example/v1/": {"auth": _b64("d:p4")}}}))
    save_credentials("reg.example", Credentials("alice", "p1"), home().auth_file)
    auth = ConfigAuth.for_home(home(), None)
    assert auth.credentials("reg.example").username == "alice"
    assert auth.credentials("other.example").username == "carol"
    assert auth.credentials("docker.example").username == "d"
    assert auth.credentials("nowhere.example") is None
    assert auth_files(home())[0] == imgbuild_home / "auth.json"


def test_credential_helper_is_asked(tmp_path: Path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-fake"
    helper.write_text('#!/bin/sh\nread host\necho "{\\"Username\\":\\"u-$host\\",\\"Secret\\":\\"s\\"}"\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"credHelpers": {"h.example": "fake"}, "credsStore": "missing-helper"}))
    auth = ConfigAuth((cfg,), LocalExecutor())
    assert auth.credentials("h.example") == Credentials("u-h.example", "s")
    assert auth.credentials("x.example") is None  # credsStore helper not installed: no credentials


def test_basic_challenge_needs_credentials_and_never_shows_password():
    a = Authenticator("r.example", StaticAuth(None), None)
    with pytest.raises(AuthError, match="imgbuild login r.example"):
        a.answer('Basic realm="x"', "repository:a:pull", "https")
    b = Authenticator("r.example", StaticAuth(Credentials("alice", "pw-123")), None)
    header = b.answer('Basic realm="x"', "repository:a:pull", "https")
    assert header == {"Authorization": f"Basic {_b64('alice:pw-123')}"}
    assert b.header("repository:other:push") == header  # basic is the same for every scope
    with pytest.raises(AuthError, match="unsupported"):
        b.answer('Negotiate', "s", "https")


def test_registry_host_normalises_what_users_type():
    assert registry_host("https://localhost:5000/") == "localhost:5000"
    assert registry_host("index.docker.io") == "docker.io"
    with pytest.raises(InputError):
        registry_host("")


def test_loopback_and_insecure_hosts(monkeypatch):
    assert is_loopback("localhost:5000") and is_loopback("127.0.0.5") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example:5000") and not is_loopback("10.0.0.1:80")
    monkeypatch.setenv("IMGBUILD_INSECURE_REGISTRIES", "a.example:5000, b.example")
    assert insecure_hosts() == {"a.example:5000", "b.example"}


def test_split_scopes_keeps_order_and_drops_repeats():
    assert split_scopes("repository:b:pull,push repository:a:pull", None, "repository:a:pull x") == [
        "repository:b:pull,push", "repository:a:pull", "x"]


def _token_authenticator(tmp_path: Path, creds: Credentials | None, **kw):
    from imgbuild.oci._http import Transport
    from tests.support.tokenserver import TokenServer

    server = TokenServer(tmp_path / "tokens", users={"alice": ("pw-123", {"team/*": ("pull", "push")})},
                         anonymous={"public/*": ("pull",)}, **kw).start()
    auth = Authenticator("r.example", StaticAuth(creds), Transport())
    challenge = f'Bearer realm="{server.realm}",service="{server.service}",scope="repository:team/b:pull,push"'
    return server, auth, challenge


def test_bearer_scopes_go_as_separate_parameters_and_tokens_are_cached_per_key(tmp_path: Path):
    server, auth, challenge = _token_authenticator(tmp_path, Credentials("alice", "pw-123"))
    try:
        key = "repository:team/b:pull,push repository:team/a:pull"
        header = auth.answer(challenge, key, "http")
        assert header["Authorization"].startswith("Bearer ")
        assert server.requests[-1].scopes == ("repository:team/b:pull,push", "repository:team/a:pull")
        assert server.requests[-1].granted == server.requests[-1].scopes
        assert auth.header(key) == header and len(server.requests) == 1  # cached
        auth.header("repository:team/c:pull")  # a new scope: fetched up front, no 401 round trip needed
        assert server.requests[-1].scopes == ("repository:team/c:pull",)
        assert auth.answer(challenge, key, "http", failed="Bearer stale") == header  # someone else's fresh token
        assert len(server.requests) == 2
        assert auth.answer(challenge, key, "http", failed=header["Authorization"]) != header  # refused: a new one
    finally:
        server.stop()


def test_bearer_tokens_are_refreshed_before_they_expire(tmp_path: Path):
    import time

    server, auth, challenge = _token_authenticator(tmp_path, Credentials("alice", "pw-123"), expires_in=1)
    try:
        first = auth.answer(challenge, "repository:team/b:pull,push", "http")
        time.sleep(0.8)  # past 1 s minus the quarter-lifetime margin
        assert auth.header("repository:team/b:pull,push") != first
        assert len(server.requests) == 2
    finally:
        server.stop()


def test_bearer_refusals_name_the_user_and_scope_never_the_password(tmp_path: Path):
    server, auth, challenge = _token_authenticator(tmp_path, Credentials("alice", "wrong-pw-55"))
    try:
        with pytest.raises(AuthError) as err:
            auth.answer(challenge, "repository:team/b:pull,push", "http")
        assert "'alice'" in str(err.value) and "repository:team/b:pull,push" in str(err.value)
        assert "wrong-pw-55" not in str(err.value) and err.value.status == 401
    finally:
        server.stop()
    server, anon, challenge = _token_authenticator(tmp_path / "anon", None)
    try:
        anon.answer(challenge.replace("team/b:pull,push", "public/x:pull"), "repository:public/x:pull", "http")
        assert server.requests[-1].user is None and server.requests[-1].granted == ("repository:public/x:pull",)
    finally:
        server.stop()
