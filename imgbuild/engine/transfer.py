"""Ship local file trees to many hosts at once: one tar stream per host, incremental, swapped into place.

Each :class:`Job` names an executor (its host), a local tree (a directory, e.g.
a mounted image, or layers merged as an overlay merges them) and a destination
directory. :func:`distribute` runs every job in parallel (the SSH pool bounds
the sessions) and returns one :class:`HostResult` per job; a host that fails
(unreachable, dies mid-stream) is named in its result while the others finish,
and a re-run completes it.

Per host, the first command reads the destination's marker, ``.imgbuild-manifest``:
the file manifest of what imgbuild put there (path, type, mode, owner, size,
mtime, link target, sha256 of the content; see :mod:`imgbuild.engine._manifest`
-- a per-file manifest, not layer digests, because a destination holds merged
layers plus rendered files, and a file manifest tells exactly which files of
it changed). Its digest, returned as ``HostResult.digest`` for the caller to
keep in cluster state, names the content. Then:

* unchanged (same digest): nothing is sent; the cost is that one small read and
  a digest comparison (files are hashed only where their stat key differs from
  the one recorded, e.g. after a re-mount);
* no marker: the whole tree goes as one tar into ``<dest>.imgbuild-new``,
  which is then renamed over ``<dest>`` (the old tree moves aside and is removed);
* changed: ``<dest>`` is copied as hard links into ``<dest>.imgbuild-new``,
  removed paths (and paths whose type changed) are deleted there, only changed
  and added paths are extracted (tar replaces a file by unlinking it, so the
  old tree's inodes are never written), and the result is renamed into place.

A host holds the old tree or the new one, never a half-written mix, and the
marker is the last member of the stream: a host killed mid-transfer keeps its
old marker and is redone by the next run.

zstd goes into the pipe only when the link is slower than compression.
:func:`distribute` decides per host with ``compress=None``, for streams of at
least 64 MiB to a host that has ``zstd``: it compresses a sample (up to 8 MiB
of the files to send) with zstd level 1 on this machine, giving a ratio and a
compression rate, and measures the link by sending 16 MiB of incompressible
bytes to ``cat > /dev/null`` on the host, timing how fast the channel takes
chunks after its window filled. Compression is used when the sample shrinks
to at most 90% and the link rate is below the compression rate, i.e. when
the link, not this machine's CPU, is the bottleneck. ``compress=True/False``
forces the choice.

Progress is reported through a :class:`Progress` (started / advanced / finished
per host label, in bytes of the uncompressed stream); the library never prints.
"""

from __future__ import annotations

import os
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

from imgbuild.engine._manifest import MARKER, DigestCache, Entry, Manifest, TreeLayer, diff, scan, with_digest
from imgbuild.engine._tarsend import tar_members, tar_size, zstd_chunks
from imgbuild.engine.exec import Executor
from imgbuild.errors import ImgbuildError, InputError

__all__ = ["Job", "HostResult", "Progress", "distribute", "raise_failures", "MARKER", "TreeLayer"]

AUTO_MIN_BYTES = 64 << 20
_SAMPLE = 8 << 20
_PROBE_CHUNKS = 16


class Progress(Protocol):
    """Receives per-host transfer progress, in bytes of the (uncompressed) tar stream."""

    def started(self, label: str, total: int) -> None:
        """A host's stream of about ``total`` bytes begins (0: nothing to send)."""

    def advanced(self, label: str, n: int) -> None:
        """``n`` more bytes went to the host."""

    def finished(self, label: str, note: str) -> None:
        """The host is done (``note`` says what happened, or the error)."""


@dataclass(frozen=True)
class Job:
    """One tree to one host: the executor, the local tree (a directory or layers) and the destination."""

    executor: Executor
    source: Path | Sequence[TreeLayer]
    dest: str


