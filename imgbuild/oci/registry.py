"""The registry client: the one interface the rest of imgbuild uses to talk to an OCI registry.

:class:`RegistryClient` speaks the distribution API over pooled connections (:mod:`imgbuild.oci._http`):
manifests are fetched and pushed with their exact bytes and media type (digests checked),
blobs are streamed from disk and as streams (never read whole), resumed after a dropped
connection (``Range`` on download, the upload URL's ``Range`` on a chunked upload),
skipped when the registry already has them and mounted across repositories. Requests
are retried with backoff on 429/5xx and connection resets, a bounded number of times
within a time budget (``RETRY_BUDGET_S``); a registry that sends nothing for ``STALL_S``
has stalled, a manifest is at most ``MANIFEST_MAX`` bytes and must arrive within
``STALL_S``, and a redirect off http(s) or a redirect loop is an error, not followed.
Authentication (challenges, bearer tokens, credential files) is in :mod:`imgbuild.oci.auth`,
which uses oras-py for token negotiation; oras-py's own ``Registry`` is not used for data:
it reads whole blobs into memory, keeps one token for all scopes, does not resume and
raises bare ``ValueError``s. The upload half (PUT/PATCH, resume, mount) lives in
:mod:`imgbuild.oci._upload` and the download half (a resumable blob stream) in
:mod:`imgbuild.oci._download`; the client's blob methods delegate to them. Images in a
registry (read as :class:`~imgbuild.oci.image.Image`, written through a sink) are in
:mod:`imgbuild.oci.remote`, the copy and the ``pull``/``push`` verbs in
:mod:`imgbuild.oci.transfer`; both build on this module (never the other way round).

Transport security, like skopeo/podman: https with certificates verified against the system's CAs
(``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured) plus ``ca_file`` (a CA file, or a directory of ``*.crt``
as in containers' certs.d; default ``$REGISTRY_CA``); ``https_proxy``/``http_proxy``/``no_proxy`` apply.
``tls_verify=False`` or a host listed in ``$IMGBUILD_INSECURE_REGISTRIES`` (comma or space
separated) skips verification and may fall back to plain http. Loopback registries
(``localhost``, 127.0.0.0/8, ``::1``) may use plain http too, as docker allows, but a
certificate they do present is still verified: a self-signed loopback registry is
refused unless its CA is given or verification is turned off.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable
from urllib.parse import urlsplit

from imgbuild.errors import AuthError, DigestMismatch, ImageNotFound, RegistryError
from imgbuild.oci import _upload
from imgbuild.oci._download import BlobStream
from imgbuild.oci._http import NetError, RedirectError, Response, Timeout, TLSError, Transport, system_context
from imgbuild.oci._upload import RETRY_STATUS as _RETRY_STATUS, Section as _Section
from imgbuild.oci.auth import AuthProvider, Authenticator
from imgbuild.oci.image import OnBytes
from imgbuild.oci.model import (
    INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, Descriptor, Digest, MediaType, parse_document,
)
from imgbuild.reference import Reference

if TYPE_CHECKING:
    import ssl

__all__ = [
    "RegistryClient", "insecure_hosts", "is_loopback", "MANIFEST_ACCEPT",
]

log = logging.getLogger(__name__)

MANIFEST_ACCEPT = ", ".join([MediaType.OCI_MANIFEST, MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST,
                             MediaType.DOCKER_LIST])
_READ = 1 << 20           # socket write block for uploads
STALL_S = 30.0            # a registry that sends nothing for this long has stalled: retry
RETRY_BUDGET_S = 60.0     # one request stops retrying connection failures after this long
MANIFEST_MAX = 4 << 20    # the distribution spec's limit on a manifest or index
_AGENT = {"User-Agent": "imgbuild"}


def insecure_hosts() -> frozenset[str]:
    """The hosts named in ``$IMGBUILD_INSECURE_REGISTRIES`` (comma or space separated)."""
    raw = os.environ.get("IMGBUILD_INSECURE_REGISTRIES", "")
    return frozenset(h for h in raw.replace(",", " ").split() if h)


def _host_port(registry: str) -> tuple[str, str]:
    """``host:port`` (or ``[v6]:port``) as (host, port), the host unbracketed; port "" when none is named."""
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        return host, rest.removeprefix(":")
    if registry.count(":") == 1:
        host, _, port = registry.partition(":")
        return host, port
    return registry, ""


def is_loopback(registry: str) -> bool:
    """True for ``localhost[:port]``, 127.0.0.0/8 and ``[::1]`` registries."""
    host = _host_port(registry)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ssl_context(ca: str | None) -> ssl.SSLContext | None:
    """A verifying context with the system CAs plus ``ca`` (a file, or a certs.d-style directory of ``*.crt``)."""
    if not ca:
        return None
    path = Path(ca)
    files = sorted(path.glob("*.crt")) if path.is_dir() else [path]
    if not files:
        raise RegistryError("no *.crt CA certificate in the directory", where=str(path))
    ctx = system_context()
    try:
        for f in files:
            ctx.load_verify_locations(cafile=str(f))
    except OSError as exc:  # ssl.SSLError is one
        raise RegistryError(f"cannot load CA certificates: {exc}", where=str(path)) from exc
    return ctx


class RegistryClient:
    """A client for one registry host: manifests, blobs, uploads; thread-safe for parallel blob moves."""

    def __init__(self, registry: str, *, tls_verify: bool | None = None, ca_file: str | None = None,
                 auth: AuthProvider | None = None, jobs: int = 4,
                 retries: int = 5, backoff: float = 0.25, timeout: float = STALL_S,
                 retry_budget: float = RETRY_BUDGET_S,
                 chunk_size: int = 64 << 20, monolithic_max: int = 32 << 20) -> None:
        self.registry = registry
        self.jobs = max(1, int(jobs))
        self.retries, self.backoff, self.timeout, self.retry_budget = retries, backoff, timeout, retry_budget
        self.chunk_size, self.monolithic_max = chunk_size, monolithic_max
        self.insecure = tls_verify is False or registry in insecure_hosts()
        self.allow_http = self.insecure or is_loopback(registry)
        ctx = None if self.insecure else _ssl_context(ca_file or os.environ.get("REGISTRY_CA"))
        self.verify: bool = not self.insecure
        self.transport = Transport(ssl_context=ctx, verify=self.verify, pool_size=self.jobs * 2 + 2, blocksize=_READ)
        self.auth = Authenticator(registry, auth, self.transport)
        self._base: str | None = None
        self._ping_lock = threading.Lock()

    # -- plumbing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close pooled connections."""
        self.transport.close()

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base(self) -> str:
        """``scheme://host``, decided on first use by :meth:`ping`."""
        if self._base is None:
            self.ping()
        assert self._base is not None
        return self._base

    def ping(self) -> None:
        """Find the scheme (https, or http where allowed) and check that ``/v2/`` answers (once per client)."""
        with self._ping_lock:  # parallel blob moves share one probe
            if self._base is None:
                self._ping()

    def _ping(self) -> None:
        # Where http is allowed and the port is named, plain http is asked first: a registry that answers it
        # needs no TLS (no ssl import, no CA bundle), and a TLS server refuses the plain request at once (Go's
        # and nginx answer 400, others close), so https comes next. Without a port, http and https are two
        # ports: https first, as docker tries them.
        if not self.allow_http:
            schemes: tuple[str, ...] = ("https",)
        else:
            schemes = ("http", "https") if _host_port(self.registry)[1].isdigit() else ("https", "http")
        for scheme in schemes:
            url = f"{scheme}://{self.registry}/v2/"
            try:
                r = self._ping_get(url)
            except TLSError as exc:
                if exc.verify_failed:
                    raise RegistryError(
                        "TLS certificate not trusted; give its CA with --cert-dir or REGISTRY_CA, "
                        "or pass --tls-verify=false", where=self.registry) from exc
                if scheme == schemes[-1]:
                    raise RegistryError(f"TLS handshake failed: {exc}", where=self.registry) from exc
                continue
            except NetError as exc:
                if scheme == schemes[-1]:
                    raise RegistryError(f"cannot reach the registry over {'/'.join(schemes)}: {exc}",
                                        where=self.registry) from exc
                continue
            with r:
                if r.status_code in (200, 401, 403):
                    final = urlsplit(r.url)  # a TLS port may redirect plain http to itself over https (nginx's 497)
                    if final.netloc == self.registry and final.scheme in ("http", "https"):
                        scheme = final.scheme
                    self._base = f"{scheme}://{self.registry}"
                    log.debug("registry %s speaks %s", self.registry, scheme)
                    return
                # any other answer over http comes from an http server (one on a TLS port answers 400 at most)
                if scheme == schemes[-1] or (scheme == "http" and r.status_code != 400):
                    raise RegistryError(f"/v2/ answered HTTP {r.status_code}; not a registry?",
                                        where=self.registry, status=r.status_code)

    def _ping_get(self, url: str) -> Response:
        """GET ``url`` without auth, retrying 429/5xx answers a bounded number of times."""
        for attempt in range(self.retries + 1):
            r = self.transport.request("GET", url, headers=_AGENT, timeout=min(self.timeout, 30))
            if r.status_code not in _RETRY_STATUS or attempt == self.retries:
                return r
            r.close()
            self.wait_before_retry(attempt, r)
        raise AssertionError("unreachable")

    def check_login(self) -> None:
        """Authenticate against ``/v2/`` with the configured credentials; AuthError if refused."""
        r = self.request("GET", "/v2/", scope="")  # like docker login: a token for no scope
        with r:
            self.check_response(r, (200,), "login", self.registry)

    def _url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else self.base + path_or_url

    def wait_before_retry(self, attempt: int, response: Response | None = None) -> None:
        """Sleep before retry number ``attempt``: exponential backoff, or the response's Retry-After (at most 10 s)."""
        delay = self.backoff * (2 ** attempt)
        after = response.headers.get("Retry-After", "") if response is not None else ""
        if after.isdigit():
            delay = float(after)
        time.sleep(min(delay, 10.0))

    def request(self, method: str, path_or_url: str, *, scope: str, headers: dict | None = None,
                 data: object = None, stream: bool = False, retry_net: bool = True,
                 where: str | None = None) -> Response:
        """Send one request with auth, retrying 429/5xx and (if ``retry_net``) connection failures."""
        url = self._url(path_or_url)
        answered = False
        attempt = 0
        start = time.monotonic()
        while True:
            hdrs = {**_AGENT, **self.auth.header(scope), **(headers or {})}
            body = data() if callable(data) else data
            try:
                r = self.transport.request(method, url, headers=hdrs, body=body, stream=stream, timeout=self.timeout)
            except RedirectError as exc:
                raise RegistryError(f"the registry {exc}", where=where or self.registry, status=300) from exc
            except NetError as exc:
                if retry_net and attempt < self.retries and time.monotonic() - start < self.retry_budget:
                    log.debug("%s %s: %s, retrying", method, url, type(exc).__name__)
                    self.wait_before_retry(attempt)
                    attempt += 1
                    continue
                raise RegistryError(f"{method} failed after {attempt + 1} attempt(s): {self.net_failure(exc)}",
                                    where=where or self.registry) from exc
            if r.status_code in (401, 403):
                challenge = r.headers.get("WWW-Authenticate")
                r.close()
                if answered or not challenge:
                    raise self._auth_error(r.status_code, scope, where, challenge)
                self.auth.answer(challenge, scope, url.split(":", 1)[0], failed=hdrs.get("Authorization"))
                answered = True
                if isinstance(body, _Section) and body.sent:
                    raise RegistryError("re-authenticated part way through an upload", where=where or self.registry)
                continue
            if r.status_code in _RETRY_STATUS and attempt < self.retries and (retry_net or body is None):
                log.debug("%s %s: HTTP %s, retrying", method, url, r.status_code)
                r.close()
                self.wait_before_retry(attempt, r)
                attempt += 1
                continue
            return r

    def net_failure(self, exc: BaseException) -> str:
        """What a connection failure was, in words: a stall names how long the registry sent nothing."""
        if isinstance(exc, Timeout):
            return f"the registry sent nothing for {self.timeout:.0f} s"
        return f"connection lost ({exc})"

    def _auth_error(self, status: int, scope: str, where: str | None, challenge: str | None = None) -> AuthError:
        creds = self.auth.credentials()
        who = f"the credentials of user {creds.username!r}" if creds else "anonymous access"
        why = "not allowed: insufficient_scope" if 'error="insufficient_scope"' in (challenge or "") else ""
        what = f" for scope {scope}" if scope else ""
        return AuthError(f"registry {self.registry} refused {who}{what} (HTTP {status}"
                         f"{', ' + why if why else ''})", where=where or self.registry, status=status)

    def check_response(self, r: Response, ok: tuple[int, ...], what: str, where: str) -> None:
        """Raise RegistryError (with the registry's error codes) unless the status is in ``ok``."""
        if r.status_code in ok:
            return
        detail = ""
        try:
            errs = r.json().get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errs if isinstance(e, dict))
        except (ValueError, AttributeError):
            pass
        raise RegistryError(f"{what}: HTTP {r.status_code}" + (f" ({detail})" if detail else ""),
                            where=where, status=r.status_code)

    @staticmethod
    def scope(repository: str, push: bool = False) -> str:
        """The token scope for pulling (or pushing to) ``repository``."""
        return f"repository:{repository}:{'pull,push' if push else 'pull'}"

    # -- manifests ----------------------------------------------------------------------------

    def get_manifest(self, ref: Reference) -> tuple[bytes, str]:
        """The exact bytes and media type of ``ref``'s manifest or index (digest checked)."""
        where = ref.normalized
        r = self.request("GET", f"/v2/{ref.repository}/manifests/{ref.reference}", scope=self.scope(ref.repository),
                          headers={"Accept": MANIFEST_ACCEPT}, stream=True, where=where)
        with r:
            if r.status_code == 404:
                raise ImageNotFound("no such image in the registry", where=where)
            self.check_response(r, (200,), "fetching the manifest", where)
            raw = self._manifest_body(r, where)
            media_type = (r.headers.get("Content-Type") or "").split(";")[0].strip()
        expected = ref.digest or r.headers.get("Docker-Content-Digest")
        if expected and expected.startswith(("sha256:", "sha512:")):
            Digest(expected).verify(raw, where)
        if media_type not in MANIFEST_MEDIA_TYPES | INDEX_MEDIA_TYPES:
            doc = parse_document(raw)
            media_type = doc.media_type
        return raw, media_type

    def _manifest_body(self, r: Response, where: str) -> bytes:
        """A manifest response's body: at most MANIFEST_MAX bytes, all of it within ``timeout`` seconds."""
        length = r.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MANIFEST_MAX:
            raise RegistryError(f"the manifest is {int(length):,} bytes; the limit is {MANIFEST_MAX:,}", where=where)
        body, start = bytearray(), time.monotonic()
        try:
            while piece := r.read1(64 << 10):
                body += piece
                if len(body) > MANIFEST_MAX:
                    raise RegistryError(f"the manifest is over the limit of {MANIFEST_MAX:,} bytes", where=where)
                if time.monotonic() - start > self.timeout:
                    raise RegistryError(f"the registry sent {len(body):,} bytes of the manifest in "
                                        f"{self.timeout:.0f} s; giving up", where=where)
        except NetError as exc:
            raise RegistryError(f"fetching the manifest failed: {self.net_failure(exc)}", where=where) from exc
        return bytes(body)

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        """The descriptor of ``ref``'s manifest, or None if the registry does not have it."""
        where = ref.normalized
        r = self.request("HEAD", f"/v2/{ref.repository}/manifests/{ref.reference}",
                          scope=self.scope(ref.repository), headers={"Accept": MANIFEST_ACCEPT}, where=where)
        with r:
            if r.status_code == 404:
                return None
            self.check_response(r, (200,), "checking the manifest", where)
            digest = r.headers.get("Docker-Content-Digest")
            size = r.headers.get("Content-Length")
            media_type = (r.headers.get("Content-Type") or "").split(";")[0].strip()
        if not digest or not size:
            raw, media_type = self.get_manifest(ref)
            return Descriptor.for_bytes(media_type, raw)
        return Descriptor(media_type, Digest(digest), int(size))

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> Digest:
        """Push a manifest's exact bytes under a tag or digest; returns the digest the registry confirmed."""
        where = f"{self.registry}/{repository}:{reference}"
        r = self.request("PUT", f"/v2/{repository}/manifests/{reference}", scope=self.scope(repository, True),
                          headers={"Content-Type": media_type}, data=raw, where=where)
        with r:
            self.check_response(r, (200, 201), "pushing the manifest", where)
            returned = r.headers.get("Docker-Content-Digest")
        ours = Digest.of(raw)
        if returned and returned != ours:
            raise DigestMismatch(ours, returned, where)
        return ours

    # -- blobs ----------------------------------------------------------------------------------

    def has_blob(self, repository: str, digest: str) -> bool:
        """True if ``repository`` already has the blob."""
        where = f"{self.registry}/{repository}@{digest}"
        r = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope=self.scope(repository), where=where)
        with r:
            if r.status_code == 404:
                return False
            self.check_response(r, (200,), "checking a blob", where)
            return True

    def open_blob(self, repository: str, desc: Descriptor) -> BinaryIO:
        """The blob as a stream that resumes with Range after a dropped connection (see :mod:`._download`)."""
        return BlobStream(self, repository, desc)  # type: ignore[return-value]

    def mount_blob(self, repository: str, digest: str, source: str) -> str | None:
        """Mount ``digest`` from ``source`` into ``repository``; None if mounted, else an upload URL to use."""
        return _upload.mount_blob(self, repository, digest, source)

    def start_upload(self, repository: str) -> str:
        """Open an upload session; returns its URL."""
        return _upload.start_upload(self, repository)

    def push_blob(self, repository: str, desc: Descriptor, opener: Callable[[], BinaryIO], *,
                  mount_from: str | None = None, on_bytes: OnBytes | None = None, check_exists: bool = True) -> str:
        """Upload a blob unless present (``"exists"``; not asked with ``check_exists=False``); mount it
        (``"mounted"``) or stream it from ``opener()`` (``"pushed"``)."""
        return _upload.push_blob(self, repository, desc, opener, mount_from=mount_from, on_bytes=on_bytes,
                                 check_exists=check_exists)

    def upload_status(self, location: str, scope: str) -> tuple[str, int] | None:
        """Ask an upload URL how much it holds: (new location, next offset), or None if the session is gone."""
        return _upload.upload_status(self, location, scope)

