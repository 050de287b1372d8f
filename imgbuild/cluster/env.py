"""Env for lifecycle scripts, CMD and templates: precedence, ``$(VAR)`` expansion and masking.

Precedence, lowest first: the image's ENV < Clusterfile ``spec.env`` < the host's
``env`` < ``-e`` on the command line (:func:`effective_env`). Values are expanded
in lifecycle labels and CMD as sealos' ``RenderTextWithEnv`` does
(:func:`expand`): ``$(VAR)``, ``${VAR}`` and ``$VAR`` become the value of a known
variable, and a reference to an unknown one is left as it was written (sealos
replaces only the names it knows; the shell that runs the command may still
expand it). Unlike sealos' plain string replace, ``$VAR`` takes the whole name,
so ``$HOSTNAME`` is not ``$HOST`` followed by ``NAME``. Secret values
(``labels.SECRET_ENV_KEYS`` and names containing password/passwd/secret/token)
are shown as ``******`` by :func:`masked`.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator, Mapping

from imgbuild.labels import SECRET_ENV_KEYS

__all__ = [
    "FrozenMap", "MASK", "SYSTEM_PREFIX", "parse_env_item", "effective_env", "expand", "masked", "is_secret",
]

MASK = "******"
SYSTEM_PREFIX = "SEALOS_SYS"
"""Env names with this prefix are the engine's; a Clusterfile's are ignored with a warning, as sealos does."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_SECRET_PARTS = ("password", "passwd", "secret", "token")


class FrozenMap(Mapping[str, str]):
    """An ordered, read-only, hashable str -> str mapping (env of a host or a cluster)."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._data = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._data) == dict(other)

    def __repr__(self) -> str:
        return f"FrozenMap({masked(self._data)!r})"


def parse_env_item(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> (KEY, VALUE); raises ``ValueError`` when there is no ``=`` or the name is not a name."""
    key, eq, value = text.partition("=")
    if not eq:
        raise ValueError(f"env {text!r} is not KEY=VALUE")
    if not _NAME.fullmatch(key):
        raise ValueError(f"env name {key!r} is not a variable name")
    return key, value


def effective_env(image_env: Mapping[str, str] | None, cluster_env: Mapping[str, str] | None,
                  host_env: Mapping[str, str] | None, cli_env: Mapping[str, str] | None) -> dict[str, str]:
    """One host's env: image ENV < Clusterfile spec.env < host env < ``-e`` (later wins)."""
    out: dict[str, str] = {}
    for layer in (image_env, cluster_env, host_env, cli_env):
        if layer:
            out.update(layer)
    return out


def expand(text: str, env: Mapping[str, str]) -> str:
    """``text`` with ``$(VAR)``, ``${VAR}`` and ``$VAR`` of known variables replaced; unknown ones kept as written."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        return env[name] if name in env else m.group(0)

    return _REF.sub(sub, text) if "$" in text else text


def is_secret(name: str) -> bool:
    """True if an env or field named ``name`` holds a secret that must not be printed."""
    lower = name.lower()
    return name in SECRET_ENV_KEYS or any(part in lower for part in _SECRET_PARTS)


def masked(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with secret values replaced by ``******``, for printing, ``--json`` and logs."""
    return {k: (MASK if is_secret(k) and v else v) for k, v in env.items()}