@dataclass
class HostResult:
    """What one host got: the digest it now holds, what was sent or removed, or the error that stopped it."""

    host: str
    dest: str
    digest: str | None = None
    sent_files: int = 0
    removed: int = 0
    bytes: int = 0
    compressed: bool = False
    unchanged: bool = False
    seconds: float = 0.0
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the host holds the tree."""
        return self.error is None


def distribute(jobs: Sequence[Job], *, progress: Progress | None = None, compress: bool | None = None,
               max_workers: int | None = None) -> list[HostResult]:
    """Run every job in parallel; one result per job, in order (failures recorded, not raised)."""
    for job in jobs:
        if not job.dest.startswith("/") or job.dest.rstrip("/") == "":
            raise InputError(f"transfer destination must be an absolute directory below /, not {job.dest!r}")
    scans: dict[int, dict[str, Entry]] = {}
    for job in jobs:
        key = id(job.source)
        if key not in scans:
            scans[key] = scan(job.source)
    cache = DigestCache()
    sample: dict[int, tuple[float, float]] = {}
    workers = max(1, min(max_workers or len(jobs), 256))
    with ThreadPoolExecutor(workers, thread_name_prefix="imgbuild-transfer") as pool:
        futures = [pool.submit(_send_one, job, scans[id(job.source)], cache, progress, compress, sample)
                   for job in jobs]
        return [f.result() for f in futures]


def raise_failures(results: Sequence[HostResult]) -> None:
    """Raise the failure of a lone failed host as it is, or one error naming every failed host."""
    failed = [r for r in results if r.error is not None]
    if len(failed) == 1:
        raise failed[0].error  # type: ignore[misc]
    if failed:
        names = "; ".join(f"{r.host}: {str(r.error).splitlines()[0]}" for r in failed)
        raise ImgbuildError(f"transfer failed on {len(failed)} of {len(results)} hosts: {names}")


def _send_one(job: Job, local: dict[str, Entry], cache: DigestCache, progress: Progress | None,
              compress: bool | None, sample: dict[int, tuple[float, float]]) -> HostResult:
    ex, dest = job.executor, job.dest.rstrip("/")
    res = HostResult(ex.host, dest)
    start = time.monotonic()
    try:
        held, has_zstd = _read_marker(ex, dest)
        cache_from_host = DigestCache([held]) if held is not None else None
        send, remove = diff(local, held, _Chain(cache_from_host, cache))
        entries = {rel: local[rel] for rel in local}
        total = tar_size(entries, send)
        if progress:
            progress.started(ex.host, total if (send or remove) else 0)
        if held is not None and not send and not remove:
            res.digest, res.unchanged = _refresh_marker(ex, dest, entries, held, cache), True
        else:
            use_zstd = _want_zstd(ex, compress, has_zstd, total, entries, send, sample, id(job.source))
            res.digest = _ship(ex, dest, entries, send, remove, held is not None, cache, progress, use_zstd, res)
            res.compressed = use_zstd
        res.sent_files, res.removed = len(send), len(remove)
    except BaseException as exc:  # noqa: BLE001 - recorded per host; Ctrl-C is re-raised below
        res.error = exc
        if not isinstance(exc, Exception):
            raise
    finally:
        res.seconds = time.monotonic() - start
        if progress:
            progress.finished(ex.host, _note(res))
    return res


def _note(res: HostResult) -> str:
    if res.error is not None:
        return f"failed: {str(res.error).splitlines()[0]}"
    if res.unchanged:
        return "unchanged"
    return f"{res.sent_files} sent, {res.removed} removed" + (" (zstd)" if res.compressed else "")


class _Chain(DigestCache):
    """The host's recorded digests first, then the run-wide cache."""

    def __init__(self, first: DigestCache | None, run: DigestCache) -> None:
        self.first, self.run = first, run

    def known(self, key: str) -> str | None:
        return (self.first.known(key) if self.first else None) or self.run.known(key)

    def claim(self, key: str) -> bool:
        return self.run.claim(key)

    def put(self, key: str, sha: str | None) -> None:
        self.run.put(key, sha)

    def get(self, key: str, path: str) -> str:
        return self.known(key) or self.run.get(key, path)


_READ = ('if command -v zstd >/dev/null 2>&1; then echo "imgbuild-zstd yes"; else echo "imgbuild-zstd no"; fi; '
         'echo imgbuild-manifest-begin; cat -- "$1/' + MARKER + '" 2>/dev/null || true')


def _read_marker(ex: Executor, dest: str) -> tuple[Manifest | None, bool]:
    """The manifest the host holds at ``dest`` (None: none there) and whether it has zstd."""
    lines: list[str] = []
    ex.run(["sh", "-c", _READ, "sh", dest], on_line=lines.append)
    zstd = "imgbuild-zstd yes" in lines
    if "imgbuild-manifest-begin" not in lines:
        return None, zstd
    body = lines[lines.index("imgbuild-manifest-begin") + 1:]
    return Manifest.loads(body), zstd


def _final(entries: dict[str, Entry], cache: DigestCache) -> Manifest:
    """The manifest of the whole tree, every file's digest filled in (hashed here only if nobody did)."""
    return Manifest({rel: with_digest(e, cache) for rel, e in entries.items()})


def _refresh_marker(ex: Executor, dest: str, entries: dict[str, Entry], held: Manifest, cache: DigestCache) -> str:
    """Nothing to send: rewrite the marker only if its stat keys are stale (so the next run hashes nothing)."""
    final = _final(entries, cache)
    stale = any(held.entries[rel].key != e.key for rel, e in final.entries.items() if e.type == "f")
    if stale:
        q = shlex.quote(f"{dest}/{MARKER}")
        ex.run(["sh", "-c", f"cat > {q}.tmp && mv -f {q}.tmp {q}"], input=final.dumps())
    return final.digest()


