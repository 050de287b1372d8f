"""Parsers for the Dockerfile instructions: one function per keyword, LineCtx in, typed instruction out.

Each function reads the arguments the way BuildKit's Dockerfile frontend does
(exec form vs shell form, ``key=value`` words, whitespace-separated fields) and
substitutes variables only where Docker does: FROM, COPY, ADD, ENV, LABEL,
ARG defaults, EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL (and the ``--from``,
``--chown``, ``--chmod``, ``--platform``, ``--mount`` flags). RUN, CMD,
ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD keep their text.
"""

from __future__ import annotations

import re
from typing import Callable

from imgbuild.kubefile import model as m
from imgbuild.kubefile.context import LineCtx
from imgbuild.kubefile.lines import _HEREDOC_RE
from imgbuild.kubefile.substitution import expand_vars_only, split_words

__all__ = ["DOCKER_PARSERS", "parse_pairs"]

STAGE_NAME_RE = re.compile(r"[a-z][a-z0-9\-_.]*")
_PORT_RE = re.compile(r"(\d+(-\d+)?|[0-9.]+:\d*:\d+(-\d+)?)(/(tcp|udp|sctp))?", re.IGNORECASE)
_DURATION_RE = re.compile(r"0|([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+")
_CHMOD_RE = re.compile(r"[0-7]{3,4}|([ugoa]*[-+=]([rwxXst]*|[ugo]))(,[ugoa]*[-+=]([rwxXst]*|[ugo]))*")
_MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
_NETWORKS = ("default", "none", "host")


def parse_from(c: LineCtx) -> m.From:
    """``FROM [--platform=P] image [AS name]``; the image is substituted from global ARGs."""
    words = c.fields()
    if len(words) not in (1, 3) or (len(words) == 3 and words[1][0].lower() != "as"):
        raise c.error("expected `FROM image` or `FROM image AS name`", c.args_off)
    image = c.expand(*words[0])
    if not image:
        raise c.error(f"the base image {words[0][0]!r} is empty after substitution", words[0][1])
    name = None
    if len(words) == 3:
        name = words[2][0].lower()
        if not STAGE_NAME_RE.fullmatch(name):
            raise c.error(
                f"invalid stage name {words[2][0]!r}: it must start with a letter and hold only "
                "letters, digits, '-', '_' and '.'",
                words[2][1],
            )
    platform = c.flag("platform")
    return m.From(**c.base(), image=image, name=name, platform=platform)


def parse_run(c: LineCtx) -> m.Run:
    """``RUN [--mount=...] [--network=...] command`` in shell, exec or heredoc form."""
    mounts = tuple(c.expand(v, c.flag_off("mount")) for v in c.flags.get("mount", ()))
    for spec in mounts:
        _check_mount(c, spec)
    network = c.flags.get("network")
    if network is not None and network not in _NETWORKS:
        raise c.error(f"--network must be one of {', '.join(_NETWORKS)}, not {network!r}", c.flag_off("network"))
    security = c.flags.get("security")
    if security is not None and security not in ("sandbox", "insecure"):
        raise c.error(f"--security must be sandbox or insecure, not {security!r}", c.flag_off("security"))
    argv = c.json_list()
    if argv is not None and not argv:
        raise c.error("the exec form needs at least one element", c.args_off)
    command = argv if argv is not None else c.rest
    return m.Run(
        **c.base(), command=command, exec_form=argv is not None, heredocs=c.heredocs,
        mounts=mounts, network=network, security=security,
    )  # fmt: skip


def _check_mount(c: LineCtx, spec: str) -> None:
    """A light check of a ``--mount`` value: comma-separated key=value, a known type."""
    for part in spec.split(","):
        key, _, value = part.partition("=")
        if not key:
            raise c.error(f"malformed --mount {spec!r}: empty field", c.flag_off("mount"))
        if key == "type" and value not in _MOUNT_TYPES:
            raise c.error(f"--mount type must be one of {', '.join(_MOUNT_TYPES)}, not {value!r}", c.flag_off("mount"))


def _cmd_like(c: LineCtx) -> tuple[str | tuple[str, ...], bool]:
    argv = c.json_list()
    return (argv, True) if argv is not None else (c.rest, False)


def parse_cmd(c: LineCtx) -> m.Cmd:
    """``CMD``: exec-form argv or raw shell text (never substituted)."""
    value, exec_form = _cmd_like(c)
    return m.Cmd(**c.base(), value=value, exec_form=exec_form)


def parse_entrypoint(c: LineCtx) -> m.Entrypoint:
    """``ENTRYPOINT``: exec-form argv or raw shell text."""
    value, exec_form = _cmd_like(c)
    return m.Entrypoint(**c.base(), value=value, exec_form=exec_form)


