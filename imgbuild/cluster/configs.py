"""Apply ``Config`` documents to the file trees of mounted images, writing results to a separate output tree.

Images are mounted read-only, so a Config never changes its image: the file it
produces goes to ``out[image]/<path>``, which the engine lays over the image when
it ships it. Several Configs may change the same file; each starts from what the
previous one wrote. Strategies, as sealos defines them:

- ``override`` (the default): the file becomes ``data``;
- ``insert``: ``data``, a newline, then the file (sealos' prepend);
- ``append``: the file, a newline, then ``data``;
- ``merge``: deep YAML merge (mappings key by key, lists and scalars replaced,
  as sealos' mergo merge). Multi-document aware: a data document with ``kind``
  (and ``metadata.name``) merges into the file's documents with the same
  apiVersion/kind/name, one without ``kind`` merges into every mapping document
  (sealos' behaviour). A missing file becomes the data; ``.json`` files are
  written back as JSON. Comments in a merged file are not kept.

A Config without ``match`` applies to every image (sealos); a ``match`` (a glob
on the image name as written, normalised or familiar) that hits no image is a
:class:`~imgbuild.errors.ClusterfileError` naming the Config.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

import yaml

from imgbuild.cluster.model import Config
from imgbuild.cluster.parse import path_problem
from imgbuild.cluster.values import merge_values
from imgbuild.errors import ClusterfileError
from imgbuild.fsutil import atomic_write

__all__ = ["apply_configs", "apply_strategy", "merge_documents"]

_YAML_ERRORS = (yaml.YAMLError, ValueError, TypeError, RecursionError)


def apply_configs(configs: Iterable[Config], trees: Mapping[str, Path],
                  out: Mapping[str, Path]) -> dict[str, list[str]]:
    """Apply ``configs`` to the images in ``trees`` (image ref -> its read-only root); results go under ``out``.

    Returns, per image ref, the relative paths written under ``out[image]`` (sorted).
    """
    changed: dict[str, set[str]] = {image: set() for image in trees}
    for config in configs:
        targets = [image for image in trees if config.matches(image)]
        if config.match and not targets:
            raise ClusterfileError(f"Config {config.name}: match {config.match!r} hits no image "
                                   f"(images: {', '.join(trees) or 'none'})", config.where or None)
        rel = _relpath(config)
        for image in targets:
            _apply_one(config, rel, Path(trees[image]), Path(out[image]))
            changed[image].add(rel)
    return {image: sorted(paths) for image, paths in changed.items() if paths}


def _relpath(config: Config) -> str:
    problem = path_problem(config.path)
    if problem:
        raise ClusterfileError(f"Config {config.name}: {problem}", config.where or None)
    return str(PurePosixPath(config.path.lstrip("/")))


def _apply_one(config: Config, rel: str, tree: Path, out: Path) -> None:
    target = _inside(out, rel, config)
    source = target if target.exists() else _inside(tree, rel, config)
    try:
        current = source.read_bytes().decode("utf-8") if source.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClusterfileError(f"Config {config.name}: cannot read {rel}: {exc}", config.where or None) from exc
    if source.exists() and current is None:
        raise ClusterfileError(f"Config {config.name}: {rel} is not a regular file", config.where or None)
    result = apply_strategy(config, current, rel)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = source.stat().st_mode & 0o7777 if source.exists() else 0o644
        atomic_write(target, result.encode("utf-8"), mode=mode, sync=False)
    except OSError as exc:
        raise ClusterfileError(f"Config {config.name}: cannot write {rel}: {exc.strerror}",
                               config.where or None) from exc


def _inside(root: Path, rel: str, config: Config) -> Path:
    """``root/rel``, refusing a path that passes through a symlink (it could point outside the image)."""
    path = root
    for part in PurePosixPath(rel).parts:
        path = path / part
        if path.is_symlink():
            raise ClusterfileError(f"Config {config.name}: {rel} passes through the symlink {part!r} in the image; "
                                   "point spec.path at the real file", config.where or None)
    return path


def apply_strategy(config: Config, current: str | None, rel: str = "") -> str:
    """The new content of a file (``current`` is None when it does not exist) under ``config``'s strategy."""
    data = config.data
    if config.strategy == "insert":
        return data + "\n" + (current or "")
    if config.strategy == "append":
        return (current or "") + "\n" + data
    if config.strategy == "merge":
        return merge_documents(current, data, json_out=rel.endswith(".json"), label=f"Config {config.name}",
                               where=config.where)
    return data


def _load_all(text: str, what: str, label: str, where: str) -> list[Any]:
    try:
        return list(yaml.safe_load_all(text))
    except _YAML_ERRORS as exc:
        raise ClusterfileError(f"{label}: {what} is not YAML: {exc}".splitlines()[0], where or None) from exc


def _identity(doc: Mapping[str, Any]) -> tuple[Any, Any, Any] | None:
    if "kind" not in doc:
        return None
    meta = doc.get("metadata")
    return doc.get("apiVersion"), doc.get("kind"), meta.get("name") if isinstance(meta, Mapping) else None


def _merge_into(docs: list[Any], patch: Mapping[str, Any], label: str, where: str) -> None:
    key = _identity(patch)
    hits = [i for i, doc in enumerate(docs) if isinstance(doc, Mapping)
            and (key is None or _same(_identity(doc), key))]
    if not hits:
        what = "a mapping document" if key is None else f"{key[1]} {key[2] or ''}".strip()
        raise ClusterfileError(f"{label}: merge data matches no document of the file ({what})", where or None)
    for i in hits:
        docs[i] = merge_values(docs[i], patch)


def _same(doc_key: tuple[Any, Any, Any] | None, key: tuple[Any, Any, Any]) -> bool:
    if doc_key is None or doc_key[1] != key[1]:
        return False
    return all(want is None or want == got for want, got in ((key[0], doc_key[0]), (key[2], doc_key[2])))


def merge_documents(current: str | None, data: str, *, json_out: bool = False, label: str = "Config",
                    where: str = "") -> str:
    """``data`` (YAML, one or more documents) deep-merged into the documents of ``current``."""
    patches = [p for p in _load_all(data, "spec.data", label, where) if p is not None]
    if any(not isinstance(p, Mapping) for p in patches):
        raise ClusterfileError(f"{label}: merge data must be YAML mappings", where or None)
    docs = [d for d in _load_all(current, "the file", label, where) if d is not None] if current else []
    if not docs:
        docs, patches = [merge_values({}, p) for p in patches], []
    for patch in patches:
        _merge_into(docs, patch, label, where)
    if json_out:
        return "\n".join(json.dumps(d, indent=2, default=str) for d in docs) + "\n"
    return "---\n".join(yaml.safe_dump(d, default_flow_style=False, sort_keys=False, allow_unicode=True,
                                       width=1 << 16) for d in docs)
