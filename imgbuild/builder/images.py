"""Find every container image a build context needs, and say where each was found.

A cluster image installs offline, so it must carry the images its charts and
manifests use. :func:`find_images` reads the context the way sealos and
sealer lay it out, but YAML-aware instead of line-scanning:

* ``manifests/**/*.{yaml,yml}`` and ``*.tmpl``: every document, every
  ``image:`` value anywhere in the tree and every ``{registry?, repository,
  tag|digest}`` map (see :mod:`imgbuild.builder.yamlscan`);
* ``charts/<chart>/`` and ``charts/*.tgz`` with ``charts/<chart>.values.yaml``
  overrides and subcharts, rendered as ``helm template`` renders them (see
  :mod:`imgbuild.builder.helm`; a chart that cannot be rendered is read
  statically by :mod:`imgbuild.builder.charts`, with a warning);
* ``images/shim/*`` and ``manifests/imageList``: one reference per line
  (``docker-daemon:REF``: exported from the Docker daemon, bundled as ``REF``);
* ``images/skopeo/tar.txt``: images shipped as archives
  (``docker-archive:file.tar@repo:tag``), reported separately;
* ``--image-list`` files add, ``--ignore-image-list`` files and ``.sealignore``
  at the context root remove (compared after normalisation).

Values that are templated or not a valid reference are reported in
``skipped``, never guessed. One image found in several places is one entry
with several sources; the result is sorted, so the same context always gives
the same output.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from imgbuild.builder.context import BuildContext
from imgbuild.builder.yamlscan import Hit, decode, is_templated, scan_yaml_text
from imgbuild.errors import ContextError, InputError, InvalidReference, UnsafePathError
from imgbuild.reference import parse_reference

__all__ = [
    "Source",
    "FoundImage",
    "Skipped",
    "ArchiveImage",
    "Note",
    "ImageSet",
    "find_images",
    "read_image_list",
]

_MANIFEST_SUFFIXES = (".yaml", ".yml", ".tmpl")
_TRANSPORTS = ("docker-archive", "oci-archive")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")
DAEMON = "docker-daemon:"  # an images/shim line naming a Docker daemon image (imgbuild.oci.daemon.TRANSPORT)
_TEMPLATED = "templated value: only known at install time (list the image in images/shim to bundle it)"


@dataclass(frozen=True, order=True)
class Source:
    """Where an image was found: file (relative to the context), 1-based line, and how."""

    file: str
    line: int
    how: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class FoundImage:
    """One image the context needs: its normalised reference, how it was first written, and every source."""

    ref: str
    original: str
    sources: tuple[Source, ...]
    daemon: bool = False  # written as docker-daemon:REF: exported from the Docker daemon, bundled as REF

    @property
    def where(self) -> str:
        """The first source as ``file:line``, with ``(+N more)`` if there are others."""
        more = len(self.sources) - 1
        return str(self.sources[0]) + (f" (+{more} more)" if more else "")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = {"ref": self.ref, "original": self.original, "sources": [asdict(s) for s in self.sources]}
        return {**out, "daemon": True} if self.daemon else out


@dataclass(frozen=True, order=True)
class Skipped:
    """A value that looked like an image but was not used: templated or not a valid reference."""

    file: str
    line: int
    value: str
    reason: str


@dataclass(frozen=True, order=True)
class ArchiveImage:
    """An image shipped as an archive in ``images/skopeo`` (``transport:path@ref``)."""

    transport: str
    path: str
    ref: str
    source: Source


@dataclass(frozen=True, order=True)
class Note:
    """Something worth telling the user that is not an image (a disabled subchart, a line-scanned file)."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}{'' if self.line is None else f':{self.line}'}: {self.message}"