def parse_shell(c: LineCtx) -> m.Shell:
    """``SHELL ["exe", "flag"]``: the exec form is required."""
    argv = c.json_list()
    if not argv:
        raise c.error('needs a non-empty JSON array, e.g. SHELL ["/bin/sh", "-c"]', c.args_off)
    return m.Shell(**c.base(), value=argv)


def _transfer_args(c: LineCtx) -> tuple[list[str], str, tuple[m.Heredoc, ...]]:
    """Sources, destination and inline heredoc sources of COPY/ADD, substituted."""
    argv = c.json_list()
    if argv is not None:
        words = [(w, c.args_off) for w in argv]
    else:
        words = c.fields()
    by_name = {h.name: h for h in c.heredocs}
    sources: list[str] = []
    inline: list[m.Heredoc] = []
    for word, off in words[:-1]:
        hm = _HEREDOC_RE.fullmatch(word) if argv is None else None
        if hm and hm.group(3) and by_name:
            name = c.expand(hm.group(3), off)
            doc = by_name.get(name)
            if doc is not None:
                inline.append(_expand_heredoc(c, doc))
                continue
        sources.append(c.expand(word, off))
    if len(words) < 2:
        raise c.error("needs at least one source and a destination", c.args_off)
    dest = c.expand(*words[-1])
    if not dest:
        raise c.error("the destination is empty", words[-1][1])
    return sources, dest, tuple(inline)


def _expand_heredoc(c: LineCtx, doc: m.Heredoc) -> m.Heredoc:
    """An inline COPY/ADD file: unquoted delimiters get their variables substituted."""
    if not doc.expand:
        return doc
    content = expand_vars_only(doc.content, c.lookup, c.escape)
    return m.Heredoc(name=doc.name, content=content, expand=True, chomp=doc.chomp, fd=doc.fd)


def _chmod(c: LineCtx) -> str | None:
    if "chmod" not in c.flags:
        return None
    value = c.flag("chmod") or ""
    if not _CHMOD_RE.fullmatch(value):
        raise c.error(f"invalid --chmod {value!r}: use an octal mode like 0755 or u+x", c.flag_off("chmod"))
    return value


def parse_copy(c: LineCtx) -> m.Copy:
    """``COPY [--from=stage|image] [--chown] [--chmod] [--link] src... dest``."""
    sources, dest, inline = _transfer_args(c)
    from_ = c.flag("from")
    if from_ is not None and not from_:
        raise c.error("--from is empty", c.flag_off("from"))
    return m.Copy(
        **c.base(), sources=tuple(sources), dest=dest, from_=from_, chown=c.flag("chown"), chmod=_chmod(c),
        link=bool(c.flags.get("link", False)), parents=bool(c.flags.get("parents", False)),
        exclude=tuple(c.expand(v, c.flag_off("exclude")) for v in c.flags.get("exclude", ())), heredocs=inline,
    )  # fmt: skip


def parse_add(c: LineCtx) -> m.Add:
    """``ADD [--chown] [--chmod] [--link] [--checksum] src... dest`` (sources may be URLs)."""
    sources, dest, inline = _transfer_args(c)
    return m.Add(
        **c.base(), sources=tuple(sources), dest=dest, chown=c.flag("chown"), chmod=_chmod(c),
        link=bool(c.flags.get("link", False)), checksum=c.flag("checksum"),
        keep_git_dir=bool(c.flags.get("keep-git-dir", False)),
        exclude=tuple(c.expand(v, c.flag_off("exclude")) for v in c.flags.get("exclude", ())), heredocs=inline,
    )  # fmt: skip


def parse_pairs(c: LineCtx, text_off: int, legacy: bool = True) -> tuple[tuple[str, str], ...]:
    """``key=value ...`` words (or the legacy ``key value`` form), keys and values substituted."""
    words = [(w, text_off + o) for w, o in split_words(c.ll.text[text_off:].rstrip(), c.escape)]
    if not words:
        raise c.error("needs key=value pairs", text_off)
    if legacy and "=" not in words[0][0]:
        key_word, key_off = words[0]
        if len(words) < 2:
            raise c.error(f"{key_word!r} needs a value: use {c.keyword} {key_word}=value", key_off)
        value_off = words[1][1]
        return ((c.expand(key_word, key_off), c.expand(c.ll.text[value_off:].rstrip(), value_off)),)
    pairs = []
    for word, off in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise c.error(f"{word!r} is not of the form key=value", off)
        key = c.expand(key, off)
        if not key:
            raise c.error("a name cannot be blank", off)
        pairs.append((key, c.expand(value, off + len(word) - len(value))))
    return tuple(pairs)


def parse_env(c: LineCtx) -> m.Env:
    """``ENV k=v ...`` or ``ENV k v``; all values see the variables from before this line."""
    return m.Env(**c.base(), pairs=parse_pairs(c, c.args_off))


