"""Fixtures for the whole suite: an isolated IMGBUILD_HOME, real registries, tool checks.

Tests that need an external tool are marked (``buildah``, ``registry``, ``skopeo``,
``root``, ``ssh``). A missing tool is a *failure*, never a skip: ``make test``
installs them all, so a missing one means the machine is not set up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.registry import start_registry
from tests.support.tokenserver import TokenServer

_TOOLS = {"buildah": "buildah", "registry": "docker-registry", "skopeo": "skopeo", "ssh": "sshd", "docker": "podman"}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail (not skip) a test whose marked tool or privilege is missing."""
    for marker, tool in _TOOLS.items():
        if item.get_closest_marker(marker) and not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin"):
            pytest.fail(f"{tool} is required by this test and is not installed (run `make test`)", pytrace=False)
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.fail("this test needs root", pytrace=False)


@pytest.fixture(autouse=True)
def imgbuild_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own empty IMGBUILD_HOME, no docker credentials of the user, and no mount left after it."""
    home = tmp_path_factory.mktemp("imgbuild-home")
    monkeypatch.setenv("IMGBUILD_HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / "docker-config"))
    auth_file = home / "containers-auth.json"  # buildah/skopeo refuse a REGISTRY_AUTH_FILE that is missing
    auth_file.write_text('{"auths": {}}')
    auth_file.chmod(0o600)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    monkeypatch.delenv("IMGBUILD_INSECURE_REGISTRIES", raising=False)
    yield home
    _unmount_below(home)


def _unmount_below(root: Path) -> None:
    """Lazily unmount whatever a test left mounted under ``root`` (deepest first), so no test leaks a mount."""
    from imgbuild.engine.exec import LocalExecutor
    from imgbuild.rootfs.records import mounted_points

    local = LocalExecutor()
    for point in sorted(mounted_points(), key=len, reverse=True):
        if point.startswith(f"{root}/"):
            local.run(["umount", "-l", point], check=False)


@pytest.fixture
def podman_service(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """A private podman Docker-API service (mark tests ``docker``), ``DOCKER_HOST`` pointing at it."""
    from tests.support.podman import start_podman

    service = start_podman(tmp_path_factory.mktemp("podman"))
    monkeypatch.setenv("DOCKER_HOST", service.docker_host)
    yield service
    service.stop()


@pytest.fixture
def registry(tmp_path: Path):
    """A plain-HTTP docker-registry on 127.0.0.1 with its own storage directory."""
    reg = start_registry(tmp_path / "registry")
    yield reg
    reg.stop()


@pytest.fixture
def auth_registry(tmp_path: Path):
    """A docker-registry with htpasswd basic auth (user ``alice``, password ``s3cret-pw``)."""
    reg = start_registry(tmp_path / "auth-registry", auth=("alice", "s3cret-pw"))
    yield reg
    reg.stop()


@pytest.fixture
def tls_registry(tmp_path: Path):
    """A docker-registry over HTTPS with a self-signed certificate (``reg.ca_cert``)."""
    reg = start_registry(tmp_path / "tls-registry", tls=True)
    yield reg
    reg.stop()


TOKEN_USERS = {
    "alice": ("s3cret-pw", {"team/*": ("pull", "push"), "public/*": ("pull", "push")}),
    "bob": ("bob-pw-77", {"team/*": ("pull",)}),
    "carol": ("carol-pw-3", {"drop/*": ("pull", "push")}),
}
TOKEN_ANONYMOUS = {"public/*": ("pull",)}


def start_token_registry(workdir: Path, **token_kw):
    """A docker-registry with bearer-token auth from a :class:`TokenServer` (``reg.extra["tokens"]``)."""
    tokens = TokenServer(workdir / "tokens", users=dict(TOKEN_USERS), anonymous=dict(TOKEN_ANONYMOUS),
                         **token_kw).start()
    try:
        reg = start_registry(workdir / "registry", token=tokens, access_log=True)
    except BaseException:
        tokens.stop()
        raise
    reg.extra["tokens"] = tokens
    return reg


@pytest.fixture
def token_registry(tmp_path: Path):
    """A docker-registry with bearer-token auth (see ``TOKEN_USERS``/``TOKEN_ANONYMOUS``), access log on.

    alice/s3cret-pw may push+pull ``team/*`` and ``public/*``, bob/bob-pw-77 only pull
    ``team/*``, carol/carol-pw-3 may push+pull ``drop/*``, anyone may pull ``public/*``;
    the token server is ``reg.extra["tokens"]``.
    """
    reg = start_token_registry(tmp_path / "token-registry")
    yield reg
    reg.stop()
    reg.extra["tokens"].stop()


@pytest.fixture(scope="session")
def sandbox():
    """Four local sandbox hosts for the whole session (mark tests ``root``): ``imgbtest-1``..``-4`` on a private subnet.

    Whatever a crashed run left under that name is removed first, and the sandbox is downed at session end;
    ``tests.support.sandbox.sandbox_slot`` makes another for a test that needs its own.
    """
    from tests.support.sandbox import sandbox_slot

    with sandbox_slot("imgbtest", 4) as sb:
        yield sb
