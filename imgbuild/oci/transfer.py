"""Image-level transfers: pull, push, copy a remote image into any sink, inspect remotely.

Blobs move in parallel (``jobs`` threads sharing one pooled :class:`RegistryClient`),
each reporting bytes to a :class:`Progress`: tqdm bars on a terminal (one per blob in
flight and an overall bar), one line per finished blob otherwise, or nothing. The
library never looks at CLI state; callers pass ``progress`` (True: bars on a TTY else
lines, False: silent, or their own object with ``start``/``finish``/``close``).

Order of writes makes every step safe to interrupt: blobs first, then child manifests,
then the index, then the tag (locally) or the tagged manifest (remotely).
"""

from __future__ import annotations

import io
import json
import sys
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from imgbuild.errors import DigestMismatch, ImageNotFound, InputError, RegistryError, StoreError
from imgbuild.oci.model import Descriptor, Digest, Index, Manifest, Platform, parse_document
from imgbuild.oci.registry import ProgressFn, RegistryClient
from imgbuild.reference import Reference, parse_reference

__all__ = [
    "NoProgress", "LineProgress", "BarProgress", "make_progress", "move_blobs",
    "RemoteImage", "MemorySink", "copy_image_to", "pull", "push", "inspect_remote",
]


def _short(digest: str) -> str:
    return str(digest)[:19]


def _size(n: int) -> str:
    from tqdm import tqdm

    return tqdm.format_sizeof(n, "B", 1000)


class NoProgress:
    """Reports nothing."""

    def start(self, desc: Descriptor, verb: str) -> ProgressFn:
        """A per-blob byte counter (ignored)."""
        return lambda n: None

    def finish(self, desc: Descriptor, outcome: str) -> None:
        """A blob is done (ignored)."""

    def close(self) -> None:
        """All blobs are done."""


class LineProgress(NoProgress):
    """One line per finished blob on ``stream``: ``pushed sha256:abcd1234ef56 12.3MB``."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def finish(self, desc: Descriptor, outcome: str) -> None:
        """Print the blob's line."""
        with self._lock:
            self.stream.write(f"{outcome} {_short(desc.digest)} {_size(desc.size)}\n")
            self.stream.flush()


class BarProgress(NoProgress):
    """tqdm bars on ``stream``: one per blob in flight and an overall bar."""

    def __init__(self, total: int, verb: str, stream=None) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self.overall = tqdm(total=total, desc=f"{verb} total", unit="B", unit_scale=True, unit_divisor=1000,
                            file=self.stream, position=0, leave=True, dynamic_ncols=True)
        self._bars: dict[str, object] = {}

    def start(self, desc: Descriptor, verb: str) -> ProgressFn:
        """Open a bar for ``desc``; the returned function advances it and the overall bar."""
        with self._lock:
            bar = self._tqdm(total=desc.size, desc=f"{verb} {_short(desc.digest)}", unit="B", unit_scale=True,
                             unit_divisor=1000, file=self.stream, leave=False, dynamic_ncols=True)
            self._bars[str(desc.digest)] = bar

        def advance(n: int) -> None:
            with self._lock:
                bar.update(n)
                self.overall.update(n)
        return advance

    def finish(self, desc: Descriptor, outcome: str) -> None:
        """Close the blob's bar; skipped blobs count fully towards the overall bar."""
        with self._lock:
            bar = self._bars.pop(str(desc.digest), None)
            if bar is not None:
                bar.close()
            if outcome in ("exists", "mounted", "present"):
                self.overall.update(desc.size)

    def close(self) -> None:
        """Close the overall bar."""
        with self._lock:
            self.overall.close()


def make_progress(progress: object, total: int, verb: str):
    """The Progress to use: True = bars on a TTY else lines, False/None = silent, else ``progress`` itself."""
    if progress is True:
        return BarProgress(total, verb) if sys.stderr.isatty() else LineProgress()
    if not progress:
        return NoProgress()
    return progress


def move_blobs(blobs: Iterable[Descriptor], action: Callable[[Descriptor, ProgressFn], str], *, jobs: int,
               progress: object, verb: str) -> dict[str, str]:
    """Run ``action(desc, on_bytes)`` for each distinct blob on ``jobs`` threads; returns digest -> outcome."""
    unique = list({str(d.digest): d for d in blobs}.values())
    prog = make_progress(progress, sum(d.size for d in unique), verb)
    results: dict[str, str] = {}

    def one(desc: Descriptor) -> None:
        outcome = action(desc, prog.start(desc, verb))
        results[str(desc.digest)] = outcome
        prog.finish(desc, outcome)

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="imgbuild-blob")
    try:
        futures = [pool.submit(one, d) for d in unique]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for f in futures:
            if f.done() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        prog.close()
    return results


