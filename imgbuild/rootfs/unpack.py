"""The unpacked-layer cache: each layer extracted once, shared by every image and mount that uses it.

``<home>/cache/layers/<diffID hex>/`` (of the :class:`~imgbuild.home.Home` passed in) holds one layer as an overlayfs
lower directory: whiteouts kept as overlayfs whiteouts (character device 0/0,
``trusted.overlay.opaque=y`` on opaque directories), so a kernel (or
fuse-overlayfs) overlay of these directories shows exactly what a container
runtime shows. A layer is unpacked into ``.tmp-<hex>-<random>/`` while holding
the per-layer lock ``.locks/<hex>.lock`` (fcntl), its uncompressed stream is
checked against the diffID, the data is synced, and the directory is renamed
into place: concurrent unpackers of the same layer wait for the first and find
it done, and a crash leaves only a temp directory that the next unpacker of
that layer removes. Cached directories are never written to (overlays mount
them read-only as lower layers). The cache is 0700 whatever the Home's mode, and
holds no device nodes and no setuid/setgid files; every layer's expansion is
bounded (:mod:`imgbuild.rootfs.policy`).

:func:`extract_image` is the fallback used without overlay support: every
layer applied in order into one plain directory, whiteouts applied.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from imgbuild.errors import DigestMismatch, InputError, StoreError
from imgbuild.fsutil import private_dir, remove_tree
from imgbuild.home import Home
from imgbuild.locks import exclusive_lock
from imgbuild.oci.layer import extract_layer, open_layer
from imgbuild.oci.model import Descriptor, Digest, MediaType
from imgbuild.oci.store import Image
from imgbuild.rootfs.policy import DEFAULT_POLICY, UnpackPolicy

__all__ = ["UnpackedLayer", "HashingReader", "layer_cache", "unpack_layer", "unpack_image", "extract_image", "cached_layers"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class UnpackedLayer:
    """One cached layer directory; ``unpacked`` is True if this call extracted it (False: cache hit)."""

    diff_id: Digest
    path: Path
    unpacked: bool


def layer_cache(home: Home) -> Path:
    """The directory holding the unpacked layers of ``home`` (``<home>/cache/layers``)."""
    return home.cache / "layers"


def cached_layers(home: Home) -> list[Digest]:
    """The diffIDs whose layers are unpacked in the cache of ``home``."""
    root = layer_cache(home)
    if not root.is_dir():
        return []
    return sorted(Digest.from_hex(p.name) for p in root.iterdir() if p.is_dir() and len(p.name) == 64)


class HashingReader:
    """A read-only stream that hashes what passes through it (to check a layer against its diffID).

    With ``limit`` it raises InputError(``refusal``) once more than ``limit`` bytes passed (a decompression bomb).
    """

    def __init__(self, raw: BinaryIO, limit: int = 0, refusal: str = "", where: str | None = None) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count, self.limit, self.refusal, self.where = 0, limit, refusal, where

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:  # in chunks, so a limit stops a bomb before it is all in memory
            return b"".join(iter(lambda: self.read(_CHUNK), b""))
        data = self.raw.read(n)
        self.hash.update(data)
        self.count += len(data)
        if self.limit and self.count > self.limit:
            raise InputError(self.refusal or f"layer expands past {self.limit:,} bytes", self.where)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever the tar reader left after its end-of-archive marker."""
        while self.read(_CHUNK):
            pass


def _extract_checked(image: Image, desc: Descriptor, diff_id: Digest, dest: Path, *, overlay: bool,
                     policy: UnpackPolicy = DEFAULT_POLICY) -> None:
    """Extract one layer into ``dest`` as ``policy`` allows, verifying its uncompressed bytes against ``diff_id``."""
    with image.open_layer(desc) as raw:
        reader = HashingReader(open_layer(raw, desc.media_type), policy.allowance(desc.size),
                               policy.refusal(desc.size), f"layer {desc.digest}")
        extract_layer(reader, MediaType.OCI_LAYER, dest, whiteouts=True, devices=policy.special_files,
                      setid=policy.special_files, keep_whiteout_files=overlay)
        reader.drain()
    actual = f"sha256:{reader.hash.hexdigest()}"
    if diff_id.algorithm == "sha256" and actual != diff_id:
        raise DigestMismatch(str(diff_id), actual, where=f"layer {desc.digest}")


