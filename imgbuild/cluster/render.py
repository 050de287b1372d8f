"""Rendering an image tree's ``*.tmpl`` files per host, as sealos does before it distributes the tree.

:meth:`TemplateSet.load` finds every regular ``*.tmpl`` file under a (read-only,
mounted) image tree and parses each once, so a bad template fails at load with
``file:line:col``. :meth:`TemplateSet.render_into` executes them all for one host,
whose effective env is the data (``{{ .registryDomain }}``, with
``missingkey=error``: a variable the host lacks is an error naming file:line and
the key), and writes each result without its ``.tmpl`` suffix under a separate
per-host directory, keeping the template's mode. It returns the sha256 of each
file, which the cluster state records. Symlinks named ``*.tmpl`` are not
rendered (their targets only mean something on a host): see ``skipped``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from imgbuild.errors import ImgbuildError
from imgbuild.fsutil import atomic_write
from imgbuild.gotemplate import Template, TemplateError

__all__ = ["TemplateSet", "RenderedTemplate", "SUFFIX"]

SUFFIX = ".tmpl"


@dataclass(frozen=True)
class RenderedTemplate:
    """One parsed template: its path in the tree, the path it renders to, its file mode."""

    source: str
    target: str
    mode: int
    template: Template


class TemplateSet:
    """The parsed ``*.tmpl`` files of one image tree, ready to be rendered for any number of hosts."""

    def __init__(self, root: Path, templates: list[RenderedTemplate], skipped: list[str]) -> None:
        self.root = root
        self.templates = templates
        self.skipped = skipped

    @classmethod
    def load(cls, tree: Path) -> "TemplateSet":
        """Parse and compile every ``*.tmpl`` under ``tree``; TemplateError (file:line:col) for the first bad one."""
        templates, skipped = [], []
        for rel in _find(tree):
            path = tree / rel
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode):
                skipped.append(rel)
                continue
            template = Template.parse(_read(path, rel), name=rel, missingkey="error")
            template.lookup(rel)  # compiled now, once, rather than for the first host
            templates.append(RenderedTemplate(rel, rel[: -len(SUFFIX)], stat.S_IMODE(st.st_mode), template))
        return cls(tree, templates, skipped)

    def __len__(self) -> int:
        return len(self.templates)

    def render(self, data: Mapping) -> dict[str, str]:
        """Execute every template with ``data``; target path -> text. TemplateError names file:line:col."""
        values = dict(data)
        return {t.target: t.template.execute(values) for t in self.templates}

    def render_into(self, dest: Path, data: Mapping, *, sync: bool = False) -> dict[str, str]:
        """Render for one host into ``dest`` (each file atomically, with its template's mode); target -> sha256.

        A file that already holds exactly the rendered content and mode is left alone. ``sync`` also
        fsyncs each file written: rendered files are made again by a re-run, so it is off by default.
        """
        values = dict(data)
        digests: dict[str, str] = {}
        made: set[Path] = set()
        for t in self.templates:
            body = t.template.execute(values).encode()
            path = dest / t.target
            try:
                if path.parent not in made:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    made.add(path.parent)
                if not _same(path, body, t.mode):
                    atomic_write(path, body, mode=t.mode, sync=sync)
            except OSError as exc:
                raise ImgbuildError(f"cannot write rendered file: {exc.strerror or exc}", str(path)) from exc
            digests[t.target] = hashlib.sha256(body).hexdigest()
        return digests


def _same(path: Path, body: bytes, mode: int) -> bool:
    """Whether ``path`` already is a regular file with exactly ``body`` and ``mode`` (a re-render writes nothing)."""
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode) or st.st_size != len(body) or stat.S_IMODE(st.st_mode) != mode:
            return False
        return path.read_bytes() == body
    except OSError:
        return False


def _find(tree: Path) -> list[str]:
    """Relative paths of the entries named ``*.tmpl`` under ``tree``, sorted (symlinked dirs not followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(tree, onerror=_walk_error):
        dirnames.sort()
        base = Path(dirpath).relative_to(tree)
        found.extend(str(base / f) if str(base) != "." else f
                     for f in filenames if f.endswith(SUFFIX) and len(f) > len(SUFFIX))
    return sorted(found)


def _walk_error(exc: OSError) -> None:
    raise ImgbuildError(f"cannot read the image tree: {exc.strerror or exc}", exc.filename) from exc


def _read(path: Path, rel: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"not UTF-8 text (byte {exc.start})", rel) from exc
    except OSError as exc:
        raise ImgbuildError(f"cannot read template: {exc.strerror or exc}", str(path)) from exc
