"""Copy an image from any source to any sink, written once; pull and push are two uses of it.

:func:`copy` takes an :class:`~imgbuild.oci.image.Image` or ``ImageIndex`` (the store, a
registry, an archive, an OCI layout) and a :class:`~imgbuild.oci.image.Sink` (the store,
a registry repository, the registry/ directory, an archive being written). Blobs move
first, in parallel on ``jobs`` threads, each once however many images share it, each
skipped when the sink has it and verified against its digest where it lands; then the
child manifests; then the top manifest or index with its name. So an interrupted copy
never leaves a name pointing at something incomplete. :func:`copy_each` does several
sources into one sink on one pool (``keep_going``: a failed blob fails only the images
that need it).

Progress goes to a :class:`~imgbuild.progress.Progress`: the copy as task ``verb`` with
its total bytes, each blob as item ``verb/<digest>`` ending in its outcome (``pulled``,
``pushed``, ``mounted``, ``exists``, ``copied``, ``failed``). The library never prints.

:func:`pull`, :func:`push` and :func:`inspect_remote` are the registry verbs; they load
the HTTP stack (:mod:`imgbuild.oci.remote`) when called, so copies between local places
never import it.
"""

from __future__ import annotations

import json
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Callable, ContextManager, Mapping, Sequence

from imgbuild.errors import ImgbuildError, InputError, StoreError
from imgbuild.oci.image import OnBytes, Sink, Source, child_images, is_index, open_layout
from imgbuild.oci.model import Descriptor, Digest, Manifest, Platform
from imgbuild.progress import SKIPPED, NullProgress, Progress, item
from imgbuild.reference import Reference, parse_reference

if TYPE_CHECKING:
    from imgbuild.oci.registry import RegistryClient
    from imgbuild.oci.store import Store

__all__ = [
    "copy", "copy_each", "Copied", "Failed", "StoreSink", "stream_blob",
    "pull", "push", "inspect_remote", "CHUNK",
]

CHUNK = 1 << 20


@dataclass(frozen=True)
class Failed:
    """Why a source was not copied: the first of its blobs that could not be, and the error."""

    digest: Digest
    error: ImgbuildError

    def __str__(self) -> str:
        return f"blob {self.digest}: {self.error}"


@dataclass(frozen=True)
class Copied:
    """What :func:`copy_each` did: per source its top descriptor (or :class:`Failed`), per blob its outcome."""

    results: tuple[Descriptor | Failed, ...]
    outcomes: Mapping[str, str]
    blobs: Mapping[str, Descriptor]

    def moved(self) -> list[Descriptor]:
        """The blobs that were transferred (not skipped, not failed)."""
        return [self.blobs[d] for d, o in self.outcomes.items() if o not in SKIPPED and o != "failed"]


@dataclass
class _Plan:
    """One source's writes: blobs (with how to open each), then documents, children first and the top last."""

    blobs: list[tuple[Descriptor, Callable[[Descriptor], BinaryIO]]]
    docs: list[tuple[Descriptor, bytes]]


def _plan(source: Source) -> _Plan:
    images = child_images(source)
    blobs = [(b, img.open_blob) for img in images for b in img.manifest.blobs()]
    docs = [(img.descriptor, img.manifest.raw) for img in images]
    if is_index(source):
        docs.append((source.descriptor, source.index.raw))  # type: ignore[union-attr]
    return _Plan(blobs, docs)


def copy(source: Source, sink: Sink, *, name: Reference | None = None, jobs: int = 4,
         progress: Progress | None = None, verb: str = "copy") -> Descriptor:
    """Copy ``source`` into ``sink`` and name it ``name`` there; returns the top descriptor written."""
    result = copy_each([(source, name)], sink, jobs=jobs, progress=progress, verb=verb).results[0]
    assert isinstance(result, Descriptor)  # without keep_going a failure raised
    return result


