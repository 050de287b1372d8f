"""Kubefiles: the Dockerfile grammar plus sealer's cluster instructions, parsed into a typed model.

Use::

    from imgbuild.kubefile import parse_file, lint
    kf = parse_file("Kubefile", build_args={"VERSION": "v1.2"})   # KubefileError on a syntax error
    problems = lint(kf, context_dir=".")                           # every semantic problem, [] if none

How a builder consumes the result (a :class:`Kubefile`):

- ``kf.stages`` in order; ``kf.final`` is the image. ``stage.base`` is the
  resolved FROM image (or an earlier stage's name: ``stage.parent`` is then its
  index), ``stage.platform`` the resolved ``--platform``.
- ``stage.instructions`` are in file order (FROM itself is ``stage.from_``).
  Arguments are already substituted where Docker substitutes (COPY, ADD, ENV,
  LABEL, ARG, EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, FROM, APP, APPENV,
  CNI, CSI, KUBEVERSION; the ``--from/--chown/--chmod/--mount/--platform``
  flags); RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD, APPCMDS and CMDS
  keep their text, so sealos' run-time ``$(VAR)`` survives.
- To know the variables a RUN sees, replay the stage: each :class:`Arg` carries
  its effective ``decls[i].value`` (``--build-arg`` > default > global ARG;
  ``None`` = unset) and each :class:`Env` its resolved ``pairs``; ENV wins over
  ARG. ``stage.args`` / ``stage.env`` are the values at the end of the stage.
- COPY/ADD inline files are ``heredocs`` (content already substituted unless
  the delimiter was quoted); a RUN's heredocs are raw, for the shell.

Errors are :class:`~imgbuild.errors.KubefileError` (exit 2) with file, line,
column and the source line; ``err.detail()`` draws a caret under the column.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from imgbuild.errors import ContextError, InputError, KubefileError
from imgbuild.kubefile import model
from imgbuild.kubefile.model import (
    Add,
    App,
    AppCmds,
    AppEnv,
    Arg,
    ArgDecl,
    Cmd,
    Cmds,
    Cni,
    Copy,
    Csi,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Heredoc,
    Instruction,
    KubeVersion,
    Kubefile,
    Label,
    Launch,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stage,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from imgbuild.kubefile.parser import KEYWORDS, parse, platform_args

__all__ = [
    "KEYWORDS",
    "KUBEFILE_NAMES",
    "parse",
    "parse_file",
    "read_kubefile",
    "find_kubefile",
    "lint",
    "platform_args",
    "KubefileError",
    *(name for name in model.__all__ if name != "to_plain"),
]

KUBEFILE_NAMES = ("Kubefile", "Sealfile", "Dockerfile", "Containerfile")


def find_kubefile(context_dir: str | os.PathLike[str]) -> Path:
    """The build file in ``context_dir``: the first of Kubefile, Sealfile, Dockerfile, Containerfile."""
    ctx = Path(context_dir)
    if not ctx.is_dir():
        raise ContextError("the build context is not a directory", str(ctx))
    for name in KUBEFILE_NAMES:
        if (ctx / name).is_file():
            return ctx / name
    raise ContextError(f"no build file found (looked for {', '.join(KUBEFILE_NAMES)}; use -f FILE)", str(ctx))


def read_kubefile(path: str | os.PathLike[str], name: str | None = None) -> str:
    """The text of the Kubefile at ``path``: InputError if unreadable, KubefileError at ``name``:line if not UTF-8."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the Kubefile: {exc.strerror or exc}", str(path)) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise KubefileError("the Kubefile is not UTF-8 text", name or str(path), line) from exc


def parse_file(path: str | os.PathLike[str], build_args: Mapping[str, str] | None = None) -> Kubefile:
    """Read and parse the Kubefile at ``path`` (UTF-8)."""
    return parse(read_kubefile(path), filename=str(path), build_args=build_args)


def lint(
    kubefile: Kubefile,
    context_dir: str | os.PathLike[str] | None = None,
    known_apps: Iterable[str] = (),
) -> list[KubefileError]:
    """Every semantic problem of a parsed Kubefile (and, with a context, of its sources); [] if none.

    ``known_apps`` are app names that exist in the base image, for LAUNCH.
    """
    from imgbuild.kubefile.validate import check

    return check(kubefile, kubefile.source, context_dir, known_apps)
