"""Values for templating a Clusterfile: ``--values FILE`` and ``--set a.b=c``, merged as helm (and sealos) do.

Values files are YAML mappings merged in order (later files win; mappings merge
key by key, anything else is replaced); then each ``--set`` is applied. A
``--set`` takes helm's ``strvals`` syntax: ``a.b=c``, several pairs joined by
commas (``a=1,b=2``), list items ``hosts[0]=10.0.0.2``, lists ``{x,y}``, and
``\\`` to escape ``,``, ``.``, ``=`` and ``[``; a value ``true``/``false``/``null``
or an integer (not starting with 0) becomes that type, as helm does. The
Clusterfile is then rendered as a Go template with ``.Values`` (see
:mod:`imgbuild.gotemplate`), sprig's functions and sealos' ``env``, ``ipAt``
and ``ipNet``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from imgbuild.errors import ClusterfileError, InputError

__all__ = ["load_values", "apply_set", "merge_values", "render_clusterfile", "template_funcs", "ip_at", "ip_net"]

_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_INDEX = re.compile(r"(.*)\[([0-9]+)\]")
_MAX_INDEX = 65536


def merge_values(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: mappings key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def _read_values(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read values file: {exc.strerror}", str(path)) from exc
    except UnicodeDecodeError as exc:
        raise InputError("values file is not UTF-8 text", str(path)) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InputError(f"values file is not YAML: {exc.problem or exc.context}", where) from exc
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise InputError(f"values file is not YAML: {exc}", str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("a values file must be a YAML mapping", str(path))
    return data


def load_values(files: Iterable[Path] = (), sets: Iterable[str] = ()) -> dict[str, Any]:
    """The ``.Values`` of a Clusterfile: values files merged in order, then every ``--set`` applied."""
    values: dict[str, Any] = {}
    for path in files:
        values = merge_values(values, _read_values(Path(path)))
    for text in sets:
        values = apply_set(values, text)
    return values


def _split(text: str, sep: str) -> list[str]:
    """``text`` split at unescaped ``sep`` (escapes kept) outside ``{...}``."""
    parts, cur, depth, i = [], [], 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        depth += ch == "{"
        depth -= ch == "}" and depth > 0
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _typed(text: str) -> Any:
    if text.startswith("{") and text.endswith("}"):
        return [_typed(_unescape(item)) for item in _split(text[1:-1], ",") if item]
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    return int(text) if _INT.fullmatch(text) else _unescape(text)


def apply_set(values: Mapping[str, Any], text: str) -> dict[str, Any]:
    """``values`` with one ``--set`` expression applied (``a.b=c,d[0]=e``); InputError names a bad one."""
    out = merge_values({}, values)
    for pair in _split(text, ","):
        if not pair:
            continue
        path, eq, value = pair.partition("=")
        if not eq or not path:
            raise InputError(f"--set {text!r}: {pair!r} is not KEY=VALUE")
        keys = [_unescape(k) for k in _split(path, ".")]
        if any(not k for k in keys):
            raise InputError(f"--set {text!r}: {path!r} has an empty key")
        _assign(out, keys, _typed(value), text)
    return out


def _assign(target: dict[str, Any], keys: list[str], value: Any, text: str) -> None:
    key, rest = keys[0], keys[1:]
    index = None
    if m := _INDEX.fullmatch(key):
        key, index = m.group(1), int(m.group(2))
        if index > _MAX_INDEX:
            raise InputError(f"--set {text!r}: list index {index} is too large")
    if index is None:
        if rest:
            child = target.get(key)
            target[key] = child = dict(child) if isinstance(child, Mapping) else {}
            _assign(child, rest, value, text)
        else:
            target[key] = value
        return
    items = list(target.get(key) or []) if isinstance(target.get(key), list) else []
    items.extend([None] * (index + 1 - len(items)))
    if rest:
        child = dict(items[index]) if isinstance(items[index], Mapping) else {}
        _assign(child, rest, value, text)
        items[index] = child
    else:
        items[index] = value
    target[key] = items


def ip_net(cidr: str) -> str:
    """sealos' ``ipNet``: the network of a CIDR (``10.96.0.10/18`` -> ``10.96.0.0/18``)."""
    try:
        return str(ipaddress.ip_network(cidr, strict=False))
    except ValueError as exc:
        return f"invalid cidr: {exc}"


def ip_at(cidr: str, index: int) -> str:
    """sealos' ``ipAt``: the ``index``-th address of a CIDR's network (``ipAt "10.96.0.0/18" 10`` -> ``10.96.0.10``)."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        return f"invalid cidr: {exc}"
    if not 0 <= index < net.num_addresses:
        return "out of ip address range"
    return str(net[index])


def template_funcs(env: Mapping[str, str]) -> dict[str, Any]:
    """The functions a Clusterfile template gets beyond sprig's: ``env`` (from ``env``, not imgbuild's own
    environment), ``ipAt`` and ``ipNet`` (sealos' additions)."""
    from imgbuild.gotemplate import gofunc

    return {"env": gofunc("string")(lambda key: env.get(key, "")),
            "ipAt": gofunc("string", "int")(ip_at), "ipNet": gofunc("string")(ip_net)}


def render_clusterfile(text: str, values: Mapping[str, Any], name: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` rendered as a Go template with ``.Values`` (missing keys print ``<no value>``, as in sealos, whose
    templates lean on ``default``); a template error names file:line."""
    try:
        from imgbuild import gotemplate
    except ImportError as exc:  # the engine ships with it; a partial install does not
        raise ClusterfileError("Clusterfile templating needs imgbuild.gotemplate, which is missing", name) from exc
    try:
        return gotemplate.render(text, {"Values": dict(values)}, name=name, missingkey="default",
                                 funcs=template_funcs(env or {}))
    except gotemplate.TemplateError as exc:
        raise ClusterfileError(f"template: {exc.message}", _line_only(exc.where) or name) from exc


def _line_only(where: str | None) -> str | None:
    """``name:line:col`` -> ``name:line`` (Clusterfile errors name lines)."""
    if where and re.search(r":\d+:\d+$", where):
        return where.rsplit(":", 1)[0]
    return where
