"""Ship local file trees to many hosts at once: one tar stream per host, incremental, swapped into place.

Each :class:`Job` names an executor (its host), a local tree (a directory, e.g.
a mounted image, or layers merged as an overlay merges them) and a destination
directory. :func:`distribute` runs every job in parallel (the SSH pool bounds
the sessions) and returns one :class:`HostResult` per job; a host that fails
(unreachable, dies mid-stream) is named in its result while the others finish,
and a re-run completes it.

Per host, the first command reads the destination's marker, ``.imgbuild-manifest.gz``:
the file manifest of what imgbuild put there (path, type, mode, owner, size,
mtime, link target, a hash of the content; see :mod:`imgbuild.engine._manifest`
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

zstd goes into the pipe only when the link is slower than compression, measured per host
(``compress=None``, streams of 64 MiB or more to a host that has ``zstd``): the
link's rate against zstd -1's rate on a sample of the tree times the cores left
idle while the link runs flat out; see :mod:`imgbuild.engine._zstdpick` for the
rule. ``compress=True/False`` forces it. ``HostResult.zstd_why`` says why.

Progress is reported through a :class:`Progress` (started / advanced / finished
per host label, in bytes of the uncompressed stream); the library never prints.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

from imgbuild.engine._manifest import (END, MARKER, DigestCache, Entry, Manifest, TreeLayer, diff, file_digest, scan,
                                       with_digest)
from imgbuild.engine._tarsend import tar_members, tar_size, zstd_chunks
from imgbuild.engine._zstdpick import decide
from imgbuild.engine.exec import Executor
from imgbuild.errors import ImgbuildError, InputError, Interrupted

__all__ = ["Job", "HostResult", "Progress", "distribute", "raise_failures", "install_script", "tree_stream",
           "tree_marker", "quick_pending", "DigestCache", "MARKER", "TreeLayer"]

_SMALL = 8 << 20  # streams under this are built in memory and sent as bytes



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
    """One tree to one host: the executor, the local tree (a directory or layers) and the destination.

    A ``source`` that is a single file is sent to the path ``dest`` (not into it).
    """

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
    zstd_why: str = ""
    unchanged: bool = False
    seconds: float = 0.0
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the host holds the tree."""
        return self.error is None


def distribute(jobs: Sequence[Job], *, progress: Progress | None = None, compress: bool | None = None,
               replace: bool = True, max_workers: int | None = None) -> list[HostResult]:
    """Run every job in parallel; one result per job, in order (failures recorded, not raised).

    ``replace=False`` refuses (per host) a destination that exists but holds no imgbuild marker, so a
    user's directory is never swapped out by mistake.
    """
    for job in jobs:
        if not job.dest.startswith("/") or job.dest.rstrip("/") == "":
            raise InputError(f"transfer destination must be an absolute directory below /, not {job.dest!r}")
    run = _Run(DigestCache(), progress, compress, replace)
    for job in jobs:
        if id(job.source) not in run.scans and not _is_file(job.source):
            run.scans[id(job.source)] = scan(job.source)
    workers = max(1, min(max_workers or len(jobs), 256))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="imgbuild-transfer")
    futures = [pool.submit(_send_one, job, run) for job in jobs]
    try:
        return [f.result() for f in futures]
    except BaseException:  # Ctrl-C: every stream stops at its next chunk, hosts keep their old trees
        run.cancelled.set()
        raise
    finally:
        pool.shutdown(wait=not run.cancelled.is_set(), cancel_futures=True)


def _is_file(source: object) -> bool:
    return isinstance(source, (str, os.PathLike)) and Path(source).is_file()


def raise_failures(results: Sequence[HostResult]) -> None:
    """Raise the failure of a lone failed host as it is, or one error naming every failed host."""
    failed = [r for r in results if r.error is not None]
    if len(failed) == 1:
        raise failed[0].error  # type: ignore[misc]
    if failed:
        names = "; ".join(f"{r.host}: {str(r.error).splitlines()[0]}" for r in failed)
        raise ImgbuildError(f"transfer failed on {len(failed)} of {len(results)} hosts: {names}")


@dataclass
class _Run:
    """What the jobs of one :func:`distribute` call share: scans, digests, zstd samples, final manifests."""

    cache: DigestCache
    progress: Progress | None
    compress: bool | None
    replace: bool = True
    scans: dict[int, dict[str, Entry]] = field(default_factory=dict)
    samples: dict[int, tuple[float, float]] = field(default_factory=dict)
    finals: dict[int, Manifest] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def final(self, key: int) -> Manifest:
        """The whole tree's manifest, every file's digest filled in (hashed only where no stream did)."""
        with self.lock:
            done = self.finals.get(key)
        if done is None:
            entries = self.scans[key]
            done = Manifest({rel: with_digest(e, self.cache) for rel, e in entries.items()})
            done.digest()
            with self.lock:
                done = self.finals.setdefault(key, done)
        return done


