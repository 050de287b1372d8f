"""What the engine runs on a host, as shell text: lifecycle labels, CMDs, the /etc/hosts block, cleanup.

Pure functions, no I/O: each returns the ``sh -c`` text a phase sends through
an executor, so ``--dry-run`` can print exactly what would run. Lifecycle
labels follow sealos: the label's value, env-expanded, runs as
``cd <rootfs>/scripts && bash <value>``; where the label is absent but
``scripts/<name>.sh`` exists, that script runs. The ``/etc/hosts`` entries
imgbuild adds live between two marker lines naming the cluster, so they can be
replaced or removed without touching anything else in the file, and the file
is rewritten in place (a container's ``/etc/hosts`` is a bind mount that a
rename would break).
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Iterable, Mapping, Sequence

__all__ = [
    "lifecycle_command", "cmd_command", "hosts_block_command", "hosts_unblock_command", "remove_paths_command",
    "hosts_markers",
]


def lifecycle_command(labels: Mapping[str, str], name: str, rootfs: str, scripts: Iterable[str],
                      expand) -> str | None:
    """The shell text running lifecycle step ``name`` of an image in ``rootfs``, or None when it has none.

    ``scripts`` are the file names in the image's ``scripts/`` directory; ``expand`` expands ``$(VAR)``,
    ``$VAR`` and ``${VAR}`` in the label's value with the host's env (as sealos does).
    """
    value = (labels.get(name) or "").strip()
    if value:
        body = f"bash {expand(value)}"
    elif f"{name}.sh" in set(scripts):
        body = f"bash {name}.sh"
    else:
        return None
    return f"cd {shlex.quote(posixpath.join(rootfs, 'scripts'))} && {body}"


def cmd_command(cmd: Sequence[str], entrypoint: Sequence[str], workdir: str, expand) -> str | None:
    """The shell text running an image's ENTRYPOINT + CMD in ``workdir`` (``$(VAR)`` expanded), or None.

    A one-element CMD is shell text (``CMD kubectl apply -f x`` as sealos images write it); a longer one is
    an argv, quoted word by word.
    """
    words = [*entrypoint, *cmd]
    if not words:
        return None
    if len(words) == 1:
        body = expand(words[0])
    else:
        body = " ".join(shlex.quote(expand(w)) for w in words)
    return f"cd {shlex.quote(workdir)} && {body}"


def hosts_markers(cluster: str) -> tuple[str, str]:
    """The begin and end marker lines of a cluster's block in ``/etc/hosts``."""
    return (f"# imgbuild cluster {cluster} begin", f"# imgbuild cluster {cluster} end")


def hosts_block_command(cluster: str, entries: Sequence[tuple[str, str]]) -> str:
    """Shell text that makes the cluster's ``/etc/hosts`` block exactly ``entries`` (address, name)."""
    begin, end = hosts_markers(cluster)
    lines = [begin, *(f"{addr} {name}" for addr, name in entries), end]
    block = "\n".join(lines) + "\n"
    return (f"{_strip(begin, end)} && printf %s {shlex.quote(block)} >> /tmp/.imgbuild-hosts.$$ && "
            "cat /tmp/.imgbuild-hosts.$$ > /etc/hosts && rm -f /tmp/.imgbuild-hosts.$$")


def hosts_unblock_command(cluster: str) -> str:
    """Shell text that removes the cluster's block from ``/etc/hosts`` (nothing else changes)."""
    begin, end = hosts_markers(cluster)
    return (f"if grep -qxF {shlex.quote(begin)} /etc/hosts; then {_strip(begin, end)} && "
            "cat /tmp/.imgbuild-hosts.$$ > /etc/hosts && rm -f /tmp/.imgbuild-hosts.$$; fi")


def _strip(begin: str, end: str) -> str:
    """Shell text writing /etc/hosts without the block between ``begin`` and ``end`` to a temp file."""
    script = "$0 == b {skip=1; next} $0 == e {skip=0; next} !skip"
    return f"awk -v b={shlex.quote(begin)} -v e={shlex.quote(end)} {shlex.quote(script)} /etc/hosts > /tmp/.imgbuild-hosts.$$"


def remove_paths_command(paths: Sequence[str]) -> str:
    """Shell text removing ``paths`` and then each parent that is left empty (never ``/``)."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    parents = sorted({posixpath.dirname(p.rstrip("/")) for p in paths}, key=len, reverse=True)
    rmdirs = " ".join(shlex.quote(p) for p in parents if p not in ("", "/"))
    tail = f"; for d in {rmdirs}; do rmdir -p \"$d\" 2>/dev/null || true; done" if rmdirs else ""
    return f"rm -rf {quoted}{tail}"
