"""rootfs/: an image as a file tree.

``mount`` makes an image's merged rootfs appear at a directory (overlayfs over
the unpacked-layer cache of ``unpack``, or a copy), described by the records of
``records``; ``commit`` turns a writable mount's changes into a new layer;
``diff`` and ``difftree`` compare images and directories; ``prune`` removes the
cache entries of this package that nothing uses any more.
"""

__all__: list[str] = []
