"""Images in a Docker daemon (or podman's Docker-compatible service) through the Docker Engine API.

``docker-daemon:REF`` names an image a daemon holds. Reading one streams the daemon's
image export (``GET /images/{name}/get``, a docker-archive tar) member by member into
a blob directory, hashing each member as it passes: a ``blobs/<alg>/<hex>`` member
must hash to its name, the config to the image ID its name carries, and each layer
(decompressed if it is compressed) to the diffID the config promises. The result is
a :class:`~imgbuild.oci.image.LayoutImage` (the read-only image every copy takes) with
the config bytes kept exactly (the same IMAGE ID) and a new OCI manifest. Exported
straight into the store (:func:`pull`) the blobs land in it as they stream, written
once; for any other destination :func:`open_image` spools them under a scratch
directory that is removed afterwards.

Writing to a daemon (:func:`push`) saves the store's image as a docker-archive into
scratch space, streams it to ``POST /images/load`` and tags the loaded image.

All of it goes through the ``docker`` Python package (docker-py, the ``docker``
extra), never a ``docker`` CLI; :func:`connect` takes the environment it reads
(``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``) as an argument.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from imgbuild.errors import DigestMismatch, ImageNotFound, InputError, RegistryError, ToolMissing
from imgbuild.oci._blobio import CHUNK, OpenWriter, atomic_blob
from imgbuild.oci._tarblobs import safe_name
from imgbuild.oci.image import BlobSource, Layout, LayoutImage, ReadStream
from imgbuild.oci.model import Descriptor, Digest, ImageConfig, Manifest, MediaType
from imgbuild.progress import NullProgress, Progress, item
from imgbuild.reference import Reference, parse_reference

if TYPE_CHECKING:
    from imgbuild.oci.store import Store

__all__ = ["TRANSPORT", "Daemon", "daemon_ref", "store_name", "connect", "export", "open_image", "pull", "push",
           "base_in_store"]

TRANSPORT = "docker-daemon:"
_DOC_MAX = 64 << 20  # manifest.json and configs are read whole; anything larger is refused
_HEX_NAME = re.compile(r"(?:blobs/sha256/|)([a-f0-9]{64})(?:\.json)?")
_ID = re.compile(r"sha256:[a-f0-9]{64}")


def daemon_ref(text: str) -> str | None:
    """The REF of ``docker-daemon:REF``, or None if ``text`` names no daemon image."""
    if not text.startswith(TRANSPORT):
        return None
    ref = text[len(TRANSPORT):]
    if not ref:
        raise InputError("docker-daemon: needs an image name or ID, e.g. docker-daemon:app:v1")
    return ref


@dataclass(frozen=True)
class Daemon:
    """A Docker Engine API endpoint: docker-py's low-level client and the address it talks to."""

    api: Any
    where: str


def connect(environ: Mapping[str, str], timeout: int = 600) -> Daemon:
    """A client for the daemon ``environ`` names (``DOCKER_HOST``..., default the local docker socket)."""
    try:
        import docker
    except ImportError as exc:
        raise ToolMissing("the docker Python package", "install imgbuild[docker]") from exc
    kwargs = docker.utils.kwargs_from_env(environment=dict(environ))
    where = kwargs.get("base_url") or "unix:///var/run/docker.sock"
    with _translated(where, None):
        return Daemon(docker.APIClient(version="auto", timeout=timeout, **kwargs), where)


@contextlib.contextmanager
def _translated(where: str, ref: str | None) -> Iterator[None]:
    """Turn docker-py and requests errors into imgbuild errors naming the daemon (and the image)."""
    import requests
    from docker import errors as derr

    try:
        yield
    except derr.NotFound as exc:
        raise ImageNotFound(f"no image {ref} in the docker daemon", where) from exc
    except derr.APIError as exc:
        raise RegistryError(f"the docker daemon refused: {exc.explanation or exc}", where,
                            exc.status_code) from exc
    except (derr.DockerException, requests.RequestException) as exc:
        raise RegistryError(f"cannot talk to the docker daemon: {exc}", where) from exc