def _script(full: bool, zstd: bool) -> str:
    """The host side: build ``$1.imgbuild-new`` (fresh, or a hard-link copy minus removed paths), swap it in."""
    extract = f'tar -x -p --numeric-owner {"-I zstd " if zstd else ""}-f - -C "$N"'
    prepare = ('mkdir -p -- "$N"' if full else
               'cp -al -- "$1" "$N"; IFS= read -r rm; if [ -n "$rm" ]; then '
               'printf %s "$rm" | base64 -d | (cd -- "$N" && xargs -0 rm -rf --); fi')
    return ('set -e; N="$1.imgbuild-new"; O="$1.imgbuild-old"; rm -rf -- "$N" "$O"; '
            'mkdir -p -- "$(dirname -- "$1")"; ' + prepare + "; " + extract + "; "
            'if [ -e "$1" ] || [ -L "$1" ]; then mv -- "$1" "$O"; fi; mv -- "$N" "$1"; rm -rf -- "$O"')


def _ship(ex: Executor, dest: str, entries: dict[str, Entry], send: list[str], remove: list[str], delta: bool,
          cache: DigestCache, progress: Progress | None, use_zstd: bool, res: HostResult) -> str:
    """Send ``send`` (and the new marker) after removing ``remove``; return the digest the host now holds."""
    final: list[Manifest] = []

    def tail() -> list[tuple[str, bytes]]:
        final.append(_final(entries, cache))
        return [(MARKER, final[0].dumps())]

    def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            res.bytes += len(chunk)
            if progress:
                progress.advanced(ex.host, len(chunk))
            yield chunk

    members = tar_members(entries, send, cache, tail)
    stream = counted(members)
    if use_zstd:
        stream = zstd_chunks(stream)
    if delta:
        stream = _prefixed(_removal_line(remove), stream)
    try:
        ex.run(["sh", "-c", _script(not delta, use_zstd), "sh", dest], input=stream)
    finally:
        members.close()  # a stream cut short releases the digests it claimed
    if not final:
        raise ImgbuildError(f"the host took the stream before its end (tar exited early?): {dest}", ex.host)
    return final[0].digest()


def _removal_line(remove: list[str]) -> bytes:
    import base64

    return base64.b64encode("\0".join(remove).encode("utf-8", "surrogateescape")).replace(b"\n", b"") + b"\n"


def _prefixed(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _want_zstd(ex: Executor, compress: bool | None, has_zstd: bool, total: int, entries: dict[str, Entry],
               send: list[str], sample: dict[int, tuple[float, float]], key: int) -> bool:
    """Forced, or (auto) compress when the host has zstd and the measured link is slower than zstd -1 here."""
    if compress is not None:
        if compress and not has_zstd:
            raise ImgbuildError(f"zstd is not installed on {ex.host}; it is needed to compress the stream", ex.host)
        return compress
    if not has_zstd or total < AUTO_MIN_BYTES:
        return False
    if key not in sample:
        sample[key] = _zstd_sample(entries, send)
    ratio, zstd_rate = sample[key]
    return ratio <= 0.9 and _link_rate(ex) < zstd_rate


def _zstd_sample(entries: dict[str, Entry], send: list[str]) -> tuple[float, float]:
    """(compressed/raw ratio, bytes per second) of zstd -1 on up to 8 MiB of the files to send."""
    import zstandard

    data = bytearray()
    for rel in send:
        e = entries[rel]
        if e.type == "f" and e.size:
            with open(e.src, "rb") as fh:
                data += fh.read(_SAMPLE - len(data))
        if len(data) >= _SAMPLE:
            break
    if not data:
        return 1.0, 0.0
    begin = time.perf_counter()
    out = zstandard.ZstdCompressor(level=1, threads=-1).compress(bytes(data))
    return len(out) / len(data), len(data) / max(time.perf_counter() - begin, 1e-6)


def _link_rate(ex: Executor) -> float:
    """Bytes per second the host's channel takes, timed after the first chunks filled its window."""
    marks: list[float] = []
    block = os.urandom(1 << 20)

    def chunks() -> Iterator[bytes]:
        for _ in range(_PROBE_CHUNKS):
            marks.append(time.perf_counter())
            yield block
        marks.append(time.perf_counter())

    ex.run(["sh", "-c", "cat > /dev/null"], input=chunks())
    skip = 4
    return (len(marks) - 1 - skip) * len(block) / max(marks[-1] - marks[skip], 1e-6)