@dataclass(frozen=True)
class ImageSet:
    """Everything :func:`find_images` learnt about a context, each list sorted."""

    found: tuple[FoundImage, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    archives: tuple[ArchiveImage, ...] = ()
    ignored: tuple[FoundImage, ...] = ()
    notes: tuple[Note, ...] = ()
    platform: str | None = None
    warnings: tuple[Note, ...] = ()

    @property
    def refs(self) -> list[str]:
        """The normalised references found, sorted."""
        return [f.ref for f in self.found]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``images``, ``skipped``, ``archives``, ``ignored``, ``notes``, ``warnings``, ``platform``)."""
        return {
            "images": [f.to_dict() for f in self.found],
            "skipped": [asdict(s) for s in self.skipped],
            "archives": [asdict(a) for a in self.archives],
            "ignored": [f.to_dict() for f in self.ignored],
            "notes": [asdict(n) for n in self.notes],
            "warnings": [asdict(n) for n in self.warnings],
            "platform": self.platform,
        }


def find_images(context_dir: str | os.PathLike[str], *, image_lists: Iterable[str | os.PathLike[str]] = (),
                ignore_lists: Iterable[str | os.PathLike[str]] = (), platform: str | None = None,
                helm: str = "auto", executor=None) -> ImageSet:
    """Find every image the build context needs, with sources, skipped values and archives.

    ``platform`` (``os/arch[/variant]``) is validated and carried on the result for the pull
    step; discovery itself does not depend on it. Invalid lines in ``image_lists`` or
    ``ignore_lists`` (given by the user) raise :class:`InvalidReference` with ``file:line``.
    Charts are rendered with the ``helm`` binary on ``executor``'s PATH (``helm``: auto,
    always or never) or the built-in renderer; see :mod:`imgbuild.builder.helm`.
    """
    from imgbuild.builder.helm import scan_charts_rendered

    root = Path(context_dir).resolve()
    if not root.is_dir():
        raise ContextError("build context is not a directory", str(context_dir))
    if platform is not None and not _PLATFORM.fullmatch(platform):
        raise InputError(f"invalid platform {platform!r}: expected os/arch[/variant], e.g. linux/amd64")
    ignored_file = BuildContext.open(root).ignored
    hits: list[Hit] = []
    notes: list[Note] = []
    _scan_manifests(root, ignored_file, hits, notes)
    charts = scan_charts_rendered(root, ignored_file, helm=helm, executor=executor)
    hits.extend(charts.hits)
    notes.extend(Note(f, n, m) for f, n, m in charts.notes)
    hits.extend(_context_lists(root, ignored_file))
    for path in image_lists:
        hits.extend(_user_list(path, "image-list"))
    found, skipped = _classify(hits)
    ignore = _ignore_refs(root, ignore_lists, notes)
    kept = [f for f in found if f.ref not in ignore]
    ignored = [f for f in found if f.ref in ignore]
    warnings = tuple(Note(f, n, m) for f, n, m in charts.warnings)
    return ImageSet(tuple(kept), tuple(sorted(set(skipped))), tuple(_archives(root)), tuple(ignored),
                    tuple(sorted(set(notes), key=lambda n: (n.file, n.line or 0, n.message))), platform, warnings)


def _walk_files(root: Path, top: Path, ignored: Callable[[str], bool]) -> list[Path]:
    """Regular files under ``top`` (sorted) not excluded by the context's ignore file; a link leaving ``root`` is an error."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if ignored(path.relative_to(root).as_posix()):
                continue
            real = path.resolve()
            if not real.is_relative_to(root):
                raise UnsafePathError("symbolic link points outside the build context", path.relative_to(root).as_posix())
            if real.is_file() and not name.startswith("."):
                out.append(path)
    return out


def _scan_manifests(root: Path, ignored: Callable[[str], bool], hits: list[Hit], notes: list[Note]) -> None:
    top = root / "manifests"
    if not top.is_dir():
        return
    for path in _walk_files(root, top, ignored):
        if not path.name.endswith(_MANIFEST_SUFFIXES):
            continue
        rel = path.relative_to(root).as_posix()
        found, note = scan_yaml_text(decode(path.read_bytes(), rel), rel, "manifest")
        hits.extend(found)
        if note:
            notes.append(Note(rel, None, note))