class _Chunks(ReadStream):
    """A generator of byte chunks as an unseekable stream."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buf = chunks, b""

    def read(self, n: int | None = -1) -> bytes:
        """Up to ``n`` bytes from the current chunk (the next one when it is used up; b"" at the end)."""
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buf = chunk
        n = len(self._buf) if n is None or n < 0 else n
        data, self._buf = self._buf[:n], self._buf[n:]
        return data


class _Spool:
    """Where exported members go as blobs: an ``OpenWriter`` (digest computed as they stream) and its reads."""

    def __init__(self, open_writer: OpenWriter, blobs: BlobSource, where: str, progress: Progress) -> None:
        self.open_writer, self.blobs, self.where, self.progress = open_writer, blobs, where, progress
        self.members: dict[str, tuple[Digest, int]] = {}
        self.links: dict[str, str] = {}

    def take(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """Stream one regular member into a blob, or remember where a link member points."""
        name = safe_name(member.name)
        if member.issym() or member.islnk():
            base = posixpath.dirname(name) if member.issym() else ""
            self.links[name] = safe_name(posixpath.join(base, member.linkname))
            return
        if not member.isreg():
            return
        src = tar.extractfile(member)
        assert src is not None
        label = item("export", name)
        self.progress.started(label, member.size)
        with self.open_writer(None, member.size) as w:
            while chunk := src.read(CHUNK):
                w.write(chunk)
                self.progress.advanced(label, len(chunk))
        assert w.digest is not None
        self.progress.finished(label, "exported")
        named = _HEX_NAME.fullmatch(name)
        if named and name.startswith("blobs/") and w.digest.hex != named.group(1):
            raise DigestMismatch(f"sha256:{named.group(1)}", w.digest, f"{name} in the export of {self.where}")
        self.members[name] = (w.digest, w.size)

    def blob(self, name: str) -> tuple[Digest, int]:
        """The digest and size of member ``name`` (links followed); InputError if the export lacks it."""
        for _ in range(8):
            if name in self.members:
                return self.members[name]
            if name not in self.links:
                break
            name = self.links[name]
        raise InputError(f"the daemon's export lacks {name}", self.where)

    def document(self, name: str) -> bytes:
        """A small member's bytes (manifest.json, a config)."""
        digest, size = self.blob(name)
        if size > _DOC_MAX:
            raise InputError(f"{name} is {size} bytes, too large for a document", self.where)
        return self.blobs.read_blob(digest)


def export(daemon: Daemon, ref: str, open_writer: OpenWriter, blobs: BlobSource,
           progress: Progress | None = None) -> LayoutImage:
    """Stream the daemon's export of ``ref`` into ``open_writer`` (read back from ``blobs``), checked; its image."""
    progress = progress or NullProgress()
    spool = _Spool(open_writer, blobs, f"{daemon.where} {ref}", progress)
    progress.started("export", None)  # the export's size is known member by member only
    try:
        with _translated(daemon.where, ref):
            stream = io.BufferedReader(_Chunks(iter(daemon.api.get_image(ref, chunk_size=CHUNK))), CHUNK)
            with tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK) as tar:  # 10 KiB reads cost 4x the time
                for member in tar:
                    spool.take(tar, member)
    except tarfile.TarError as exc:
        raise InputError(f"the daemon's export is not a readable tar: {exc}", spool.where) from exc
    finally:
        progress.finished("export")
    return _image(spool, ref)


def _image(spool: _Spool, ref: str) -> LayoutImage:
    """The image ``manifest.json`` describes, its config and layers checked against their names and diffIDs."""
    try:
        items = json.loads(spool.document("manifest.json"))
        item = _pick(items, ref)
        config_name, layer_names = item["Config"], list(item.get("Layers") or [])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"the daemon's export has no usable manifest.json ({exc})", spool.where) from exc
    raw = spool.document(config_name)
    config = ImageConfig.from_bytes(raw, MediaType.OCI_CONFIG)
    named = _HEX_NAME.fullmatch(config_name)
    if named and named.group(1) != config.digest.hex:
        raise DigestMismatch(f"sha256:{named.group(1)}", config.digest, f"config of {spool.where}")
    if len(layer_names) != len(config.diff_ids):
        raise InputError(f"{len(layer_names)} layers but the config lists {len(config.diff_ids)} diffIDs",
                         spool.where)
    layers = [_layer(spool, name, Digest(diff_id)) for name, diff_id in zip(layer_names, config.diff_ids)]
    manifest = Manifest.build(config.descriptor(), layers)
    return LayoutImage(spool.blobs, manifest.descriptor(), manifest, config)


def _pick(items: list, ref: str) -> dict:
    """The manifest.json item for ``ref``: the only one, or the one whose RepoTags name it."""
    if len(items) == 1:
        return items[0]
    name = store_name(ref)
    want = name.familiar if name else ref
    for item in items:
        if want in (item.get("RepoTags") or []):
            return item
    raise KeyError(f"{ref} among {len(items)} images")


