"""Parsers for sealer's cluster instructions: APP, APPCMDS, APPENV, LAUNCH, CMDS, CNI, CSI, KUBEVERSION.

APP, CNI and CSI name an application and where its files come from
(``local://`` paths in the build context, or ``http(s)://`` URLs); APPCMDS and
APPENV attach launch commands and env to a named app; LAUNCH picks the apps
started at run time and CMDS gives raw commands (both must be the last
instruction; see :mod:`imgbuild.kubefile.validate`). KUBEVERSION states the
Kubernetes versions an app image supports, as a semver constraint.
"""

from __future__ import annotations

import re
from typing import Callable

from imgbuild.kubefile import model as m
from imgbuild.kubefile.context import LineCtx
from imgbuild.kubefile.instructions import parse_pairs
from imgbuild.kubefile.substitution import split_words

__all__ = ["SEALER_PARSERS", "SCHEMES"]

SCHEMES = ("local://", "http://", "https://")
_APP_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSION = r"v?(\d+|[xX*])(\.(\d+|[xX*])){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
_CONSTRAINT_RE = re.compile(r"(=|!=|>=?|<=?|=>|=<|~>?|\^)?" + _VERSION)


def _name_and_rest(c: LineCtx) -> tuple[str, int, int]:
    """The app name (first word, substituted), its offset, and the offset of what follows."""
    words = split_words(c.rest, c.escape)
    word, off = words[0]
    off += c.args_off
    name = c.expand(word, off)
    if not _APP_NAME_RE.fullmatch(name):
        raise c.error(f"invalid app name {name!r}: use letters, digits, '.', '_' and '-'", off)
    return name, off, off + len(word)


def _sources(c: LineCtx) -> tuple[str, tuple[str, ...]]:
    name, name_off, after = _name_and_rest(c)
    sources = []
    for word, off in split_words(c.ll.text[after:].rstrip(), c.escape):
        src = c.expand(word, after + off)
        if not src.startswith(SCHEMES):
            raise c.error(f"source {src!r} must start with local://, http:// or https://", after + off)
        if src in SCHEMES:
            raise c.error(f"source {src!r} names no path", after + off)
        sources.append(src)
    if not sources:
        raise c.error(f"app {name!r} needs at least one source (local://path or https://url)", name_off)
    return name, tuple(sources)


def parse_app(c: LineCtx) -> m.App:
    """``APP name local://path|http(s)://url ...``."""
    name, sources = _sources(c)
    return m.App(**c.base(), name=name, sources=sources)


def parse_cni(c: LineCtx) -> m.Cni:
    """``CNI name local://path|http(s)://url ...``."""
    name, sources = _sources(c)
    return m.Cni(**c.base(), name=name, sources=sources)


def parse_csi(c: LineCtx) -> m.Csi:
    """``CSI name local://path|http(s)://url ...``."""
    name, sources = _sources(c)
    return m.Csi(**c.base(), name=name, sources=sources)


def _json_required(c: LineCtx, what: str, example: str) -> tuple[str, ...]:
    argv = c.json_list()
    if not argv:
        raise c.error(f"needs a non-empty JSON array of {what}, e.g. {c.keyword} {example}", c.args_off)
    return argv


def parse_appcmds(c: LineCtx) -> m.AppCmds:
    """``APPCMDS name ["cmd", ...]`` (commands kept raw)."""
    name, name_off, after = _name_and_rest(c)
    sub = LineCtx(c.reader, c.ll, c.keyword, [], after, c.lookup)
    if not sub.rest.strip():
        raise c.error(f"app {name!r} needs a JSON array of commands", name_off)
    cmds = _json_required(sub, "commands", f'{name} ["kubectl apply -f app.yaml"]')
    return m.AppCmds(**c.base(), name=name, cmds=cmds)


def parse_appenv(c: LineCtx) -> m.AppEnv:
    """``APPENV name k=v ...``."""
    name, name_off, after = _name_and_rest(c)
    if not c.ll.text[after:].strip():
        raise c.error(f"app {name!r} needs key=value pairs", name_off)
    return m.AppEnv(**c.base(), name=name, pairs=parse_pairs(c, after, legacy=False))


def parse_launch(c: LineCtx) -> m.Launch:
    """``LAUNCH ["app", ...]``."""
    apps = _json_required(c, "app names", '["app1", "app2"]')
    return m.Launch(**c.base(), apps=tuple(a.strip() for a in apps))


def parse_cmds(c: LineCtx) -> m.Cmds:
    """``CMDS ["cmd", ...]`` (kept raw)."""
    return m.Cmds(**c.base(), cmds=_json_required(c, "commands", '["kubectl get nodes"]'))


def parse_kubeversion(c: LineCtx) -> m.KubeVersion:
    """``KUBEVERSION constraint`` such as ``>=1.20.0 <1.26`` or ``1.22.x || 1.24.x``."""
    constraint = c.expand(c.rest, c.args_off)
    for alt in constraint.split("||"):
        text = re.sub(r"([<>=!~^]+)\s+", r"\1", alt.strip())
        tokens = [t for t in re.split(r"[\s,]+", text) if t]
        if not tokens:
            raise c.error(f"empty version constraint in {constraint!r}", c.args_off)
        for tok in tokens:
            if tok != "-" and not _CONSTRAINT_RE.fullmatch(tok):
                raise c.error(f"invalid version constraint {tok!r} (e.g. >=1.20.0, 1.22.x, ~1.24)", c.args_off)
    return m.KubeVersion(**c.base(), constraint=constraint)


SEALER_PARSERS: dict[str, Callable[[LineCtx], m.Instruction]] = {
    "APP": parse_app,
    "APPCMDS": parse_appcmds,
    "APPENV": parse_appenv,
    "LAUNCH": parse_launch,
    "CMDS": parse_cmds,
    "CNI": parse_cni,
    "CSI": parse_csi,
    "KUBEVERSION": parse_kubeversion,
}
