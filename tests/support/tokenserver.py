"""A small Docker token server on 127.0.0.1 for bearer-token registry tests.

It implements the token endpoint of the distribution auth spec (``docs/spec/auth/token.md``
and ``jwt.md``): ``GET /token?service=S&scope=repository:NAME:pull,push`` (the ``scope``
parameter may repeat, one scope each) with optional Basic credentials answers
``{"token": JWT, "access_token": JWT, "expires_in": N, "issued_at": ...}``. A wrong
password is a 401; anonymous requests get what the anonymous policy allows. The
token grants, per requested scope, only the actions the user's patterns allow
(``fnmatch`` on the repository name, plus the anonymous grants) — never more than
asked. Scopes are parsed like distribution's reference token server (``type:name:actions``
split in three), so a space-joined list in one parameter does not grant its later entries.

JWTs are ES256 signed with a fresh P-256 key; the header carries ``x5c`` with the
self-signed signing certificate, which is also the registry's ``rootcertbundle``
(``cert_path``). docker-registry 2.8 accepts a token for 60 s past its ``exp`` (clock
leeway), so with ``compensate_leeway`` the ``exp`` claim is set 60 s early: the token
then really stops working ``expires_in`` seconds after it was issued, which lets a
test cross an expiry in seconds. Every request is recorded in ``requests`` (user,
scopes asked, scopes granted; never the password). The server is threaded, bounded
(``max_requests``) and stopped with :meth:`stop` (or ``with``).
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

__all__ = ["TokenServer", "TokenRequest", "REGISTRY_LEEWAY"]

REGISTRY_LEEWAY = 60  # seconds docker-registry 2.8 adds to exp and subtracts from nbf

Policy = dict[str, tuple[str, ...]]  # repository pattern -> actions


@dataclass(frozen=True)
class TokenRequest:
    """One answered token request: who asked, for what, and what was granted (or the HTTP status)."""

    user: str | None
    scopes: tuple[str, ...]
    granted: tuple[str, ...]
    status: int


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """A token service for ``service`` whose users (name -> (password, policy)) get scoped ES256 JWTs."""

    workdir: Path
    users: dict[str, tuple[str, Policy]] = field(default_factory=dict)
    anonymous: Policy = field(default_factory=dict)
    service: str = "imgbuild-test-registry"
    issuer: str = "imgbuild-test-token-issuer"
    expires_in: int = 300
    compensate_leeway: bool = False
    max_requests: int = 10_000
    requests: list[TokenRequest] = field(default_factory=list)

    def start(self) -> "TokenServer":
        """Make the signing key and certificate, listen on a free 127.0.0.1 port, serve in a thread."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._key, cert_der = _make_signing_cert(self.workdir / "token-root.pem")
        self.cert_path = self.workdir / "token-root.pem"
        self._x5c = [base64.b64encode(cert_der).decode()]
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_ref": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def realm(self) -> str:
        """The token endpoint URL registries send clients to."""
        return f"http://{self.host}/token"

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> "TokenServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- policy and tokens ------------------------------------------------------------------------

    def grant(self, user: str | None, scope: str) -> str | None:
        """The part of one ``type:name:actions`` scope ``user`` may have, as a scope string, or None."""
        parts = scope.split(":", 2)  # like distribution's contrib/token-server: no space splitting
        if len(parts) != 3 or parts[0] != "repository":
            return None
        _, name, actions = parts
        policies = [self.anonymous] + ([self.users[user][1]] if user in self.users else [])
        allowed = {a for pol in policies for pat, acts in pol.items() if fnmatch.fnmatchcase(name, pat) for a in acts}
        wanted = [a for a in actions.split(",") if a in allowed or ("*" in allowed and a)]
        return f"repository:{name}:{','.join(wanted)}" if wanted else None

    def issue(self, user: str | None, granted: list[str]) -> dict:
        """A signed token answer granting ``granted`` scopes to ``user``."""
        now = int(time.time())
        exp = now + self.expires_in - (REGISTRY_LEEWAY if self.compensate_leeway else 0)
        access = []
        for scope in granted:
            kind, name, actions = scope.split(":", 2)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service, "exp": exp, "nbf": now - 1,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        token = self._sign({"typ": "JWT", "alg": "ES256", "x5c": self._x5c}, claims)
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).isoformat()
        return {"token": token, "access_token": token, "expires_in": self.expires_in, "issued_at": issued}

    def _sign(self, header: dict, claims: dict) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def _record(self, req: TokenRequest) -> bool:
        with self._lock:
            if len(self.requests) >= self.max_requests:
                return False
            self.requests.append(req)
            return True


def _make_signing_cert(path: Path):
    """A P-256 key and a self-signed CA certificate for it (PEM written to ``path``); returns (key, DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imgbuild-test-token-signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert.public_bytes(serialization.Encoding.DER)


class _Handler(BaseHTTPRequestHandler):
    """GET /token only; everything else is a 404."""

    server_ref: TokenServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet: tests read .requests instead
        return None

    def _reply(self, status: int, body: dict, extra: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server_ref
        url = urlsplit(self.path)
        if url.path != "/token":
            return self._reply(404, {"details": "not found"})
        query = parse_qs(url.query)
        scopes = tuple(query.get("scope", []))
        user = self._user()
        if user is False:
            srv._record(TokenRequest(None, scopes, (), 401))
            return self._reply(401, {"details": "incorrect username or password"},
                               {"WWW-Authenticate": 'Basic realm="imgbuild-test-token"'})
        if query.get("service", [""])[0] != srv.service:
            srv._record(TokenRequest(user, scopes, (), 400))
            return self._reply(400, {"details": "unknown service"})
        granted = [g for g in (srv.grant(user, s) for s in scopes) if g]
        if not srv._record(TokenRequest(user, scopes, tuple(granted), 200)):
            return self._reply(429, {"details": "token server request limit reached"})
        self._reply(200, srv.issue(user, granted))

    def _user(self) -> str | None | bool:
        """The authenticated user, None if anonymous, False if the credentials are wrong."""
        header = self.headers.get("Authorization", "")
        if not header:
            return None
        kind, _, value = header.partition(" ")
        if kind.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        entry = self.server_ref.users.get(user)
        return user if entry is not None and entry[0] == password else False