def _layer(spool: _Spool, name: str, diff_id: Digest) -> Descriptor:
    """A layer member's descriptor, its uncompressed bytes checked against ``diff_id``."""
    from imgbuild.oci.layer import open_layer

    digest, size = spool.blob(name)
    with spool.blobs.open_blob(digest) as fh:
        head = fh.read(4)
    media_type = (MediaType.OCI_LAYER_GZIP if head.startswith(b"\x1f\x8b") else
                  MediaType.OCI_LAYER_ZSTD if head.startswith(b"\x28\xb5\x2f\xfd") else MediaType.OCI_LAYER)
    actual = digest
    if media_type != MediaType.OCI_LAYER:
        h = diff_id.hasher()
        with spool.blobs.open_blob(digest) as raw, open_layer(raw, media_type) as src:
            while chunk := src.read(CHUNK):
                h.update(chunk)
        actual = Digest(f"{h.name}:{h.hexdigest()}")
    if actual != diff_id:
        raise DigestMismatch(diff_id, actual, f"layer {name} of {spool.where} (diffID)")
    return Descriptor(media_type, digest, size)


class _ScratchLayout(Layout):
    """An OCI layout directory being filled: blobs written atomically, named by their digest."""

    def blob_writer(self, expected: str | None = None, size: int | None = None):
        """Stream one blob in (see :func:`imgbuild.oci._blobio.atomic_blob`)."""
        return atomic_blob(self.root, self.blob_path, expected, size)


@contextlib.contextmanager
def open_image(daemon: Daemon, ref: str, scratch: Path, progress: Progress | None = None) -> Iterator[LayoutImage]:
    """The daemon's image ``ref``, exported into a temp directory under ``scratch`` that is removed on exit."""
    root = Path(tempfile.mkdtemp(prefix="daemon-", dir=scratch))
    try:
        layout = _ScratchLayout(root)
        yield export(daemon, ref, layout.blob_writer, layout, progress)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def store_name(ref: str) -> Reference | None:
    """The name a daemon image ``ref`` gets in the store: itself, or None when ``ref`` is an image ID."""
    if _ID.fullmatch(ref) or re.fullmatch(r"[a-f0-9]{12,64}", ref):
        return None
    return parse_reference(ref)


def pull(daemon: Daemon, ref: str, store: Store, name: Reference | None,
         progress: Progress | None = None) -> Descriptor:
    """Export ``ref`` from the daemon straight into ``store`` and tag it ``name`` (None: keep it untagged)."""
    with store.writing():
        image = export(daemon, ref, store.blob_writer, store, progress)
        store.write_blob(image.manifest.raw, image.descriptor.digest)
        if name is not None:
            store.tag(name, image.descriptor)
        else:
            store.add_untagged(image.descriptor)
    return image.descriptor


def base_in_store(text: str, store: Store, policy: str, daemon: Callable[[], Daemon] | None = None) -> str | None:
    """For a build's ``FROM docker-daemon:REF``: the store reference of REF, exported first unless the pull
    ``policy`` (always, missing, never) says the store's copy will do; None when ``text`` names no daemon image.

    ``daemon`` gives the daemon (default: the one ``$DOCKER_HOST`` names, as the docker CLI does).
    """
    ref = daemon_ref(text)
    if ref is None:
        return None
    name = store_name(ref)
    key = name.normalized if name else ref
    if policy != "always":
        try:
            store.resolve(key)
            return key
        except ImageNotFound:
            if policy == "never":
                raise ImageNotFound(f"base image {text} is not in the local store (--pull=never)") from None
    desc = pull(daemon() if daemon else connect(os.environ), ref, store, name)
    return key if name else str(desc.digest)


def push(daemon: Daemon, store: Store, ref: str, name: Reference, progress: Progress | None = None) -> str:
    """Load the store's image ``ref`` into the daemon (a docker-archive streamed to the API) as ``name``; its ID."""
    from imgbuild.oci.archive import save_docker_archive
    from imgbuild.scratch import owned_dir

    progress = progress or NullProgress()
    image = store.image(ref)
    label = f"load/{name.familiar}"
    with tempfile.TemporaryDirectory(prefix="daemon-", dir=owned_dir(store.tmp_dir)) as tmp:
        archive = Path(tmp) / "image.tar"
        save_docker_archive(store, [str(image.digest)], archive)
        progress.started(label, archive.stat().st_size)
        with _translated(daemon.where, name.familiar), open(archive, "rb") as fh:
            said = [json.dumps(line) for line in daemon.api.load_image(fh)]
            failed = next((line for line in said if '"error"' in line), None)
            if failed is not None:
                raise RegistryError(f"the docker daemon could not load {name.familiar}: {failed}", daemon.where)
            image_id = next((m.group(0) for line in said for m in [_ID.search(line)] if m), str(image.id))
            repo = Reference(name.registry, name.repository).familiar
            daemon.api.tag(image_id, repo, name.tag or "latest")
        progress.finished(label, "loaded")
    return image_id
