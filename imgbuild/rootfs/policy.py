"""How far an unpack trusts the layers it writes: special files and expansion.

Layers come from registries and archives anyone can write, and unpacked layers
are shared by every mount. By default an unpack makes no device nodes and drops
setuid/setgid bits from files (as rootless buildah and containerd do), and a
layer may expand to at most ``max_ratio`` times its compressed size (never less
than ``min_allowance``), so a decompression bomb stops with an error instead of
filling the disk. A caller that trusts an image asks for more with its own
:class:`UnpackPolicy` (``imgbuild mount --special-files --max-expansion N``).
"""

from __future__ import annotations

from dataclasses import dataclass

from imgbuild.errors import InputError

__all__ = ["UnpackPolicy", "DEFAULT_POLICY"]


@dataclass(frozen=True)
class UnpackPolicy:
    """What an unpack allows: device nodes and setuid/setgid bits (``special_files``) and how far a layer expands."""

    special_files: bool = False
    max_ratio: int = 100               # uncompressed bytes per compressed byte; 0: no limit
    min_allowance: int = 256 << 20     # a layer may always expand this far, whatever its compressed size

    def __post_init__(self) -> None:
        if self.max_ratio < 0 or self.min_allowance < 0:
            raise InputError(f"expansion limits cannot be negative (ratio {self.max_ratio}, "
                             f"allowance {self.min_allowance})")

    def allowance(self, compressed_size: int) -> int:
        """The most uncompressed bytes a layer of ``compressed_size`` bytes may expand to (0: no limit)."""
        if self.max_ratio == 0:
            return 0
        return max(self.min_allowance, compressed_size * self.max_ratio)

    def refusal(self, compressed_size: int) -> str:
        """The message for a layer of ``compressed_size`` bytes that expanded past its allowance."""
        return (f"layer expands past {self.allowance(compressed_size):,} bytes, over {self.max_ratio}x its "
                f"{compressed_size:,} compressed bytes: refusing a possible decompression bomb (if you trust "
                f"this image, raise the limit with --max-expansion, 0 for none)")


DEFAULT_POLICY = UnpackPolicy()