def read_image_list(text: str, file: str, how: str) -> list[Hit]:
    """Hits from a one-reference-per-line list: blanks and ``#`` comments (whole-line or trailing) skipped."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        value = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        if value:
            out.append(Hit(value, file, n, how))
    return out


def _context_lists(root: Path, ignored: Callable[[str], bool]) -> list[Hit]:
    hits: list[Hit] = []
    shim = root / "images" / "shim"
    paths = _walk_files(root, shim, ignored) if shim.is_dir() else []
    image_list = root / "manifests" / "imageList"
    if image_list.is_file() and not ignored("manifests/imageList"):
        paths.append(image_list)
    for path in paths:
        rel = path.relative_to(root).as_posix()
        how = "image-list" if path == image_list else "shim-list"
        hits.extend(read_image_list(decode(path.read_bytes(), rel), rel, how))
    return hits


def _user_list(path: str | os.PathLike[str], how: str) -> list[Hit]:
    """A list file named on the command line; every line must be a valid reference."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read image list: {exc.strerror}", str(path)) from exc
    hits = read_image_list(decode(text, str(path)), str(path), how)
    for h in hits:
        try:
            parse_reference(h.value[len(DAEMON):] if h.value.startswith(DAEMON) else h.value)
        except InvalidReference as exc:
            raise InvalidReference(exc.message, f"{h.file}:{h.line}") from exc
    return hits


def _classify(hits: list[Hit]) -> tuple[list[FoundImage], list[Skipped]]:
    """Group valid references by normalised form; everything else becomes a Skipped."""
    by_ref: dict[str, tuple[str, set[Source]]] = {}
    skipped = []
    for h in sorted(hits, key=lambda h: (h.file, h.line, h.value)):
        if h.problem or is_templated(h.value):
            skipped.append(Skipped(h.file, h.line, h.value, h.problem or _TEMPLATED))
            continue
        daemon = h.value.startswith(DAEMON)
        try:
            ref = parse_reference(h.value[len(DAEMON):] if daemon else h.value).normalized
        except InvalidReference as exc:
            skipped.append(Skipped(h.file, h.line, h.value, exc.message))
            continue
        by_ref.setdefault(ref, (h.value, set()))[1].add(Source(h.file, h.line, h.how))
    found = [FoundImage(ref, orig, tuple(sorted(srcs)), orig.startswith(DAEMON))
             for ref, (orig, srcs) in sorted(by_ref.items())]
    return found, skipped


def _ignore_refs(root: Path, ignore_lists: Iterable[str | os.PathLike[str]], notes: list[Note]) -> set[str]:
    """Normalised refs to leave out: ``.sealignore`` (as sealos' ``registry save``) and ``--ignore-image-list``.

    ``.sealignore`` is also read as a file-ignore list by :mod:`imgbuild.builder.context`, so a line
    there that is not an image reference (``*.md``) is noted and passed over, not an error.
    """
    out = set()
    sealignore = root / ".sealignore"
    if sealignore.is_file():
        for h in read_image_list(decode(sealignore.read_bytes(), ".sealignore"), ".sealignore", "ignore"):
            try:
                out.add(parse_reference(h.value).normalized)
            except InvalidReference:
                notes.append(Note(h.file, h.line, f"{h.value!r} is not an image reference; not used to filter images"))
    for path in ignore_lists:
        out.update(parse_reference(h.value).normalized for h in _user_list(path, "ignore"))
    return out


def _archives(root: Path) -> list[ArchiveImage]:
    """Entries of ``images/skopeo/tar.txt``: ``transport:path@ref``, the path inside ``images/skopeo``."""
    listing = root / "images" / "skopeo" / "tar.txt"
    if not listing.is_file():
        return []
    rel = listing.relative_to(root).as_posix()
    out = []
    for h in read_image_list(decode(listing.read_bytes(), rel), rel, "archive-list"):
        out.append(_archive(root, listing.parent, h))
    return sorted(out)


def _archive(root: Path, base: Path, h: Hit) -> ArchiveImage:
    where = f"{h.file}:{h.line}"
    transport, sep, rest = h.value.partition(":")
    path, at, ref = rest.partition("@")
    if not sep or transport not in _TRANSPORTS or not at or not path or not ref:
        raise ContextError(f"expected <docker-archive|oci-archive>:<file>@<image>, got {h.value!r}", where)
    target = (base / path).resolve()
    if Path(path).is_absolute() or not target.is_relative_to(root):
        raise UnsafePathError(f"archive path leaves the build context: {path!r}", where)
    if not target.is_file():
        raise ContextError(f"archive file not found: {path}", where)
    try:
        normalized = parse_reference(ref).normalized
    except InvalidReference as exc:
        raise InvalidReference(exc.message, where) from exc
    return ArchiveImage(transport, target.relative_to(root).as_posix(), normalized, Source(h.file, h.line, h.how))
