"""Registry credentials: where they are kept, how they are found, how a 401 challenge is answered.

Credentials live in the home's ``auth.json`` (:attr:`imgbuild.home.Home.auth_file`, 0600, the
``~/.docker/config.json`` format: ``{"auths": {"host": {"auth": base64(user:password)}}}``),
whose path the caller passes in (:meth:`ConfigAuth.for_home`). Existing docker and
podman credentials are read too, in this order after ours: ``$REGISTRY_AUTH_FILE``,
``${XDG_RUNTIME_DIR}/containers/auth.json``, ``$DOCKER_CONFIG/config.json`` (default
``~/.docker/config.json``), including their ``credHelpers``/``credsStore`` helpers.

What oras-py does and does not do here: its challenge parser
(``oras.auth.utils.parse_auth_header``) is used as it is, for bearer challenges (importing
``oras.auth`` takes ~0.2 s, so a Basic login does not: its header is base64 of
``user:password``). Its credential loading is not: it only reads ``~/.docker/config.json``, keeps one
``credsStore`` across files and runs helpers with ``subprocess`` directly (we run them
through the :class:`~imgbuild.engine.exec.Executor` the caller passes in). Nor is its token request (``TokenAuth.request_token``): it keeps one
token for every scope, sends a space-joined scope list as one ``scope`` parameter (a
spec-following token service then grants only the first scope, which broke cross-repo
mounts), ignores ``expires_in`` and does not understand a ``Basic`` challenge, which is
what an htpasswd docker-registry sends. :class:`Authenticator` therefore requests
tokens itself, one ``scope`` parameter per scope, caches one per scope key, refreshes
them before they expire, and answers ``Basic`` challenges too.

Passwords are never logged or put in an error message; :class:`Credentials` hides the
password from ``repr``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Protocol
from urllib.parse import urlencode

from imgbuild.fsutil import atomic_write
from imgbuild.errors import AuthError, InputError, StoreError

if TYPE_CHECKING:
    from imgbuild.engine.exec import Executor
    from imgbuild.home import Home
    from imgbuild.oci._http import Transport

__all__ = [
    "Credentials", "AuthProvider", "StaticAuth", "ConfigAuth", "Authenticator",
    "split_scopes", "auth_files", "save_credentials", "remove_credentials", "host_keys", "parse_user",
    "registry_host",
]

log = logging.getLogger(__name__)

_DEFAULT_TOKEN_LIFETIME = 60  # seconds, when the token service does not say (distribution token spec)


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or identity token) for one registry; the password never shows in repr."""

    username: str
    password: str = field(repr=False)

    def basic(self) -> str:
        """The base64 ``user:password`` of a Basic Authorization header."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    @classmethod
    def from_basic(cls, encoded: str) -> "Credentials | None":
        """Decode a config file's ``auth`` field; None if it is not base64 ``user:password``."""
        try:
            user, sep, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return cls(user, password) if sep and user else None


class AuthProvider(Protocol):
    """Anything that knows the credentials for a registry host (or has none)."""

    def credentials(self, registry: str) -> Credentials | None:
        """The credentials for ``registry`` (``host[:port]``), or None."""


@dataclass(frozen=True)
class StaticAuth:
    """Fixed credentials for every registry asked about (login checks, tests)."""

    creds: Credentials | None

    def credentials(self, registry: str) -> Credentials | None:
        """Always the same credentials."""
        return self.creds


def host_keys(registry: str) -> list[str]:
    """The keys a config file may store ``registry`` under (scheme prefixes, docker.io aliases, localhost)."""
    from oras.utils import iter_localhosts

    names = list(iter_localhosts(registry))
    if registry == "docker.io":
        names += ["index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"]
    keys = []
    for n in names:
        keys += [n, f"https://{n}", f"http://{n}", f"https://{n}/v1/", f"https://{n}/v2/"]
    return keys


def auth_files(home: Home | None = None) -> list[Path]:
    """The credential files consulted: ``home``'s auth file first (if a home is given), then podman's and docker's."""
    files = [home.auth_file] if home is not None else []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    docker_dir = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    files.append(Path(docker_dir) / "config.json")
    return files


