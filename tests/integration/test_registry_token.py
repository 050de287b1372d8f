"""Bearer-token auth end to end: a real docker-registry 2.8 trusting a real token server (ES256 JWTs, x5c).

The ``token_registry`` fixture: alice may push and pull ``team/*`` and ``public/*``,
bob may only pull ``team/*``, carol may push and pull ``drop/*`` only, anyone may
pull ``public/*``. What the registry really served is read from its access log;
what the token service granted from its request record.
"""

from __future__ import annotations

import io
import json
import time

import pytest
import requests

from imgbuild.cli.main import run
from tests.support.local import EXEC
from imgbuild.errors import AuthError
from imgbuild.oci.auth import ConfigAuth, Credentials, StaticAuth
from imgbuild.oci.registry import RegistryClient
from imgbuild.oci.store import Store, open_store
from imgbuild.oci.transfer import pull, push
from imgbuild.home import home
from tests.conftest import start_token_registry
from tests.support.images import make_random_image

pytestmark = pytest.mark.registry

ALICE = StaticAuth(Credentials("alice", "s3cret-pw"))
ANON = StaticAuth(None)


class Outcomes:
    """A progress object that records each blob's outcome (pushed / mounted / exists)."""

    def __init__(self, delay_per_mib: float = 0.0) -> None:
        self.seen: dict[str, str] = {}
        self.delay = delay_per_mib

    def started(self, label, total_bytes=None):
        pass

    def advanced(self, label, nbytes):
        if self.delay:
            time.sleep(max(nbytes, 0) / (1 << 20) * self.delay)

    def finished(self, label, outcome="done"):
        if "/" in label:  # a blob (push/sha256:...), not the whole push
            self.seen[label.split("/", 1)[1]] = outcome


def _blobs(store: Store, ref: str) -> list[str]:
    image = store.image(ref)
    return [str(image.manifest.config.digest)] + [str(d.digest) for d in image.layers]


def _login(host: str, user: str, password: str, monkeypatch) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return run(["login", host, "-u", user, "--password-stdin"])


def test_login_then_push_and_pull_give_the_same_digests(token_registry, imgbuild_home, capsys, monkeypatch,
                                                       tmp_path):
    assert _login(token_registry.host, "alice", "s3cret-pw", monkeypatch) == 0
    assert "s3cret-pw" not in "".join(capsys.readouterr())
    assert token_registry.extra["tokens"].requests[0].scopes == ()  # login asks for no scope, as docker does
    ref = f"{token_registry.host}/team/a:v1"
    desc = make_random_image(open_store(home()), ref, [5000, 300_000])
    assert run(["push", ref]) == 0
    assert capsys.readouterr().out.strip() == desc.digest
    other = Store(tmp_path / "other")
    saved = ConfigAuth.for_home(home(), None)  # what the CLI would pass: the Home's saved credentials
    assert pull(ref, store=other, auth=saved).digest == desc.digest  # saved credentials, a fresh client
    assert _blobs(other, ref) == _blobs(open_store(home()), ref)
    tokens = token_registry.extra["tokens"].requests
    assert any(r.user == "alice" and r.granted == ("repository:team/a:pull,push",) for r in tokens)
    assert all(r.status == 200 for r in tokens)


def test_each_scope_gets_its_own_token_and_public_pulls_are_anonymous(token_registry, tmp_path):
    store = Store(tmp_path / "s")
    team, public = f"{token_registry.host}/team/a:v1", f"{token_registry.host}/public/b:v1"
    d_team = make_random_image(store, team, [2000])
    d_pub = make_random_image(store, public, [3000])
    with RegistryClient(token_registry.host, auth=ALICE) as client:
        assert push(team, store=store, client=client) == d_team.digest
        assert push(public, store=store, client=client) == d_pub.digest
        granted = {r.granted for r in token_registry.extra["tokens"].requests}
        assert ("repository:team/a:pull,push",) in granted and ("repository:public/b:pull,push",) in granted
        assert not any(len(g) > 1 for g in granted)  # never one token stretched over two repositories
    assert pull(public, store=Store(tmp_path / "anon"), auth=ANON).digest == d_pub.digest
    with pytest.raises(AuthError, match=r"anonymous access.*repository:team/a:pull"):
        pull(team, store=Store(tmp_path / "anon2"), auth=ANON)


def test_a_pull_only_user_is_refused_push_clearly_without_the_password(token_registry, capsys, caplog,
                                                                      monkeypatch):
    caplog.set_level("DEBUG")
    assert _login(token_registry.host, "bob", "bob-pw-77", monkeypatch) == 0
    ref = f"{token_registry.host}/team/a:v1"
    make_random_image(open_store(home()), ref, [1000])
    for argv in (["push", ref], ["--debug", "push", ref]):
        assert run(argv) == 1
        out = capsys.readouterr()
        err = out.err
        assert token_registry.host in err and "repository:team/a:pull,push" in err and "'bob'" in err
        assert "insufficient_scope" in err
        assert "bob-pw-77" not in out.out + err + caplog.text
    assert run(["login", token_registry.host, "-u", "bob", "-p", "wrong-pw-991"]) == 1
    out = capsys.readouterr()
    assert "refused" in out.err and "'bob'" in out.err
    assert "wrong-pw-991" not in out.out + out.err + caplog.text


