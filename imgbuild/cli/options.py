"""Option values every command parses the same way: ``KEY=VALUE`` pairs.

One parser for ``--build-arg``, ``--label``, ``--annotation`` and ``--env``, with
docker's semantics: ``--build-arg KEY`` (no ``=``) takes KEY's value from the
environment and is left unset when the environment has none; any other flag
given a bare ``KEY`` is an error naming that flag.
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping

__all__ = ["parse_pairs"]


def parse_pairs(values: Iterable[str] | None, flag: str, *, from_env: bool = False,
                environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``KEY=VALUE`` option values as a dict; with ``from_env`` a bare ``KEY`` takes its value from ``environ``."""
    from imgbuild.errors import InputError

    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not key.strip():
            raise InputError(f"{flag} takes KEY=VALUE, not {item!r}")
        if not sep:
            if not from_env:
                raise InputError(f"{flag} takes KEY=VALUE, not {item!r}")
            if key not in env:
                continue  # as docker: a build arg named without a value and absent from the environment stays unset
            value = env[key]
        out[key] = value
    return out
