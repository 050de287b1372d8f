"""Sending a transfer unit to a host: one tar stream of its layered trees, into a temp dir renamed into place.

The layers of a :class:`~imgbuild.engine.units.Unit` are merged here as an
overlay would merge them (a later layer's file replaces an earlier one's;
directories merge; excluded prefixes are left out) and streamed as one
uncompressed tar through the host's executor, which pipes it into ``tar -x``
in ``<dest>.imgbuild-new``; the old tree is then swapped out by two renames,
so a host holds the old tree or the new one, never a half-written mix. A
unit whose key the host's state already holds is not sent at all (the
applier's step key), and the key is also written on the host, in
``<dest>/.imgbuild-unit``, so what a host holds can be read there.
"""

from __future__ import annotations

import os
import shlex
import stat
import tarfile
import threading
from pathlib import Path
from typing import Callable, Iterator

from imgbuild.engine.exec import Executor
from imgbuild.engine.units import Layer, Unit
from imgbuild.errors import InputError

__all__ = ["merged_entries", "unit_stream", "ship_unit", "MARKER"]

MARKER = ".imgbuild-unit"
_CHUNK = 1 << 20


def merged_entries(layers: tuple[Layer, ...]) -> dict[str, Path]:
    """Relative path -> the local file that wins for it, across ``layers`` in order."""
    out: dict[str, Path] = {}
    for layer in layers:
        root = Path(layer.path)
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir
            if rel_dir == "" and layer.exclude:
                dirnames[:] = [d for d in dirnames if d not in layer.exclude]
                filenames = [f for f in filenames if f not in layer.exclude]
            for name in dirnames + filenames:
                rel = os.path.join(layer.prefix, rel_dir, name) if (layer.prefix or rel_dir) else name
                src = Path(dirpath) / name
                if name in dirnames and src.is_symlink():
                    dirnames.remove(name)  # a symlink to a directory is sent as the link, not followed
                prev = out.get(rel)
                if prev is not None and prev.is_dir() and not prev.is_symlink() and src.is_dir():
                    out[rel] = src  # directories merge; the later one's mode wins
                else:
                    _drop_below(out, rel)
                    out[rel] = src
        if layer.prefix:
            out.setdefault(layer.prefix, root)
    return out


def _drop_below(entries: dict[str, Path], rel: str) -> None:
    """A file replacing a directory hides what an earlier layer had below it."""
    prev = entries.get(rel)
    if prev is not None and prev.is_dir() and not prev.is_symlink():
        prefix = rel + "/"
        for key in [k for k in entries if k.startswith(prefix)]:
            del entries[key]


def unit_stream(unit: Unit, on_bytes: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The unit's merged tree as tar byte chunks (sorted, names relative to the destination), plus its marker."""
    entries = merged_entries(unit.layers)
    pipe_r, pipe_w = os.pipe()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with os.fdopen(pipe_w, "wb", buffering=_CHUNK) as fh, \
                    tarfile.open(fileobj=fh, mode="w|", format=tarfile.PAX_FORMAT, bufsize=_CHUNK) as tar:
                for rel in sorted(entries):
                    _add(tar, entries[rel], rel)
                data = (unit.key + "\n").encode()
                info = tarfile.TarInfo(MARKER)
                info.size, info.mode = len(data), 0o644
                import io

                tar.addfile(info, io.BytesIO(data))
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            errors.append(exc)

    thread = threading.Thread(target=write, daemon=True, name="unit-tar")
    thread.start()
    with os.fdopen(pipe_r, "rb", buffering=0) as rd:
        while True:
            chunk = rd.read(_CHUNK)
            if not chunk:
                break
            if on_bytes:
                on_bytes(len(chunk))
            yield chunk
    thread.join()
    if errors:
        raise InputError(f"cannot read {unit.what} to send it: {errors[0]}")


def _add(tar: tarfile.TarFile, src: Path, rel: str) -> None:
    info = tar.gettarinfo(str(src), arcname=rel)
    if info is None:  # a socket or the like: not part of an image tree
        return
    if info.isreg():
        with open(src, "rb") as fh:
            tar.addfile(info, fh)
    else:
        if info.isdir():
            info.mode = stat.S_IMODE(os.lstat(src).st_mode)
        tar.addfile(info)


def ship_unit(executor: Executor, unit: Unit, on_bytes: Callable[[int], None] | None = None) -> None:
    """Send ``unit`` to ``executor``'s host: extract into a temp dir, then swap it in with two renames."""
    dest = unit.dest.rstrip("/")
    q = shlex.quote
    new, old = q(dest + ".imgbuild-new"), q(dest + ".imgbuild-old")
    script = (f"set -e; rm -rf {new} {old}; mkdir -p {new}; tar -x -p -f - -C {new}; "
              f"if [ -e {q(dest)} ]; then mv {q(dest)} {old}; fi; mv {new} {q(dest)}; rm -rf {old}")
    executor.run(["sh", "-c", script], input=unit_stream(unit, on_bytes))