def test_cross_repository_mount_asks_for_both_scopes_and_uploads_nothing(token_registry, tmp_path):
    store = Store(tmp_path / "s")
    src, dst = f"{token_registry.host}/team/a:v1", f"{token_registry.host}/team/b:v1"
    desc = make_random_image(store, src, [400_000, 7000], workdir=tmp_path)
    push(src, store=store, auth=ALICE)
    store.tag(dst, desc)
    seen = Outcomes()
    assert push(dst, store=store, auth=ALICE, progress=seen) == desc.digest
    assert set(seen.seen.values()) == {"mounted"} and len(seen.seen) == 3
    asked = [r for r in token_registry.extra["tokens"].requests if "repository:team/a:pull" in r.scopes
             and "repository:team/b:pull,push" in r.scopes]
    assert asked and asked[0].granted == ("repository:team/b:pull,push", "repository:team/a:pull")
    mounts = token_registry.requests("POST", "/v2/team/b/blobs/uploads/?mount=")
    assert len(mounts) == 3 and all('" 201 ' in line for line in mounts)
    assert token_registry.requests("PATCH", "/v2/team/b/") == []
    assert token_registry.requests("PUT", "/v2/team/b/blobs/") == []
    assert pull(dst, store=Store(tmp_path / "back"), auth=ALICE).digest == desc.digest


def test_a_mount_from_a_repository_the_user_cannot_read_falls_back_to_uploading(token_registry, tmp_path):
    store = Store(tmp_path / "s")
    src, dst = f"{token_registry.host}/team/a:v1", f"{token_registry.host}/drop/c:v1"
    desc = make_random_image(store, src, [20_000])
    push(src, store=store, auth=ALICE)
    store.tag(dst, desc)
    seen = Outcomes()
    carol = StaticAuth(Credentials("carol", "carol-pw-3"))
    assert push(dst, store=store, auth=carol, progress=seen) == desc.digest
    assert set(seen.seen.values()) == {"pushed"}
    assert len(token_registry.requests("PUT", "/v2/drop/c/blobs/uploads/")) == 2
    assert pull(dst, store=Store(tmp_path / "back"), auth=carol).digest == desc.digest


def test_a_long_push_outlives_its_token_and_refreshes_before_expiry(tmp_path):
    reg = start_token_registry(tmp_path / "short", expires_in=2, compensate_leeway=True)
    try:
        tokens = reg.extra["tokens"]
        # the setup really expires tokens after 2 s at the registry (not 2 s + its 60 s leeway)
        token = tokens.issue("alice", ["repository:team/a:pull"])["token"]
        url = f"http://{reg.host}/v2/team/a/tags/list"
        assert requests.get(url, headers={"Authorization": f"Bearer {token}"}).status_code in (200, 404)
        time.sleep(2.2)
        assert requests.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 401

        store = Store(tmp_path / "s")
        ref = f"{reg.host}/team/a:v1"
        desc = make_random_image(store, ref, [3 << 20], workdir=tmp_path)
        before = len(tokens.requests)
        with RegistryClient(reg.host, auth=ALICE, chunk_size=512 << 10,
                            monolithic_max=256 << 10) as client:
            started = time.monotonic()
            assert push(ref, store=store, client=client, progress=Outcomes(delay_per_mib=1.5)) == desc.digest
            assert time.monotonic() - started > 4  # several token lifetimes
        push_tokens = [r for r in tokens.requests[before:] if r.scopes == ("repository:team/a:pull,push",)]
        assert len(push_tokens) >= 2
        writes = reg.requests("PATCH", "/v2/team/a/") + reg.requests("PUT", "/v2/team/a/")
        assert len(writes) >= 7 and not [w for w in writes if '" 401 ' in w]  # refreshed before, not after
        assert pull(ref, store=Store(tmp_path / "back"), auth=ALICE).digest == desc.digest
    finally:
        reg.stop()
        reg.extra["tokens"].stop()


@pytest.mark.skopeo
def test_skopeo_reads_what_we_pushed_with_the_same_saved_credentials(token_registry, imgbuild_home, capsys,
                                                                     monkeypatch, tmp_path):
    assert _login(token_registry.host, "alice", "s3cret-pw", monkeypatch) == 0
    ref = f"{token_registry.host}/team/a:v1"
    desc = make_random_image(open_store(home()), ref, [50_000, 1000])
    assert run(["push", ref]) == 0
    authfile = str(imgbuild_home / "auth.json")
    common = ["--authfile", authfile, "--tls-verify=false"]
    raw = EXEC.run(["skopeo", "inspect", "--raw", *common, f"docker://{ref}"]).stdout
    assert json.loads(raw)["config"]["digest"] == str(open_store(home()).image(ref).manifest.config.digest)
    layout = tmp_path / "layout"
    EXEC.run(["skopeo", "copy", "-q", "--src-authfile", authfile, "--src-tls-verify=false",
               "--preserve-digests", f"docker://{ref}", f"oci:{layout}:x"])
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == desc.digest
    empty = tmp_path / "empty-auth.json"
    empty.write_text('{"auths": {}}')
    anon = EXEC.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--authfile", str(empty),
                      f"docker://{ref}"], check=False)
    assert not anon.ok  # the credentials, not an open registry, let skopeo in
