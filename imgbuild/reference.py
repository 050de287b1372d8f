"""Image references: parse and normalise them the way Docker does.

``nginx`` is ``docker.io/library/nginx:latest``; ``localhost:5000/a/b@sha256:...``
keeps its registry and digest. A reference that does not follow the distribution
grammar raises :class:`~imgbuild.errors.InvalidReference` naming what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from imgbuild.errors import InvalidReference

__all__ = ["Reference", "parse_reference", "DEFAULT_REGISTRY", "DEFAULT_TAG"]

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
_REGISTRY_ALIASES = {"index.docker.io": DEFAULT_REGISTRY, "registry-1.docker.io": DEFAULT_REGISTRY}

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"|\[[0-9a-fA-F:.]+\]"
)
_PORT = re.compile(r"[0-9]{1,5}")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
_MAX_NAME = 255


@dataclass(frozen=True, order=True)
class Reference:
    """A parsed, normalised image reference: registry, repository, and a tag and/or digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def normalized(self) -> str:
        """The full form: ``registry/repository[:tag][@digest]``."""
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def familiar(self) -> str:
        """The short form Docker prints: ``nginx:1.25``, ``localhost:5000/app:v1``."""
        name = self.name
        if self.registry == DEFAULT_REGISTRY:
            name = self.repository.removeprefix("library/")
        out = name + (f":{self.tag}" if self.tag else "")
        return out + (f"@{self.digest}" if self.digest else "")

    @property
    def reference(self) -> str:
        """What to ask a registry for: the digest if known, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> "Reference":
        """The same repository with another tag and no digest."""
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid tag {tag!r}", self.normalized)
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> "Reference":
        """The same repository pinned to ``digest`` (the tag is kept for display)."""
        if not _DIGEST.fullmatch(digest):
            raise InvalidReference(f"invalid digest {digest!r}", self.normalized)
        return replace(self, digest=digest)

    def __str__(self) -> str:
        return self.normalized


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse ``text`` into a normalised :class:`Reference` (default tag ``latest`` unless ``default_tag`` is False)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidReference("empty image reference")
    s = text.strip()
    if any(c.isspace() for c in s):
        raise InvalidReference(f"invalid image reference {text!r}: contains white space")
    rest, digest = _split_digest(s, text)
    rest, tag = _split_tag(rest, text)
    registry, repository = _split_registry(rest, text)
    if len(registry) + 1 + len(repository) > _MAX_NAME:
        raise InvalidReference(f"invalid image reference {text!r}: name longer than {_MAX_NAME} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(registry, repository, tag, digest)


def _split_digest(s: str, text: str) -> tuple[str, str | None]:
    if "@" not in s:
        return s, None
    rest, digest = s.rsplit("@", 1)
    if not _DIGEST.fullmatch(digest) or (digest.startswith("sha256:") and not _SHA256.fullmatch(digest)):
        raise InvalidReference(f"invalid image reference {text!r}: bad digest {digest!r}")
    return rest, digest


def _split_tag(s: str, text: str) -> tuple[str, str | None]:
    slash, colon = s.rfind("/"), s.rfind(":")
    if colon <= slash:
        return s, None
    name, tag = s[:colon], s[colon + 1:]
    if not _TAG.fullmatch(tag):
        raise InvalidReference(f"invalid image reference {text!r}: bad tag {tag!r}")
    return name, tag


def _split_registry(s: str, text: str) -> tuple[str, str]:
    first, sep, remainder = s.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, path = first, remainder
        if registry.startswith("["):
            host, _, port = registry.partition("]")
            host, port = host + "]", port.removeprefix(":")
        else:
            host, _, port = registry.partition(":")
        if not _DOMAIN.fullmatch(host) or (port and not _PORT.fullmatch(port)):
            raise InvalidReference(f"invalid image reference {text!r}: bad registry {registry!r}")
        registry = _REGISTRY_ALIASES.get(registry, registry)
    else:
        registry, path = DEFAULT_REGISTRY, s
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    for comp in path.split("/"):
        if not _COMPONENT.fullmatch(comp):
            lower_ok = comp != comp.lower() and _COMPONENT.fullmatch(comp.lower())
            why = "must be lowercase" if lower_ok else f"bad path component {comp!r}"
            raise InvalidReference(f"invalid image reference {text!r}: repository {why}")
    return registry, path
