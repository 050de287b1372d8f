"""The Clusterfile schema: composed YAML nodes -> ``Cluster`` and ``Config``, each problem with its file:line.

What is checked (each a problem at the line of the offending value): wrong
types, a missing or odd cluster name, an empty image list or a bad image
reference, a bad IP or ``ip:port``, the same host listed twice, a role that is
a misspelt ``master``/``node``/``registry``, a host group with none of them, no
master at all, env items that are not ``KEY=VALUE``, unknown ``ssh`` fields
(``password`` is sealos' ``passwd``), a Config without name or path, a path
leaving the image, an unknown strategy, and ``merge`` data that is not YAML.
Fields imgbuild does not use (sealos' ``provider``, sealer's ``labels``) are
kept and reported as warnings, so real Clusterfiles load.
"""

from __future__ import annotations

import difflib
from pathlib import PurePosixPath
from typing import Any

import yaml
from yaml.nodes import Node

from imgbuild.cluster.env import SYSTEM_PREFIX, FrozenMap, parse_env_item
from imgbuild.cluster.hosts import ROLES, SSH, SSH_KEYS, parse_endpoint, role_problem
from imgbuild.cluster.model import (
    DEFAULT_STRATEGY, STRATEGIES, Cluster, Condition, Config, Host, Status, image_problem, name_problem,
)
from imgbuild.cluster.yamlnodes import Reader

__all__ = ["parse_cluster", "parse_config", "path_problem"]

_TOP = ("apiVersion", "kind", "metadata", "spec", "status")


def _fields(r: Reader, node: Node, what: str) -> dict[str, tuple[Node, Node]]:
    return {key: (k, v) for key, k, v in r.items(node, what)}


def _name(r: Reader, root: Node, fields: dict[str, tuple[Node, Node]]) -> tuple[str | None, dict[str, Any]]:
    """metadata.name and the other metadata fields."""
    if "metadata" not in fields:
        r.problem(root, "metadata.name is missing")
        return None, {}
    key_node, node = fields["metadata"]
    name, extra = None, {}
    for key, _, value in r.items(node, "metadata"):
        if key == "name":
            name = r.string(value, "metadata.name")
            if name is not None and (problem := name_problem(name)):
                r.problem(value, problem)
                name = None
        else:
            extra[key] = r.data(value, f"metadata.{key}")
    if name is None and not r.reported(node):
        r.problem(key_node, "metadata.name is missing")
    return name, extra


def parse_cluster(r: Reader, root: Node) -> Cluster | None:
    """A ``kind: Cluster`` document, or None when it has problems (recorded in ``r``)."""
    fields = _fields(r, root, "Cluster")
    for key, (key_node, _) in fields.items():
        if key not in _TOP:
            r.warn(key_node, f"unknown field {key!r} in the Cluster document (ignored)")
    name, metadata = _name(r, root, fields)
    if "spec" not in fields:
        r.problem(root, "the Cluster has no spec")
        return None
    spec = _spec(r, *fields["spec"])
    status = _status(r, fields["status"][1]) if "status" in fields else Status()
    if r.problems or name is None or spec is None:
        return None
    return Cluster(name=name, status=status, metadata=metadata, **spec)


def _spec(r: Reader, key_node: Node, node: Node) -> dict[str, Any] | None:
    out: dict[str, Any] = {"ssh": SSH(), "env": FrozenMap(), "command": (), "extra": {}}
    fields = _fields(r, node, "spec")
    for key, (k, v) in fields.items():
        if key == "ssh":
            out["ssh"] = _ssh(r, v, "spec.ssh")
        elif key == "env":
            out["env"] = _env(r, v, "spec.env")
        elif key == "command":
            out["command"] = tuple(text for text, _ in r.strings(v, "spec.command"))
        elif key not in ("image", "hosts"):
            r.warn(k, f"unknown field spec.{key} (kept, not used)")
            out["extra"][key] = r.data(v, f"spec.{key}")
    out["images"] = _images(r, *fields.get("image", (key_node, None)))
    out["hosts"] = _hosts(r, *fields.get("hosts", (key_node, None)))
    return out