def copy_each(sources: Sequence[tuple[Source, Reference | None]], sink: Sink, *, jobs: int = 4,
              progress: Progress | None = None, verb: str = "copy", keep_going: bool = False) -> Copied:
    """Copy every ``(source, name)`` into ``sink``: all blobs on one pool (each once), then each one's manifests.

    Without ``keep_going`` the first error stops everything and is raised (no name is written);
    with it, a source whose blob failed gets a :class:`Failed` result and the others complete.
    """
    plans = [_plan(src) for src, _ in sources]
    todo: dict[str, tuple[Descriptor, Callable[[Descriptor], BinaryIO]]] = {}
    for plan in plans:
        for desc, opener in plan.blobs:
            todo.setdefault(str(desc.digest), (desc, opener))
    outcomes, errors = _move(list(todo.values()), sink, jobs, progress or NullProgress(), verb, keep_going)
    results: list[Descriptor | Failed] = []
    for (_, name), plan in zip(sources, plans):
        bad = next((str(d.digest) for d, _ in plan.blobs if str(d.digest) in errors), None)
        if bad is not None:
            results.append(Failed(Digest(bad), errors[bad]))
            continue
        for desc, raw in plan.docs[:-1]:
            sink.put_manifest(desc, raw, name)
        top, raw = plan.docs[-1]
        sink.tag(top, raw, name)
        results.append(top)
    return Copied(tuple(results), outcomes, {d: desc for d, (desc, _) in todo.items()})


def _move(blobs: list[tuple[Descriptor, Callable[[Descriptor], BinaryIO]]], sink: Sink, jobs: int,
          progress: Progress, verb: str, keep_going: bool) -> tuple[dict[str, str], dict[str, ImgbuildError]]:
    """Move each blob the sink lacks on ``jobs`` threads; returns digest -> outcome and digest -> error."""
    outcomes: dict[str, str] = {}
    errors: dict[str, ImgbuildError] = {}

    def one(desc: Descriptor, opener: Callable[[Descriptor], BinaryIO]) -> None:
        label = item(verb, str(desc.digest))
        progress.started(label, desc.size)
        try:
            outcome = "exists" if sink.has_blob(desc) else sink.put_blob(
                desc, lambda: opener(desc), lambda n: progress.advanced(label, n))
        except ImgbuildError as exc:
            progress.finished(label, "failed")
            if not keep_going:
                raise
            errors[str(desc.digest)], outcomes[str(desc.digest)] = exc, "failed"
            return
        outcomes[str(desc.digest)] = outcome
        progress.finished(label, outcome)

    progress.started(verb, sum(d.size for d, _ in blobs))
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="imgbuild-blob")
    try:
        futures = [pool.submit(one, d, o) for d, o in blobs]
        wait(futures, return_when=FIRST_EXCEPTION)
        for f in futures:
            if f.done() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.finished(verb)
    return outcomes, errors


def stream_blob(blob_writer: Callable[[str | None, int | None], ContextManager], desc: Descriptor,
                open_blob: Callable[[], BinaryIO], on_bytes: OnBytes) -> None:
    """Stream ``open_blob()`` through ``blob_writer(digest, size)`` (which verifies and commits it)."""
    with open_blob() as src, blob_writer(str(desc.digest), desc.size) as w:
        while chunk := src.read(CHUNK):
            w.write(chunk)
            on_bytes(len(chunk))


class StoreSink:
    """The local store as a copy's sink: blobs streamed in digest-checked, the top tagged (or kept untagged)."""

    def __init__(self, store: Store, *, done: str = "copied") -> None:
        self.store, self.done = store, done

    def has_blob(self, desc: Descriptor) -> bool:
        """True if the store has the blob, which is then leased until the tag (a concurrent gc spares it)."""
        return self.store.claim_blob(desc.digest)

    def put_blob(self, desc: Descriptor, open_blob: Callable[[], BinaryIO], on_bytes: OnBytes) -> str:
        """Stream the blob in (verified, fsynced, renamed into place)."""
        stream_blob(self.store.blob_writer, desc, open_blob, on_bytes)
        return self.done

    def put_manifest(self, desc: Descriptor, raw: bytes, name: Reference | None) -> None:
        """Store a child manifest by digest."""
        self.store.write_blob(raw, desc.digest)

    def tag(self, desc: Descriptor, raw: bytes, name: Reference | None) -> None:
        """Store the top document and tag it ``name`` (untagged: kept alive as ``<none>``)."""
        self.store.write_blob(raw, desc.digest)
        if name is not None:
            self.store.tag(name, desc)
        else:
            self.store.add_untagged(desc)


# ----------------------------------------------------------------------------------------- registry verbs


def _client(ref: Reference, client: RegistryClient | None, jobs: int, client_kw: dict) -> tuple[RegistryClient, bool]:
    if client is not None:
        return client, False
    from imgbuild.oci.registry import RegistryClient

    return RegistryClient(ref.registry, jobs=jobs, **client_kw), True


