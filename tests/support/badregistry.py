"""A registry that misbehaves on purpose, on 127.0.0.1, for deadline and hostile-server tests.

``BadRegistry(mode).start()`` serves ``/v2/`` and one image ``bad/app:1`` (a small
valid manifest, config and layer) and misbehaves as ``mode`` says:

* ``ok``: behaves (a control case);
* ``redirect-file``: the layer GET redirects to ``file:///etc/passwd``;
* ``redirect-loop``: the manifest GET redirects to itself;
* ``huge-manifest``: the manifest is 50 MB of JSON padding (4 MB is the spec's limit);
* ``drip``: the manifest body is sent one byte every ``drip_every`` seconds;
* ``drip-blob``: the layer is sent that way (the manifest and config are fine);
* ``silent``: the manifest request is accepted and never answered;
* ``always-503``: every manifest GET answers 503;
* ``wrong-blob``: the layer's bytes do not hash to its digest;
* ``short-blob``: the layer announces its full length and the connection closes halfway.

It stops with :meth:`stop` (or ``with``); ``requests`` counts what it was asked.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["BadRegistry", "MODES"]

MODES = ("ok", "redirect-file", "redirect-loop", "huge-manifest", "drip", "drip-blob", "silent", "always-503",
         "wrong-blob", "short-blob")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _image() -> tuple[bytes, bytes, bytes, bytes]:
    """(manifest, config, layer blob, layer tar) of a one-file image."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("hello.txt")
        data = b"hello from a bad registry\n" * 100
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    tar = buf.getvalue()
    layer = gzip.compress(tar, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [_digest(tar)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _digest(layer),
                    "size": len(layer)}],
    }).encode()
    return manifest, config, layer, tar


class BadRegistry:
    """A threaded HTTP server that serves ``bad/app:1`` and misbehaves as ``mode`` says."""

    def __init__(self, mode: str, *, drip_every: float = 20.0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: {', '.join(MODES)}")
        self.mode, self.drip_every = mode, drip_every
        self.manifest, self.config, self.layer, self.tar = _image()
        self.requests: list[str] = []
        self._stop = threading.Event()

    @property
    def ref(self) -> str:
        """The reference of the one image it serves."""
        return f"{self.host}/bad/app:1"

    def start(self) -> "BadRegistry":
        """Listen on a free 127.0.0.1 port and serve in a daemon thread."""
        self._srv = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._srv.daemon_threads = True
        self.host = f"127.0.0.1:{self._srv.server_address[1]}"
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving (a silent or dripping handler is released too)."""
        self._stop.set()
        self._srv.shutdown()
        self._srv.server_close()

    def __enter__(self) -> "BadRegistry":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def blob(self, digest: str) -> bytes | None:
        """The bytes served for ``digest`` (None if unknown)."""
        return {_digest(self.config): self.config, _digest(self.layer): self.layer}.get(digest)

    def manifest_body(self) -> bytes:
        """The manifest as served (padded far past 4 MB in ``huge-manifest`` mode)."""
        if self.mode != "huge-manifest":
            return self.manifest
        doc = json.loads(self.manifest)
        doc["annotations"] = {"padding": "x" * (50 << 20)}
        return json.dumps(doc).encode()


class _QuietServer(ThreadingHTTPServer):
    """Says nothing when a client hangs up on a misbehaving answer (that is the point)."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def _handler(reg: BadRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def handle(self) -> None:
            if self.connection.recv(1, socket.MSG_PEEK) in (b"", b"\x16"):
                return  # a TLS hello to this plain-HTTP server: hang up, as a real one answers at once
            super().handle()

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            reg.requests.append(f"{self.command} {self.path}")
            if self.path == "/v2/":
                return self._send(200, b"{}", {"Content-Type": "application/json"})
            if self.path.startswith("/v2/bad/app/manifests/"):
                return self._manifest()
            if self.path.startswith("/v2/bad/app/blobs/"):
                return self._blob(self.path.rsplit("/", 1)[-1])
            self._send(404)

        def _manifest(self) -> None:
            mode = reg.mode
            if mode == "redirect-loop":
                return self._send(302, headers={"Location": self.path})
            if mode == "always-503":
                return self._send(503, headers={"Retry-After": "0"})
            if mode == "silent":
                reg._stop.wait(600)
                return
            body = reg.manifest_body()
            headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                       "Docker-Content-Digest": _digest(body)}
            if mode != "drip":
                return self._send(200, body, headers)
            self._drip(body, headers)

        def _drip(self, body: bytes, headers: dict) -> None:
            self.send_response(200)
            for k, v in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(k, v)
            self.end_headers()
            for i in range(len(body)):
                if reg._stop.wait(reg.drip_every if i else 0):
                    return
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()

        def _blob(self, digest: str) -> None:
            data = reg.blob(digest)
            if data is None:
                return self._send(404)
            if reg.mode == "redirect-file" and data is reg.layer:
                return self._send(307, headers={"Location": "file:///etc/passwd"})
            if reg.mode == "drip-blob" and data is reg.layer:
                return self._drip(data, {"Content-Type": "application/octet-stream"})
            if reg.mode == "wrong-blob" and data is reg.layer:
                data = bytes(len(data))
            if reg.mode == "short-blob" and data is reg.layer:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(200, data, {"Content-Type": "application/octet-stream"})

    return Handler