def _layer_pairs(image: Image) -> list[tuple[Descriptor, Digest]]:
    diff_ids = image.config.diff_ids
    if len(diff_ids) != len(image.layers):
        raise StoreError(f"image has {len(image.layers)} layers but {len(diff_ids)} diffIDs", str(image.digest))
    return list(zip(image.layers, diff_ids))


def _sync(path: Path) -> None:
    """Flush the filesystem holding ``path`` (syncfs where available) so a rename publishes whole data."""
    try:
        import ctypes

        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if ctypes.CDLL(None, use_errno=True).syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


OnUnpack = Callable[[Descriptor], None]


def _discard(tree: Path) -> None:
    """Remove a partial unpack of any depth, quietly: the next unpacker of that layer retries."""
    try:
        remove_tree(tree)
    except OSError:
        pass


def unpack_layer(image: Image, desc: Descriptor, diff_id: Digest, home: Home,
                 on_unpack: OnUnpack | None = None, policy: UnpackPolicy = DEFAULT_POLICY) -> UnpackedLayer:
    """The directory of one layer of ``image`` in ``home``'s cache, unpacked first if no one has yet (``on_unpack`` is told).

    The cache (0700, whatever the Home's mode) never holds device nodes or setuid/setgid files: a ``policy``
    asking for them is refused; its expansion limit applies.
    """
    if policy.special_files:
        raise InputError("the shared layer cache holds no device nodes or setuid files: extract a private copy")
    private_dir(home.cache)
    root = layer_cache(home)
    final = root / diff_id.hex
    if final.is_dir():
        return UnpackedLayer(diff_id, final, False)
    with exclusive_lock(root / ".locks" / f"{diff_id.hex}.lock").hold():
        if final.is_dir():
            return UnpackedLayer(diff_id, final, False)
        for stale in root.glob(f".tmp-{diff_id.hex}-*"):
            _discard(stale)
        tmp = root / f".tmp-{diff_id.hex}-{os.urandom(4).hex()}"
        if on_unpack:
            on_unpack(desc)
        try:
            _extract_checked(image, desc, diff_id, tmp, overlay=True, policy=policy)
            _sync(tmp)
            os.rename(tmp, final)
        except BaseException:
            _discard(tmp)
            raise
    return UnpackedLayer(diff_id, final, True)


def unpack_image(image: Image, home: Home | None = None, on_unpack: OnUnpack | None = None,
                 policy: UnpackPolicy = DEFAULT_POLICY) -> list[UnpackedLayer]:
    """Every layer of ``image`` in ``home``'s cache (default: the Home of the image's store), base first.

    ``on_unpack`` hears of each layer actually unpacked; ``policy`` bounds how far each may expand.
    """
    home = home or image.store.needs_home("the unpacked-layer cache")
    return [unpack_layer(image, desc, diff_id, home, on_unpack, policy) for desc, diff_id in _layer_pairs(image)]


def extract_image(image: Image, dest: Path, on_unpack: OnUnpack | None = None,
                  policy: UnpackPolicy = DEFAULT_POLICY) -> None:
    """Apply each layer of ``image`` in order into the plain directory ``dest``, whiteouts applied, under ``policy``."""
    dest.mkdir(parents=True, exist_ok=True)
    for desc, diff_id in _layer_pairs(image):
        if on_unpack:
            on_unpack(desc)
        _extract_checked(image, desc, diff_id, dest, overlay=False, policy=policy)