def _read_config(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.debug("ignoring unreadable credential file %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _from_helper(helper: str, registry: str, executor: Executor | None) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` through ``executor`` (None: helpers cannot be run, none asked)."""
    from imgbuild.errors import CommandFailed, ToolMissing

    if executor is None:
        log.debug("credential helper %s not asked: no executor was given to run it", helper)
        return None
    try:
        result = executor.run([f"docker-credential-{helper}", "get"], input=registry, check=False, timeout=30)
    except (ToolMissing, CommandFailed):
        log.debug("credential helper %s is not usable", helper)
        return None
    if not result.ok:
        return None
    try:
        payload = json.loads(result.stdout)
        user, secret = payload["Username"], payload["Secret"]
    except (ValueError, KeyError, TypeError):
        return None
    return Credentials(user, secret) if user and secret else None


@dataclass(frozen=True)
class ConfigAuth:
    """Credentials from config files (default: podman's and docker's), helpers run through ``executor``.

    Without an executor, ``credHelpers``/``credsStore`` helpers are not asked (as when a helper is
    not installed); :meth:`for_home` is what imgbuild itself uses.
    """

    files: tuple[Path, ...] | None = None
    executor: Executor | None = field(default=None, compare=False)

    @classmethod
    def for_home(cls, home: Home | None, executor: Executor | None) -> "ConfigAuth":
        """The files of :func:`auth_files` for ``home`` (ours first), helpers run through ``executor``."""
        return cls(tuple(auth_files(home)), executor)

    def credentials(self, registry: str) -> Credentials | None:
        """The first credentials found for ``registry``: inline ``auth``, then ``credHelpers``, then ``credsStore``."""
        for path in self.files if self.files is not None else auth_files():
            found = self._from_config(_read_config(path), registry)
            if found:
                return found
        return None

    def _from_config(self, cfg: Mapping, registry: str) -> Credentials | None:
        auths = cfg.get("auths") or {}
        for key in host_keys(registry):
            entry = auths.get(key)
            if isinstance(entry, dict):
                if entry.get("auth"):
                    creds = Credentials.from_basic(entry["auth"])
                    if creds:
                        return creds
                if entry.get("username") and entry.get("password"):
                    return Credentials(entry["username"], entry["password"])
        helper = (cfg.get("credHelpers") or {}).get(registry) or cfg.get("credsStore")
        return _from_helper(helper, registry, self.executor) if helper else None


def save_credentials(registry: str, creds: Credentials, path: Path) -> Path:
    """Store ``creds`` for ``registry`` in the auth file ``path`` (atomic, 0600), keeping other entries."""
    cfg = _read_config(path)
    cfg.setdefault("auths", {})[registry] = {"auth": creds.basic()}
    _write_config(path, cfg)
    return path


def remove_credentials(registry: str, path: Path) -> bool:
    """Remove ``registry`` from the auth file ``path``; False if it had no entry."""
    cfg = _read_config(path)
    auths = cfg.get("auths") or {}
    keys = [k for k in host_keys(registry) if k in auths]
    for k in keys:
        del auths[k]
    if keys:
        _write_config(path, cfg)
    return bool(keys)


def _write_config(path: Path, cfg: dict) -> None:
    """Write ``cfg`` atomically with mode 0600."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, json.dumps(cfg, indent=2).encode(), mode=0o600)
    except OSError as exc:
        raise StoreError(f"cannot write credentials: {exc.strerror}", str(path)) from exc


def split_scopes(*texts: str | None) -> list[str]:
    """The distinct scopes in space-separated scope lists, in first-seen order."""
    out: list[str] = []
    for text in texts:
        for item in (text or "").split():
            if item not in out:
                out.append(item)
    return out


@dataclass(frozen=True)
class _Token:
    """A cached Authorization header and the monotonic time after which it is refreshed before use."""

    header: dict[str, str]
    refresh_at: float

    def fresh(self) -> bool:
        """True while the token may still be sent."""
        return time.monotonic() < self.refresh_at


@dataclass(frozen=True)
class _Realm:
    """Where a registry's bearer tokens come from (from its challenge)."""

    url: str
    service: str | None


class Authenticator:
    """Answers a registry's 401 challenges (Basic or Bearer) and keeps one fresh Authorization header per scope.

    A scope key may hold several space-separated scopes (a mount needs push on the
    target and pull on the source); each goes to the token service as its own
    ``scope`` parameter, as the distribution token spec asks. Once a bearer challenge
    told where tokens come from, a token for a new scope, or one about to expire, is
    fetched before the request instead of after a 401, so a long upload never sends
    a chunk with an expired token.
    """

    def __init__(self, registry: str, provider: AuthProvider | None, transport: Transport | None) -> None:
        self.registry = registry
        self.provider = provider if provider is not None else ConfigAuth()
        self.transport = transport
        self._tokens: dict[str, _Token] = {}
        self._basic: dict[str, str] | None = None
        self._realm: _Realm | None = None
        self._creds: Credentials | None = None
        self._creds_loaded = False
        self._lock = threading.Lock()
        self._token_lock = threading.RLock()  # one token request at a time: parallel blobs share a token

    def credentials(self) -> Credentials | None:
        """The credentials for this registry (looked up once)."""
        with self._lock:
            if not self._creds_loaded:
                self._creds = self.provider.credentials(self.registry)
                self._creds_loaded = True
            return self._creds

    def header(self, scope: str) -> dict[str, str]:
        """The Authorization header to send for ``scope``: a fresh token (fetched now if due), Basic, or {}."""
        tok = self._tokens.get(scope)
        if tok is not None and tok.fresh():
            return dict(tok.header)
        if self._basic is not None:
            return dict(self._basic)
        if self._realm is None:
            return {}
        with self._token_lock:
            tok = self._tokens.get(scope)
            if tok is None or not tok.fresh():
                tok = self._fetch(self._realm, split_scopes(scope), scope)
            return dict(tok.header)

    def forget(self, scope: str) -> None:
        """Drop the cached header for ``scope`` so the next challenge fetches a fresh token."""
        self._tokens.pop(scope, None)
        self._basic = None

    def answer(self, challenge: str, scope: str, scheme: str, failed: str | None = None) -> dict[str, str]:
        """Compute (and cache) the Authorization header answering ``challenge``; AuthError if impossible.

        ``failed`` is the Authorization value the refused request carried: if another
        thread has meanwhile cached a different fresh token for ``scope``, that one is used.
        """
        kind = challenge.strip().split(" ", 1)[0].lower()
        if kind == "basic":
            creds = self.credentials()
            if creds is None:
                raise AuthError(f"authentication required; run `imgbuild login {self.registry}`",
                                where=self.registry, status=401)
            self._basic = {"Authorization": f"Basic {creds.basic()}"}  # the same for every scope
            return dict(self._basic)
        if kind != "bearer":
            raise AuthError(f"unsupported authentication scheme {kind!r}", where=self.registry, status=401)
        from oras.auth.utils import parse_auth_header

        parsed = parse_auth_header(challenge)
        if not parsed.realm:
            raise AuthError("bearer challenge without a realm", where=self.registry, status=401)
        realm = parsed.realm if "://" in parsed.realm else f"{scheme}://{parsed.realm}"
        with self._token_lock:
            self._realm = _Realm(realm, parsed.service)
            tok = self._tokens.get(scope)
            if tok is not None and tok.fresh() and tok.header.get("Authorization") != failed:
                return dict(tok.header)
            return dict(self._fetch(self._realm, split_scopes(scope, parsed.scope), scope).header)

    def _fetch(self, realm: _Realm, scopes: list[str], key: str) -> _Token:
        """Ask the token service for ``scopes`` (one ``scope`` parameter each) and cache the token under ``key``."""
        from imgbuild.oci._http import NetError, RedirectError

        if self.transport is None:
            raise AuthError(f"no connection to ask {realm.url} for a token", where=self.registry)
        creds = self.credentials()
        who = f"user {creds.username!r}" if creds else "anonymous access"
        params = ([("service", realm.service)] if realm.service else []) + [("scope", s) for s in scopes]
        url = realm.url + ("&" if "?" in realm.url else "?") + urlencode(params) if params else realm.url
        headers = {"Accept": "application/json", "User-Agent": "imgbuild"}
        if creds:
            headers["Authorization"] = f"Basic {creds.basic()}"
        started = time.monotonic()
        try:
            r = self.transport.request("GET", url, headers=headers, timeout=60)
        except (NetError, RedirectError) as exc:
            raise AuthError(f"token request to {realm.url} failed: {type(exc).__name__}",
                            where=self.registry) from exc
        with r:
            if r.status_code in (401, 403):
                raise AuthError(f"token service {realm.url} refused {who} for scope {' '.join(scopes)!r}",
                                where=self.registry, status=r.status_code)
            if r.status_code != 200:
                raise AuthError(f"token service {realm.url} answered HTTP {r.status_code}",
                                where=self.registry, status=r.status_code)
            try:
                data = r.json()
                token = data.get("token") or data.get("access_token")
                lifetime = float(data.get("expires_in") or _DEFAULT_TOKEN_LIFETIME)
            except (ValueError, TypeError, AttributeError) as exc:
                raise AuthError(f"token service {realm.url} sent no usable token", where=self.registry) from exc
        if not token or not isinstance(token, str):
            raise AuthError(f"token service {realm.url} sent no token for {who}", where=self.registry)
        lifetime = max(lifetime, 1.0)
        tok = _Token({"Authorization": f"Bearer {token}"}, started + lifetime - min(30.0, lifetime / 4))
        self._tokens[key] = tok
        log.debug("got a token for %s (%s), valid %ss", key, who, int(lifetime))
        return tok


def parse_user(value: str) -> str:
    """Validate a login user name (non-empty, no colon)."""
    if not value or ":" in value:
        raise InputError("user name must be non-empty and contain no ':'")
    return value


def registry_host(text: str) -> str:
    """A registry as the user typed it (``https://host:5000/``, ``index.docker.io``) to ``host[:port]``."""
    from imgbuild.reference import DEFAULT_REGISTRY

    host = text.strip()
    for prefix in ("https://", "http://"):
        host = host.removeprefix(prefix)
    host = host.split("/", 1)[0]
    if not host or any(c.isspace() for c in host):
        raise InputError(f"invalid registry {text!r}")
    return DEFAULT_REGISTRY if host in ("index.docker.io", "registry-1.docker.io") else host