def _send_one(job: Job, run: _Run) -> HostResult:
    """One job, its outcome recorded in its result (an error included) and reported as finished."""
    res = HostResult(job.executor.host, job.dest.rstrip("/"))
    start = time.monotonic()
    try:
        if id(job.source) in run.scans:
            _send_tree(job.executor, res, id(job.source), run)
        else:
            _send_file(job.executor, res, Path(job.source), run)  # type: ignore[arg-type]
    except BaseException as exc:  # noqa: BLE001 - recorded per host; Ctrl-C is re-raised below
        res.error = exc
        if not isinstance(exc, Exception):
            raise
    finally:
        res.seconds = time.monotonic() - start
        if run.progress:
            run.progress.finished(res.host, _note(res))
    return res


def _send_tree(ex: Executor, res: HostResult, key: int, run: _Run) -> None:
    found = _read_marker(ex, res.dest)
    held = found.manifest
    if held is None and found.exists and not run.replace:
        raise ImgbuildError(f"{res.dest} exists on {ex.host} and was not written by imgbuild: not replacing it",
                            ex.host)
    entries = run.scans[key]
    send, remove = diff(entries, held, _Chain(DigestCache([held]) if held else None, run.cache))
    total = tar_size(entries, send)
    if run.progress:
        run.progress.started(ex.host, total if (send or remove) else 0)
    if held is not None and not send and not remove:
        res.digest, res.unchanged = _refresh_marker(ex, res.dest, run.final(key), held), True
        return
    choice = decide(ex, run.compress, found.zstd, total, entries, send, run.samples, key)
    if choice.zstd and not found.zstd:
        raise ImgbuildError(f"zstd is not installed on {ex.host}; it is needed to compress the stream", ex.host)
    res.compressed, res.zstd_why = choice.zstd, choice.why
    res.digest = _ship(ex, res.dest, key, send, remove, held is not None, run, res)
    res.sent_files, res.removed = len(send), len(remove)


_FILE_SUM = 'if [ -f "$1" ]; then sha256sum -- "$1"; stat -c %a -- "$1"; fi'
_FILE = ('set -e; if [ -d "$1" ]; then echo "$1 is a directory" >&2; exit 1; fi; mkdir -p -- "$(dirname -- "$1")"; '
         'cat > "$1.imgbuild-new"; chmod "$2" "$1.imgbuild-new"; mv -f -- "$1.imgbuild-new" "$1"')


def _send_file(ex: Executor, res: HostResult, source: Path, run: _Run) -> None:
    """One file to the path ``res.dest``: skipped when the host's copy has the same sha256 and mode."""
    st = source.stat()
    sha = file_digest(source, hashlib.sha256)  # compared with the host's sha256sum
    mode = f"{st.st_mode & 0o7777:o}"
    there = ex.run(["sh", "-c", _FILE_SUM, "sh", res.dest]).stdout.split()
    res.digest = f"sha256:{sha}"
    if run.progress:
        run.progress.started(ex.host, 0 if there[:1] == [sha] and there[-1:] == [mode] else st.st_size)
    if there[:1] == [sha] and there[-1:] == [mode]:
        res.unchanged = True
        return

    def chunks() -> Iterator[bytes]:
        with open(source, "rb") as fh:
            while chunk := fh.read(1 << 20):
                res.bytes += len(chunk)
                if run.progress:
                    run.progress.advanced(ex.host, len(chunk))
                yield chunk

    ex.run(["sh", "-c", _FILE, "sh", res.dest, mode], input=chunks())
    res.sent_files = 1


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

    def put(self, key: str, digest: str | None) -> None:
        self.run.put(key, digest)

    def get(self, key: str, path: str) -> str:
        return self.known(key) or self.run.get(key, path)


_READ = ('if command -v zstd >/dev/null 2>&1; then echo "imgbuild-zstd yes"; else echo "imgbuild-zstd no"; fi; '
         'if [ -e "$1" ] || [ -L "$1" ]; then echo imgbuild-dest-exists; fi; '
         'echo imgbuild-manifest-begin; gzip -dc -- "$1/' + MARKER + '" 2>/dev/null || true')


@dataclass(frozen=True)
class _Held:
    """What the first command found on the host."""

    manifest: Manifest | None
    zstd: bool
    exists: bool


def _read_marker(ex: Executor, dest: str) -> _Held:
    """The manifest the host holds at ``dest`` (None: none there), whether it has zstd, whether ``dest`` exists."""
    lines: list[str] = []
    ex.run(["sh", "-c", _READ, "sh", dest], on_line=lines.append)
    zstd, exists = "imgbuild-zstd yes" in lines, "imgbuild-dest-exists" in lines
    if "imgbuild-manifest-begin" not in lines:
        return _Held(None, zstd, exists)
    body = lines[lines.index("imgbuild-manifest-begin") + 1:]
    return _Held(Manifest.loads(body), zstd, exists)


def _refresh_marker(ex: Executor, dest: str, final: Manifest, held: Manifest) -> str:
    """Nothing to send: rewrite the marker only if its stat keys are stale (so the next run hashes nothing)."""
    stale = any(held.entries[rel].key != e.key for rel, e in final.entries.items() if e.type == "f")
    if stale:
        q = shlex.quote(f"{dest}/{MARKER}")
        ex.run(["sh", "-c", f"cat > {q}.tmp && mv -f {q}.tmp {q}"], input=final.marker())
    return final.digest()