def _with_auth(store, executor, client_kw: dict) -> dict:
    """``client_kw`` with, unless it names an ``auth``, the credentials of the store's Home (helpers via ``executor``)."""
    if client_kw.get("auth") is None:
        from imgbuild.oci.auth import ConfigAuth

        client_kw = {**client_kw, "auth": ConfigAuth.for_home(store.home, executor)}
    return client_kw


def pull(ref: str, *, store: Store, platform: Platform | None = None, all_platforms: bool = False, jobs: int = 4,
         progress: Progress | None = None, client: RegistryClient | None = None, executor=None,
         **client_kw) -> Descriptor:
    """Pull ``ref`` into ``store`` and tag it; returns the stored descriptor.

    An index becomes the child for ``platform`` (default: this machine), or, with
    ``all_platforms``, the index and every child. Credentials come from the store's Home and
    docker/podman files (credential helpers run through ``executor``) unless ``client_kw``
    names an ``auth`` provider.
    """
    from imgbuild.oci.remote import RemoteIndex, for_platform, open_remote

    target = parse_reference(ref)
    client, own = _client(target, client, jobs, _with_auth(store, executor, client_kw))
    try:
        source = open_remote(client, target)
        if isinstance(source, RemoteIndex) and not all_platforms:
            source = for_platform(source, platform)
        with store.writing():
            return copy(source, StoreSink(store, done="pulled"), name=target, jobs=client.jobs,
                        progress=progress, verb="pull")
    finally:
        if own:
            client.close()


def _local_source(store: Store, desc: Descriptor, where: str) -> Source:
    """The local image (or whole index) ``desc``; StoreError if an index child is not in the store."""
    source = open_layout(store, desc)
    if is_index(source):
        for child in source.index.manifests:  # type: ignore[union-attr]
            if not store.has_blob(child.digest):
                raise StoreError(f"the index lists {child.digest} ({child.platform}) which is not in the store; "
                                 "pull it with --all-platforms to push the whole index", where=where)
    return source


def _mount_sources(store: Store, dest: Reference) -> dict[str, str]:
    """digest -> another repository of the same registry whose local image holds that blob (manifests read only)."""
    sources: dict[str, str] = {}
    for tref, tdesc in store.tags():
        if tref.registry != dest.registry or tref.repository == dest.repository:
            continue
        try:
            doc = store.get_document(tdesc.digest)
            manifests = [doc] if isinstance(doc, Manifest) else \
                [store.get_document(c.digest) for c in doc.manifests if store.has_blob(c.digest)]
            for b in (b for m in manifests if isinstance(m, Manifest) for b in m.blobs()):
                sources.setdefault(str(b.digest), tref.repository)
        except (StoreError, InputError):
            continue
    return sources


def push(src: str, dest: str | None = None, *, store: Store, jobs: int = 4, progress: Progress | None = None,
         client: RegistryClient | None = None, executor=None, **client_kw) -> Digest:
    """Push ``src`` from ``store`` (manifest or whole index) to ``dest`` (default: ``src``); the pushed digest.

    Credentials as for :func:`pull`.
    """
    from imgbuild.oci.remote import RegistrySink

    desc = store.resolve(src)
    try:
        target = parse_reference(dest or src)
    except InputError as exc:
        raise InputError("give a destination reference (registry/repository:tag)", where=src) from exc
    source = _local_source(store, desc, src)
    client, own = _client(target, client, jobs, _with_auth(store, executor, client_kw))
    try:
        sink = RegistrySink(client, target, _mount_sources(store, target))
        return copy(source, sink, name=target, jobs=client.jobs, progress=progress, verb="push").digest
    finally:
        if own:
            client.close()


def inspect_remote(ref: str, *, platform: Platform | None = None, **client_kw) -> dict:
    """The manifest (and config, or the index's platforms) of a remote image; nothing is stored."""
    from imgbuild.oci.remote import RemoteIndex, open_remote

    target = parse_reference(ref)
    client, _ = _client(target, None, 1, client_kw)
    with client:
        source = open_remote(client, target)
        out: dict = {"reference": target.normalized, "digest": str(source.descriptor.digest),
                     "mediaType": source.descriptor.media_type, "size": source.descriptor.size,
                     "manifest": json.loads(source.index.raw if isinstance(source, RemoteIndex) else source.manifest.raw)}
        if isinstance(source, RemoteIndex):
            out["platforms"] = [str(p) for p in source.index.platforms()]
            return out
        out["config"] = json.loads(source.config.raw)
        out["layers"] = [{"digest": str(d.digest), "size": d.size, "mediaType": d.media_type} for d in source.layers]
        return out