def _images(r: Reader, key_node: Node, node: Node | None) -> tuple[str, ...]:
    items = r.strings(node, "spec.image") if node is not None else []
    seen: dict[str, Node] = {}
    for image, item in items:
        if problem := image_problem(image):
            r.problem(item, problem)
        elif image in seen:
            r.problem(item, f"image {image} is listed twice (first at line {r.line(seen[image])})")
        else:
            seen[image] = item
    if not items and not r.reported(node):
        r.problem(node if node is not None else key_node, "spec.image is empty: name at least one cluster image")
    return tuple(seen)


def _ssh(r: Reader, node: Node, what: str) -> SSH:
    values: dict[str, Any] = {}
    for key, k, v in r.items(node, what):
        attr = SSH_KEYS.get(key)
        if attr is None:
            close = difflib.get_close_matches(key, list(SSH_KEYS), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(SSH_KEYS)})"
            r.problem(k, f"unknown field {what}.{key}{hint}")
            continue
        text = r.string(v, f"{what}.{key}")
        if attr == "port" and text is not None:
            if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
                r.problem(v, f"{what}.port {text!r} is not a port number from 1 to 65535")
                continue
            values[attr] = int(text)
        elif text is not None:
            values[attr] = text
    return SSH(**values)


def _env(r: Reader, node: Node, what: str) -> FrozenMap:
    out: dict[str, str] = {}
    for text, item in r.strings(node, what):
        try:
            key, value = parse_env_item(text)
        except ValueError as exc:
            r.problem(item, f"{what}: {exc}")
            continue
        if key.startswith(SYSTEM_PREFIX):
            r.warn(item, f"{what}: {key} ignored: {SYSTEM_PREFIX}* names are set by imgbuild only")
            continue
        if key in out:
            r.warn(item, f"{what}: {key} is set twice; the last value wins")
        out[key] = value
    return FrozenMap(out)


def _hosts(r: Reader, key_node: Node, node: Node | None) -> tuple[Host, ...]:
    items = r.sequence(node, "spec.hosts") if node is not None else []
    seen: dict[str, int] = {}
    hosts = [h for i, item in enumerate(items) if (h := _host(r, item, f"spec.hosts[{i}]", seen)) is not None]
    if not items:
        r.problem(node if node is not None else key_node, "spec.hosts is empty: name at least one master")
    elif hosts and len(hosts) == len(items) and not any("master" in h.roles for h in hosts):
        r.problem(node, "no host has the master role")
    return tuple(hosts)


def _host(r: Reader, node: Node, what: str, seen: dict[str, int]) -> Host | None:
    fields = _fields(r, node, what)
    if not fields:
        if not r.reported(node):
            r.problem(node, f"{what} is empty")
        return None
    before = len(r.problems)
    ips = _ips(r, fields.get("ips"), node, what, seen)
    roles = _roles(r, fields.get("roles"), node, what)
    env = _env(r, fields["env"][1], f"{what}.env") if "env" in fields else FrozenMap()
    ssh = _ssh(r, fields["ssh"][1], f"{what}.ssh") if "ssh" in fields else None
    extra = {}
    for key, (k, v) in fields.items():
        if key not in ("ips", "roles", "env", "ssh"):
            r.warn(k, f"unknown field {what}.{key} (kept, not used)")
            extra[key] = r.data(v, f"{what}.{key}")
    if len(r.problems) > before:
        return None
    return Host(ips=ips, roles=roles, env=env, ssh=ssh, extra=extra)


def _ips(r: Reader, field: tuple[Node, Node] | None, node: Node, what: str, seen: dict[str, int]) -> tuple[str, ...]:
    items = r.strings(field[1], f"{what}.ips") if field else []
    if not items:
        if not r.reported(field[1] if field else None):
            r.problem(field[1] if field else node, f"{what} has no ips")
        return ()
    for text, item in items:
        try:
            address, _ = parse_endpoint(text)
        except ValueError as exc:
            r.problem(item, f"{what}.ips: {exc}")
            continue
        if address in seen:
            r.problem(item, f"host {address} is listed twice (first at line {seen[address]})")
        else:
            seen[address] = r.line(item)
    return tuple(text.strip() for text, _ in items)