def install_script(fill: str) -> str:
    """A host-side ``sh -c`` script: ``fill`` builds ``$N`` (``$1.imgbuild-new``), which is swapped in for ``$1``.

    The swap happens only when ``$N`` holds the END member (tar takes a stream cut at a member boundary as a
    whole archive: only END proves it is complete); the old tree moves aside and is removed after the rename,
    and a failed fill is removed on the way out.
    """
    return ('set -e; N="$1.imgbuild-new"; O="$1.imgbuild-old"; rm -rf -- "$N" "$O"; trap \'rm -rf -- "$N"\' EXIT; '
            'mkdir -p -- "$(dirname -- "$1")"; ' + fill + "; "
            f'if [ ! -e "$N/{END}" ]; then echo "the stream was cut short; $1 left as it was" >&2; exit 3; fi; '
            f'rm -f -- "$N/{END}"; '
            'if [ -e "$1" ] || [ -L "$1" ]; then mv -- "$1" "$O"; fi; mv -- "$N" "$1"; rm -rf -- "$O"')


def _script(full: bool, zstd: bool) -> str:
    """The host side: build ``$1.imgbuild-new`` (fresh, or a hard-link copy minus removed paths), swap it in."""
    extract = f'tar -x -p --numeric-owner {"-I zstd " if zstd else ""}-f - -C "$N"'
    prepare = ('mkdir -p -- "$N"' if full else
               'cp -al -- "$1" "$N"; IFS= read -r rm; if [ -n "$rm" ]; then '
               'printf %s "$rm" | base64 -d | (cd -- "$N" && xargs -0 rm -rf --); fi')
    return install_script(prepare + "; " + extract)


def tree_stream(source: Path | Sequence[TreeLayer], cache: DigestCache | None = None
                ) -> tuple[Iterator[bytes], Callable[[], str]]:
    """The whole tree of ``source`` as the stream a host without it receives: content, the marker, END.

    Returns the chunks and a function that gives the digest of the marker once the chunks are consumed, the
    digest a host holding the tree reports (so :func:`distribute` to it afterwards sends only differences).
    Files hashed on the way land in ``cache`` (for :func:`tree_marker` of a tree that shares them).
    """
    run = _Run(cache or DigestCache(), None, False)
    run.scans[0] = scan(source)
    final: list[Manifest] = []

    def tail() -> list[tuple[str, bytes]]:
        final.append(run.final(0))
        return [(MARKER, final[0].marker()), (END, b"")]

    send, _ = diff(run.scans[0], None, run.cache)

    def digest() -> str:
        if not final:
            raise ImgbuildError("the tree stream was not read to its end")
        return final[0].digest()

    return tar_members(run.scans[0], send, run.cache, tail), digest


def quick_pending(executor: Executor, source: Path | Sequence[TreeLayer], dest: str) -> int | None:
    """About how many bytes a send of ``source`` to ``dest`` would stream, by rsync's quick check (type, size,
    mtime, mode against the host's marker; nothing hashed); None when ``dest`` holds no imgbuild tree."""
    held = _read_marker(executor, dest.rstrip("/")).manifest
    if held is None:
        return None
    entries = scan(source)
    changed = [rel for rel, e in entries.items() if rel not in held.entries or
               held.entries[rel][:6] != e[:6]]  # type, mode, uid, gid, size, mtime
    return tar_size(entries, changed)


def tree_marker(source: Path | Sequence[TreeLayer], cache: DigestCache | None = None) -> bytes:
    """The marker a host holding exactly the tree of ``source`` has (files hashed unless ``cache`` knows them)."""
    run = _Run(cache or DigestCache(), None, False)
    run.scans[0] = scan(source)
    return run.final(0).marker()


def _ship(ex: Executor, dest: str, key: int, send: list[str], remove: list[str], delta: bool, run: _Run,
          res: HostResult) -> str:
    """Send ``send`` (and the new marker) after removing ``remove``; return the digest the host now holds."""
    final: list[Manifest] = []

    def tail() -> list[tuple[str, bytes]]:
        final.append(run.final(key))
        return [(MARKER, final[0].marker()), (END, b"")]  # END last: the host swaps only a whole stream in

    def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if run.cancelled.is_set():
                raise Interrupted()
            res.bytes += len(chunk)
            if run.progress:
                run.progress.advanced(ex.host, len(chunk))
            yield chunk

    members = tar_members(run.scans[key], send, run.cache, tail)
    stream = counted(members)
    if res.compressed:
        stream = zstd_chunks(stream)
    if delta:
        stream = _prefixed(_removal_line(remove), stream)
    data: Iterator[bytes] | bytes = stream
    if tar_size(run.scans[key], send) < _SMALL:
        data = b"".join(stream)  # a small delta rides the open connection (a stream may open its own, see ssh.py)
    try:
        ex.run(["sh", "-c", _script(not delta, res.compressed), "sh", dest], input=data)
    finally:
        with contextlib.suppress(ValueError):  # still running on the feeder thread: it ends when its host is gone
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
