"""Whether a tar stream to a host should go through zstd: only when the link, not this machine, is the limit.

Measured, not guessed, once per host and tree per :func:`~imgbuild.engine.transfer.distribute` call, and
only for streams of at least 64 MiB to a host that has ``zstd``:

1. the ratio r and the one-core rate Z1 of zstd level 1 on a sample (up to 8 MiB of the files to send);
   when the cores idle right now (0.2 s of ``/proc/stat``) could not compress at 20 MB/s, that is the
   answer already (no link is probed: compression could only win on a link slower than that);
2. the link rate L: 8 MiB of incompressible bytes sent to ``cat > /dev/null`` on the host over the
   connection already open, timed whole;
3. the CPU left over while the link runs flat out: the idle share of this machine's cores during that probe
   (``/proc/stat``), times the core count. Encryption, and on local sandbox hosts the hosts' own sshd and
   tar, use the rest; compression can only use what is left, so Zeff = Z1 x spare cores.

Compressed, the stream moves raw bytes at min(Zeff, L / r); raw, at L. zstd is used when r <= 0.9 and
Zeff >= 1.1 L: the compressed pipe is then at least 10% faster. On a real network (1 GbE, cores idle) that
is the usual outcome for image trees; on hosts that share this machine's CPU it is usually not.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from imgbuild.engine._manifest import Entry
from imgbuild.engine.exec import Executor

__all__ = ["Choice", "decide", "AUTO_MIN_BYTES"]

AUTO_MIN_BYTES = 64 << 20
_SAMPLE = 8 << 20
_PROBE_BYTES = 8 << 20
_FLOOR = 20e6  # bytes/s: a link slower than this is rare enough not to probe for when the CPU is this busy


@dataclass(frozen=True)
class Choice:
    """The decision and the numbers behind it, for logs and ``--json``."""

    zstd: bool
    why: str


def decide(ex: Executor, forced: bool | None, has_zstd: bool, total: int, entries: dict[str, Entry],
           send: list[str], samples: dict[int, tuple[float, float]], key: int) -> Choice:
    """Forced, or measured as the module says; ``samples`` caches the sample per tree across hosts."""
    if forced is not None:
        return Choice(forced, "forced")
    if not has_zstd:
        return Choice(False, "host has no zstd")
    if total < AUTO_MIN_BYTES:
        return Choice(False, f"under {AUTO_MIN_BYTES >> 20} MiB")
    if key not in samples:
        samples[key] = _sample(entries, send)
    ratio, z1 = samples[key]
    if ratio > 0.9:
        return Choice(False, f"sample ratio {ratio:.2f}")
    idle = z1 * _spare_now()
    if idle < _FLOOR:
        return Choice(False, f"no spare CPU: zstd -1 would run at {idle / 1e6:.0f} MB/s here now")
    link, spare = _probe(ex)
    zeff = z1 * spare
    why = (f"link {link / 1e6:.0f} MB/s, zstd -1 {z1 / 1e6:.0f} MB/s per core x {spare:.2f} spare cores, "
           f"ratio {ratio:.2f}")
    return Choice(zeff >= 1.1 * link, why)


def _sample(entries: dict[str, Entry], send: list[str]) -> tuple[float, float]:
    """(compressed/raw ratio, one-core bytes per second) of zstd -1 on up to 8 MiB of the files to send."""
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
    out = zstandard.ZstdCompressor(level=1).compress(bytes(data))
    return len(out) / len(data), len(data) / max(time.perf_counter() - begin, 1e-6)


def _cpu() -> tuple[int, int]:
    """(idle, total) jiffies of all cores since boot; (0, 0) where /proc/stat is unreadable."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)


def _spare_now(seconds: float = 0.2) -> float:
    """Cores idle on this machine over the next ``seconds``."""
    idle0, total0 = _cpu()
    time.sleep(seconds)
    idle1, total1 = _cpu()
    return (idle1 - idle0) / (total1 - total0) * (os.cpu_count() or 1) if total1 > total0 else 1.0


def _probe(ex: Executor) -> tuple[float, float]:
    """(link bytes per second, spare cores) while 8 MiB of random bytes go to ``cat > /dev/null`` on the host.

    Sent as bytes, so it rides the connection already open (no new login); timed whole, the command's
    start-up counted against the link (a fast link is rated a little slow, never fast).
    """
    block = os.urandom(_PROBE_BYTES)
    cpu0, begin = _cpu(), time.perf_counter()
    ex.run(["sh", "-c", "cat > /dev/null"], input=block)
    took, cpu1 = time.perf_counter() - begin, _cpu()
    (idle0, total0), (idle1, total1) = cpu0, cpu1
    spare = (idle1 - idle0) / (total1 - total0) * (os.cpu_count() or 1) if total1 > total0 else 1.0
    return len(block) / max(took, 1e-6), spare