def _roles(r: Reader, field: tuple[Node, Node] | None, node: Node, what: str) -> tuple[str, ...]:
    items = r.strings(field[1], f"{what}.roles") if field else []
    for role, item in items:
        if problem := role_problem(role):
            r.problem(item, f"{what}.roles: {problem}")
    roles = tuple(role for role, _ in items)
    if field is None:
        r.problem(node, f"{what} has no roles (one of {', '.join(ROLES)})")
    elif items and not any(role in ROLES for role in roles) and not any(role_problem(x) for x in roles):
        r.problem(field[1], f"{what}.roles names none of {', '.join(ROLES)}")
    elif not items and not r.reported(field[1]):
        r.problem(field[1], f"{what}.roles is empty (one of {', '.join(ROLES)})")
    return roles


def _status(r: Reader, node: Node) -> Status:
    phase, conditions, extra = "", [], {}
    for key, _, v in r.items(node, "status"):
        if key == "phase":
            phase = r.string(v, "status.phase") or ""
        elif key == "conditions":
            conditions = [c for c in (_condition(r, item) for item in r.sequence(v, "status.conditions")) if c]
        else:
            extra[key] = r.data(v, f"status.{key}")
    return Status(phase=phase, conditions=tuple(conditions), extra=extra)


def _condition(r: Reader, node: Node) -> Condition | None:
    values = {key: r.string(v, f"status.conditions.{key}") or "" for key, _, v in r.items(node, "status.conditions")}
    if not values.get("type"):
        r.problem(node, "status.conditions item has no type")
        return None
    return Condition(type=values["type"], status=values.get("status", ""), reason=values.get("reason", ""),
                     message=values.get("message", ""), time=values.get("lastHeartbeatTime", ""))


def path_problem(path: str) -> str | None:
    """Why a Config ``spec.path`` cannot name a file inside an image, or None."""
    parts = PurePosixPath(path.lstrip("/")).parts
    if not parts:
        return "spec.path is empty"
    if ".." in parts:
        return f"spec.path {path!r} leaves the image (contains '..')"
    return None


def parse_config(r: Reader, root: Node) -> Config | None:
    """A ``kind: Config`` document, or None when it has problems (recorded in ``r``)."""
    before = len(r.problems)
    fields = _fields(r, root, "Config")
    name, metadata = _name(r, root, fields)
    if "spec" not in fields:
        r.problem(root, f"Config {name or '?'} has no spec")
        return None
    values: dict[str, str] = {}
    nodes: dict[str, Node] = {}
    for key, k, v in r.items(fields["spec"][1], "spec"):
        if key in ("path", "data", "match", "strategy"):
            values[key], nodes[key] = r.string(v, f"spec.{key}") or "", v
        else:
            r.warn(k, f"unknown field spec.{key} in Config {name} (ignored)")
    _check_config(r, name, values, nodes, fields["spec"][1])
    if len(r.problems) > before or name is None:
        return None
    return Config(name=name, path=values["path"], data=values.get("data", ""), match=values.get("match", ""),
                  strategy=values.get("strategy") or DEFAULT_STRATEGY, metadata=metadata, where=r.where(root))


def _check_config(r: Reader, name: str | None, values: dict[str, str], nodes: dict[str, Node], spec: Node) -> None:
    label = f"Config {name or '?'}"
    if problem := path_problem(values.get("path", "")):
        r.problem(nodes.get("path", spec), f"{label}: {problem}")
    strategy = values.get("strategy") or DEFAULT_STRATEGY
    if strategy not in STRATEGIES:
        r.problem(nodes["strategy"], f"{label}: unknown strategy {strategy!r} (one of {', '.join(STRATEGIES)})")
    if strategy == "merge":
        _check_merge_data(r, label, values.get("data", ""), nodes.get("data", spec))


def _check_merge_data(r: Reader, label: str, data: str, node: Node) -> None:
    """``merge`` data must be YAML mappings; a problem names the line inside the file."""
    try:
        docs = list(yaml.safe_load_all(data))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        offset = (mark.line if mark else 0) + (1 if "\n" in data and node.style in ("|", ">") else 0)
        r.problems.append(_at(r, node, offset, f"{label}: spec.data is not YAML: {exc.problem or exc.context}"))
        return
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        r.problem(node, f"{label}: spec.data is not YAML: {exc}")
        return
    if any(doc is not None and not isinstance(doc, dict) for doc in docs):
        r.problem(node, f"{label}: merge data must be YAML mappings")


def _at(r: Reader, node: Node, offset: int, message: str):  # noqa: ANN202
    from imgbuild.errors import ClusterfileError

    return ClusterfileError(message, f"{r.name}:{r.line(node) + offset}")