@dataclass(frozen=True)
class RemoteImage:
    """What :func:`copy_image_to` fetched: the reference, its top descriptor, manifests (raw) and blobs."""

    reference: Reference
    descriptor: Descriptor
    documents: tuple[tuple[Descriptor, bytes], ...]
    blobs: tuple[Descriptor, ...]


class MemorySink:
    """A sink that keeps small blobs in memory (config for inspect); refuses blobs above ``limit`` bytes."""

    def __init__(self, limit: int = 64 << 20) -> None:
        self.limit = limit
        self.blobs: dict[str, bytes] = {}

    @contextmanager
    def blob_writer(self, expected: str | None = None, size: int | None = None) -> Iterator[object]:
        """A writer collecting bytes; verified against ``expected`` on exit."""
        if size is not None and size > self.limit:
            raise StoreError(f"blob of {size} bytes is too large to keep in memory", where=expected)
        buf = _Writer()
        yield buf
        data = buf.getvalue()
        actual = Digest.of(data)
        if expected and actual != expected:
            raise DigestMismatch(expected, actual)
        buf.digest, buf.size = actual, len(data)
        self.blobs[actual] = data


class _Writer(io.BytesIO):
    digest: Digest | None = None
    size: int | None = None


def _client(ref: Reference, client: RegistryClient | None, **kw) -> tuple[RegistryClient, bool]:
    if client is not None:
        return client, False
    return RegistryClient(ref.registry, **kw), True


def _fetch_children(client: RegistryClient, ref: Reference, index: Index, platform: Platform | None,
                    all_platforms: bool) -> list[tuple[Descriptor, bytes]]:
    """The child manifests of ``index`` to keep: all of them, or the one for ``platform``."""
    if all_platforms:
        wanted = list(index.manifests)
    else:
        plat = platform or Platform.current()
        child = index.select(plat)
        if child is None:
            have = ", ".join(str(p) for p in index.platforms()) or "none"
            raise ImageNotFound(f"no image for platform {plat} (the index has: {have})", where=ref.normalized)
        wanted = [child]
    out = []
    for desc in wanted:
        raw, media_type = client.get_manifest(ref.with_digest(str(desc.digest)))
        if isinstance(parse_document(raw, media_type), Index):
            raise RegistryError("nested image indexes are not supported", where=ref.normalized)
        out.append((Descriptor(media_type, Digest.of(raw), len(raw), platform=desc.platform), raw))
    return out


def copy_image_to(ref: str | Reference, sink, *, platform: Platform | None = None, all_platforms: bool = False,
                  client: RegistryClient | None = None, jobs: int = 4, progress: object = False,
                  **client_kw) -> RemoteImage:
    """Fetch a remote image's blobs then manifests into ``sink`` (anything with ``blob_writer``).

    An index is resolved to the child for ``platform`` (default this machine), whose descriptor is
    returned; with ``all_platforms`` every child and the index itself are written and the index is
    returned. Blobs the sink already has (``sink.has_blob``, if it offers one) are not fetched.
    This is what pull, regdir and the builder use to bring remote content in.
    """
    ref = parse_reference(ref) if isinstance(ref, str) else ref
    client, own = _client(ref, client, jobs=jobs, progress=progress, **client_kw)
    try:
        raw, media_type = client.get_manifest(ref)
        top = Descriptor(media_type, Digest.of(raw), len(raw))
        doc = parse_document(raw, media_type)
        docs = [(top, raw)]
        if isinstance(doc, Index):
            docs = _fetch_children(client, ref, doc, platform, all_platforms)
            if all_platforms:
                docs.append((top, raw))
            else:
                top = docs[0][0]
        blobs = _blobs_of(docs)
        has = getattr(sink, "has_blob", lambda d: False)
        todo = [b for b in blobs if not has(str(b.digest))]
        move_blobs(todo, lambda d, cb: (client.fetch_blob(ref.repository, d, sink, cb), "pulled")[1],
                   jobs=client.jobs, progress=progress, verb="pull")
        for desc, data in docs:
            with sink.blob_writer(str(desc.digest), desc.size) as w:
                w.write(data)
        return RemoteImage(ref, top, tuple(docs), tuple(blobs))
    finally:
        if own:
            client.close()


def _blobs_of(docs: Iterable[tuple[Descriptor, bytes]]) -> list[Descriptor]:
    """Config and layer descriptors of every manifest among ``docs``, each once."""
    seen: dict[str, Descriptor] = {}
    for desc, raw in docs:
        doc = parse_document(raw, desc.media_type)
        if isinstance(doc, Manifest):
            for b in doc.blobs():
                seen.setdefault(str(b.digest), b)
    return list(seen.values())