def parse_label(c: LineCtx) -> m.Label:
    """``LABEL k=v ...`` (sealos' ``\\$registryDomain`` escapes stay a literal ``$``)."""
    return m.Label(**c.base(), pairs=parse_pairs(c, c.args_off))


def parse_arg(c: LineCtx) -> m.Arg:
    """``ARG name[=default] ...``; the parser fills in each effective value."""
    decls = []
    for word, off in split_words(c.rest, c.escape):
        off += c.args_off
        name, eq, default = word.partition("=")
        if not name:
            raise c.error("an ARG needs a name", off)
        value = c.expand(default, off + len(name) + 1) if eq else None
        decls.append(m.ArgDecl(name=name, default=value, value=value))
    return m.Arg(**c.base(), decls=tuple(decls))


def parse_expose(c: LineCtx) -> m.Expose:
    """``EXPOSE port[/proto] ...``, substituted and checked."""
    ports = []
    for word, off in c.fields():
        port = c.expand(word, off)
        if not _PORT_RE.fullmatch(port):
            raise c.error(f"invalid port {port!r}: use PORT[/tcp|udp|sctp] or a range START-END", off)
        ports.append(port)
    return m.Expose(**c.base(), ports=tuple(ports))


def parse_volume(c: LineCtx) -> m.Volume:
    """``VOLUME ["/a", "/b"]`` or ``VOLUME /a /b``."""
    argv = c.json_list()
    words = [(w, c.args_off) for w in argv] if argv is not None else c.fields()
    paths = tuple(c.expand(w, off) for w, off in words)
    if not paths or any(not p for p in paths):
        raise c.error("a volume path cannot be empty", c.args_off)
    return m.Volume(**c.base(), paths=paths)


def _single(c: LineCtx) -> str:
    value = c.expand(c.rest, c.args_off)
    if not value:
        raise c.error("the argument is empty after substitution", c.args_off)
    return value


def parse_user(c: LineCtx) -> m.User:
    """``USER user[:group]``."""
    return m.User(**c.base(), user=_single(c))


def parse_workdir(c: LineCtx) -> m.Workdir:
    """``WORKDIR path``."""
    return m.Workdir(**c.base(), path=_single(c))


def parse_stopsignal(c: LineCtx) -> m.StopSignal:
    """``STOPSIGNAL SIGTERM``."""
    return m.StopSignal(**c.base(), signal=_single(c))


def parse_maintainer(c: LineCtx) -> m.Maintainer:
    """``MAINTAINER name`` (kept as written)."""
    return m.Maintainer(**c.base(), name=c.rest)


def parse_healthcheck(c: LineCtx) -> m.Healthcheck:
    """``HEALTHCHECK NONE`` or ``HEALTHCHECK [--interval=..] CMD command``."""
    words = c.fields()
    kind = words[0][0].upper()
    if kind == "NONE":
        if len(words) > 1 or c.flags:
            raise c.error("HEALTHCHECK NONE takes no other arguments", words[0][1])
        return m.Healthcheck(**c.base(), test=("NONE",))
    if kind != "CMD":
        raise c.error(f"unknown type {words[0][0]!r} (use CMD or NONE)", words[0][1])
    if len(words) < 2:
        raise c.error("CMD needs a command", words[0][1])
    sub = LineCtx(c.reader, c.ll, c.keyword, [], words[1][1], c.lookup)
    argv = sub.json_list()
    test = ("CMD", *argv) if argv is not None else ("CMD-SHELL", sub.rest)
    times = {}
    for key in ("interval", "timeout", "start-period", "start-interval"):
        value = c.flags.get(key)
        if value is not None and not _DURATION_RE.fullmatch(value):
            raise c.error(f"--{key} must be a duration like 30s or 1m30s, not {value!r}", c.flag_off(key))
        times[key.replace("-", "_")] = value
    retries = c.flags.get("retries")
    if retries is not None and not retries.isdigit():
        raise c.error(f"--retries must be a whole number, not {retries!r}", c.flag_off("retries"))
    return m.Healthcheck(**c.base(), test=test, retries=int(retries) if retries else None, **times)


DOCKER_PARSERS: dict[str, Callable[[LineCtx], m.Instruction]] = {
    "FROM": parse_from,
    "RUN": parse_run,
    "CMD": parse_cmd,
    "ENTRYPOINT": parse_entrypoint,
    "SHELL": parse_shell,
    "COPY": parse_copy,
    "ADD": parse_add,
    "ENV": parse_env,
    "LABEL": parse_label,
    "ARG": parse_arg,
    "EXPOSE": parse_expose,
    "VOLUME": parse_volume,
    "USER": parse_user,
    "WORKDIR": parse_workdir,
    "STOPSIGNAL": parse_stopsignal,
    "MAINTAINER": parse_maintainer,
    "HEALTHCHECK": parse_healthcheck,
}