def _with_auth(store, executor, client_kw: dict) -> dict:
    """``client_kw`` with, unless it names an ``auth``, the credentials of the store's Home (helpers via ``executor``)."""
    if client_kw.get("auth") is None:
        from imgbuild.oci.auth import ConfigAuth

        client_kw = {**client_kw, "auth": ConfigAuth.for_home(store.home, executor)}
    return client_kw


def pull(ref: str, *, store, platform: Platform | None = None, all_platforms: bool = False,
         jobs: int = 4, progress: object = False, executor=None, **client_kw) -> Descriptor:
    """Pull ``ref`` into ``store`` and tag it; returns the stored descriptor.

    Credentials come from the store's Home and docker/podman files (credential helpers run through
    ``executor``) unless ``client_kw`` names an ``auth`` provider.
    """
    client_kw = _with_auth(store, executor, client_kw)
    image = copy_image_to(ref, store, platform=platform, all_platforms=all_platforms, jobs=jobs,
                          progress=progress, **client_kw)
    store.tag(image.reference, image.descriptor)
    return image.descriptor


def _local_documents(store, desc: Descriptor, where: str) -> list[tuple[Descriptor, bytes]]:
    """The manifest (or index and all its children) of a local image, children first."""
    raw = store.read_blob(str(desc.digest))
    doc = parse_document(raw, desc.media_type)
    top = Descriptor(doc.media_type, Digest.of(raw), len(raw))
    if isinstance(doc, Manifest):
        return [(top, raw)]
    out = []
    for child in doc.manifests:
        if not store.has_blob(str(child.digest)):
            raise StoreError(f"the index lists {child.digest} ({child.platform}) which is not in the store; "
                             "pull it with --all-platforms to push the whole index", where=where)
        out.append((child, store.read_blob(str(child.digest))))
    return out + [(top, raw)]


def _mount_sources(store, dest: Reference) -> dict[str, str]:
    """digest -> another repository of the same registry whose local image holds that blob."""
    sources: dict[str, str] = {}
    for tref, tdesc in store.tags():
        if tref.registry != dest.registry or tref.repository == dest.repository:
            continue
        try:
            for b in _blobs_of(_local_documents(store, tdesc, tref.normalized)):
                sources.setdefault(str(b.digest), tref.repository)
        except (StoreError, InputError):
            continue
    return sources


def push(src: str, dest: str | None = None, *, store, jobs: int = 4, progress: object = False,
         client: RegistryClient | None = None, executor=None, **client_kw) -> Digest:
    """Push ``src`` from ``store`` to ``dest`` (default: ``src`` itself); returns the pushed manifest digest.

    Credentials as for :func:`pull`.
    """
    client_kw = _with_auth(store, executor, client_kw)
    desc = store.resolve(src)
    try:
        target = parse_reference(dest or src)
    except InputError as exc:
        raise InputError("give a destination reference (registry/repository:tag)", where=src) from exc
    docs = _local_documents(store, desc, src)
    blobs = _blobs_of(docs)
    mounts = _mount_sources(store, target)
    client, own = _client(target, client, jobs=jobs, progress=progress, **client_kw)
    try:
        def send(d: Descriptor, cb: ProgressFn) -> str:
            return client.push_blob(target.repository, d, lambda: store.open_blob(str(d.digest)),
                                    mount_from=mounts.get(str(d.digest)), on_bytes=cb)

        move_blobs(blobs, send, jobs=client.jobs, progress=progress, verb="push")
        for child, raw in docs[:-1]:
            client.put_manifest(target.repository, str(child.digest), raw, child.media_type)
        top, raw = docs[-1]
        tag = target.tag if target.tag and not target.digest else str(top.digest)
        return client.put_manifest(target.repository, tag, raw, top.media_type)
    finally:
        if own:
            client.close()


def inspect_remote(ref: str, *, platform: Platform | None = None, **client_kw) -> dict:
    """The manifest (and config, or the index's platforms) of a remote image; nothing is stored."""
    target = parse_reference(ref)
    with RegistryClient(target.registry, progress=False, **client_kw) as client:
        raw, media_type = client.get_manifest(target)
        doc = parse_document(raw, media_type)
        out: dict = {"reference": target.normalized, "digest": str(Digest.of(raw)), "mediaType": media_type,
                     "size": len(raw), "manifest": json.loads(raw)}
        if isinstance(doc, Index):
            out["platforms"] = [str(p) for p in doc.platforms()]
            return out
        sink = MemorySink()
        client.fetch_blob(target.repository, doc.config, sink)
        out["config"] = json.loads(sink.blobs[str(doc.config.digest)])
        out["layers"] = [{"digest": str(d.digest), "size": d.size, "mediaType": d.media_type} for d in doc.layers]
        return out
