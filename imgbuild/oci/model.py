"""The OCI data model: digests, descriptors, manifests, indexes, image configs, media types.

Values are frozen. Documents read from disk or a registry keep their exact bytes
(``raw``), so a digest never changes by re-serialising; documents made here are
serialised once, deterministically (fixed key order, no white space). Changes
return new values (``Manifest.with_layers``, ``ImageConfig.with_changes``...),
in the manner of go-containerregistry's ``mutate``.
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Iterable, Mapping

from imgbuild.errors import DigestMismatch, InputError

__all__ = [
    "MediaType", "Digest", "Platform", "Descriptor", "Manifest", "Index", "ImageConfig",
    "parse_document", "canonical_json", "LAYER_MEDIA_TYPES", "MANIFEST_MEDIA_TYPES", "INDEX_MEDIA_TYPES",
    "REF_NAME",
]

REF_NAME = "org.opencontainers.image.ref.name"
"""The OCI annotation naming an image in an image layout's ``index.json`` (the full normalised reference)."""


class MediaType:
    """The media types imgbuild reads and writes (OCI and Docker schema 2)."""

    OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    OCI_INDEX = "application/vnd.oci.image.index.v1+json"
    OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
    OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
    OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
    OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
    OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
    DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
    DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
    DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


MANIFEST_MEDIA_TYPES = frozenset({MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST})
INDEX_MEDIA_TYPES = frozenset({MediaType.OCI_INDEX, MediaType.DOCKER_LIST})
LAYER_MEDIA_TYPES = frozenset({
    MediaType.OCI_LAYER, MediaType.OCI_LAYER_GZIP, MediaType.OCI_LAYER_ZSTD, MediaType.OCI_LAYER_ND_GZIP,
    MediaType.DOCKER_LAYER_GZIP, MediaType.DOCKER_LAYER_FOREIGN,
})

_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")


class Digest(str):
    """A content digest ``algorithm:hex``; only sha256 and sha512 are accepted."""

    def __new__(cls, value: str) -> "Digest":
        if isinstance(value, Digest):
            return value
        if not isinstance(value, str) or not _DIGEST_RE.fullmatch(value):
            raise InputError(f"invalid digest {value!r}")
        return super().__new__(cls, value)

    @classmethod
    def of(cls, data: bytes) -> "Digest":
        """The sha256 digest of ``data``."""
        return str.__new__(cls, "sha256:" + hashlib.sha256(data).hexdigest())

    @classmethod
    def from_hex(cls, hexdigest: str, algorithm: str = "sha256") -> "Digest":
        """A digest from a hash's hex string."""
        return cls(f"{algorithm}:{hexdigest}")

    @property
    def algorithm(self) -> str:
        """``sha256`` or ``sha512``."""
        return self.split(":", 1)[0]

    @property
    def hex(self) -> str:  # type: ignore[override]
        """The hex part after the colon."""
        return self.split(":", 1)[1]

    def hasher(self):
        """A fresh hashlib object of this digest's algorithm."""
        return hashlib.new(self.algorithm)

    def verify(self, data: bytes, where: str | None = None) -> None:
        """Raise DigestMismatch unless ``data`` hashes to this digest."""
        h = self.hasher()
        h.update(data)
        actual = f"{self.algorithm}:{h.hexdigest()}"
        if actual != self:
            raise DigestMismatch(str(self), actual, where)


def canonical_json(obj: Any) -> bytes:
    """Compact JSON bytes with keys in the order given; the form imgbuild writes documents in."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _load_json(raw: bytes, what: str) -> dict:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{what} is not a JSON object")
    return data


_GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "i686": "386", "i386": "386"}


@dataclass(frozen=True, order=True)
class Platform:
    """An OS/architecture/variant triple, as in ``linux/arm64/v8``."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Platform":
        """Parse ``os/arch[/variant]``; ``arch`` alone means linux."""
        parts = [p for p in text.strip().lower().split("/") if p]
        if len(parts) == 1:
            parts = ["linux", *parts]
        if not 2 <= len(parts) <= 3:
            raise InputError(f"invalid platform {text!r}: expected os/arch[/variant]")
        arch = _GO_ARCH.get(parts[1], parts[1])
        return cls(parts[0], arch, parts[2] if len(parts) == 3 else None)

    @classmethod
    def current(cls) -> "Platform":
        """This machine's platform (linux/amd64 on x86_64)."""
        machine = _platform.machine().lower()
        return cls("linux", _GO_ARCH.get(machine, machine), "v7" if machine == "armv7l" else None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Platform":
        """From an OCI ``platform`` object."""
        return cls(str(data.get("os", "")), str(data.get("architecture", "")), data.get("variant") or None)

    def to_dict(self) -> dict:
        """As an OCI ``platform`` object."""
        d = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        return d

    def matches(self, other: "Platform") -> bool:
        """True if ``other`` satisfies this platform (a missing variant matches any; arm64 defaults to v8)."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        mine = self.variant or ("v8" if self.architecture == "arm64" else None)
        theirs = other.variant or ("v8" if other.architecture == "arm64" else None)
        return self.variant is None or mine == theirs

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content: media type, digest, size, and optional annotations/platform/urls."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Descriptor":
        """From an OCI descriptor object; validates digest and size."""
        try:
            size = int(data["size"])
            digest = Digest(data["digest"])
            media_type = str(data.get("mediaType", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"invalid descriptor: {exc}") from exc
        if size < 0:
            raise InputError(f"invalid descriptor size {size}")
        plat = Platform.from_dict(data["platform"]) if isinstance(data.get("platform"), Mapping) else None
        return cls(media_type, digest, size, dict(data.get("annotations") or {}), plat, tuple(data.get("urls") or ()))

    @classmethod
    def for_bytes(cls, media_type: str, data: bytes, annotations: Mapping[str, str] | None = None) -> "Descriptor":
        """A descriptor of ``data``."""
        return cls(media_type, Digest.of(data), len(data), dict(annotations or {}))

    def to_dict(self) -> dict:
        """As an OCI descriptor object (field order: mediaType, digest, size, ...)."""
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.urls:
            d["urls"] = list(self.urls)
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform:
            d["platform"] = self.platform.to_dict()
        return d

    def with_annotations(self, **extra: str) -> "Descriptor":
        """A copy with ``extra`` annotations added."""
        return replace(self, annotations={**self.annotations, **extra})


class _Document:
    """What manifests and indexes share: exact bytes, their digest and size, a descriptor of them."""

    raw: bytes
    media_type: str

    @cached_property
    def digest(self) -> Digest:
        """sha256 of the exact bytes."""
        return Digest.of(self.raw)

    @property
    def size(self) -> int:
        """Length of the exact bytes."""
        return len(self.raw)

    def descriptor(self, **annotations: str) -> Descriptor:
        """A descriptor pointing at this document."""
        return Descriptor(self.media_type, self.digest, self.size, annotations)


@dataclass(frozen=True)
class Manifest(_Document):
    """An image manifest (OCI, or Docker schema 2 read and written as-is), with its exact bytes."""

    raw: bytes
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str | None = None) -> "Manifest":
        """Parse a manifest, keeping ``raw``; ``media_type`` is the transport's Content-Type if known."""
        data = _load_json(raw, "image manifest")
        mt = data.get("mediaType") or media_type or MediaType.OCI_MANIFEST
        if mt not in MANIFEST_MEDIA_TYPES or data.get("schemaVersion") != 2:
            raise InputError(f"unsupported manifest (mediaType {mt!r}, schemaVersion {data.get('schemaVersion')!r})")
        try:
            config = Descriptor.from_dict(data["config"])
            layers = tuple(Descriptor.from_dict(d) for d in data.get("layers") or ())
        except (KeyError, TypeError) as exc:
            raise InputError(f"invalid image manifest: missing {exc}") from exc
        return cls(raw, mt, config, layers, dict(data.get("annotations") or {}))

    @classmethod
    def build(
        cls, config: Descriptor, layers: Iterable[Descriptor], annotations: Mapping[str, str] | None = None,
        media_type: str = MediaType.OCI_MANIFEST,
    ) -> "Manifest":
        """Make a new manifest and serialise it deterministically."""
        layers = tuple(layers)
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "config": config.to_dict(),
                               "layers": [d.to_dict() for d in layers]}
        if annotations:
            doc["annotations"] = dict(annotations)
        return cls(canonical_json(doc), media_type, config, layers, dict(annotations or {}))

    def with_layers(self, layers: Iterable[Descriptor], config: Descriptor | None = None) -> "Manifest":
        """A new manifest with these layers (and config), same media type and annotations."""
        return Manifest.build(config or self.config, layers, self.annotations, self.media_type)

    def with_annotations(self, annotations: Mapping[str, str]) -> "Manifest":
        """A new manifest with ``annotations`` merged over the existing ones."""
        return Manifest.build(self.config, self.layers, {**self.annotations, **annotations}, self.media_type)

    def blobs(self) -> tuple[Descriptor, ...]:
        """Config then layers: every blob this manifest references."""
        return (self.config, *self.layers)


@dataclass(frozen=True)
class Index(_Document):
    """An OCI image index or Docker manifest list, with its exact bytes."""

    raw: bytes
    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str | None = None) -> "Index":
        """Parse an index, keeping ``raw``."""
        data = _load_json(raw, "image index")
        mt = data.get("mediaType") or media_type or MediaType.OCI_INDEX
        if mt not in INDEX_MEDIA_TYPES:
            raise InputError(f"unsupported image index mediaType {mt!r}")
        try:
            manifests = tuple(Descriptor.from_dict(d) for d in data.get("manifests") or ())
        except TypeError as exc:
            raise InputError(f"invalid image index: {exc}") from exc
        return cls(raw, mt, manifests, dict(data.get("annotations") or {}))

    @classmethod
    def build(cls, manifests: Iterable[Descriptor], annotations: Mapping[str, str] | None = None,
              media_type: str = MediaType.OCI_INDEX) -> "Index":
        """Make a new index and serialise it deterministically."""
        manifests = tuple(manifests)
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type,
                               "manifests": [d.to_dict() for d in manifests]}
        if annotations:
            doc["annotations"] = dict(annotations)
        return cls(canonical_json(doc), media_type, manifests, dict(annotations or {}))

    def select(self, platform: Platform) -> Descriptor | None:
        """The first child manifest for ``platform`` (attestation manifests excluded), or None."""
        for d in self.manifests:
            if d.platform and d.platform.os != "unknown" and platform.matches(d.platform):
                return d
        return None

    def platforms(self) -> list[Platform]:
        """The platforms of the children that declare one."""
        return [d.platform for d in self.manifests if d.platform and d.platform.os != "unknown"]


def parse_document(raw: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse a manifest or an index, deciding by its mediaType field, the given type, or its shape."""
    data = _load_json(raw, "manifest")
    mt = data.get("mediaType") or media_type
    if mt in INDEX_MEDIA_TYPES or (mt is None and "manifests" in data):
        return Index.from_bytes(raw, mt)
    return Manifest.from_bytes(raw, mt)


@dataclass(frozen=True)
class ImageConfig:
    """An image configuration (OCI config / Docker container image JSON), with its exact bytes."""

    raw: bytes
    media_type: str = MediaType.OCI_CONFIG

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str = MediaType.OCI_CONFIG) -> "ImageConfig":
        """Parse and validate a config, keeping ``raw``."""
        cfg = cls(raw, media_type)
        cfg.data  # noqa: B018 - validate now
        return cfg

    @classmethod
    def new(cls, platform: Platform | None = None, created: str | None = None) -> "ImageConfig":
        """An empty config for ``platform`` (default this machine) with no layers."""
        plat = platform or Platform.current()
        doc: dict[str, Any] = {}
        if created:
            doc["created"] = created
        doc.update({"architecture": plat.architecture, "os": plat.os})
        if plat.variant:
            doc["variant"] = plat.variant
        doc.update({"config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []})
        return cls(canonical_json(doc))

    @cached_property
    def data(self) -> dict:
        """The parsed document (treat as read-only; use with_changes to derive)."""
        data = _load_json(self.raw, "image config")
        if not isinstance(data.get("rootfs", {}), dict):
            raise InputError("invalid image config: rootfs is not an object")
        return data

    @cached_property
    def digest(self) -> Digest:
        """sha256 of the exact bytes."""
        return Digest.of(self.raw)

    def descriptor(self) -> Descriptor:
        """A descriptor pointing at this config."""
        return Descriptor(self.media_type, self.digest, len(self.raw))

    def _section(self) -> dict:
        return self.data.get("config") or {}

    @property
    def platform(self) -> Platform:
        """The platform the image is for."""
        return Platform(self.data.get("os", "linux"), self.data.get("architecture", ""), self.data.get("variant"))

    @property
    def labels(self) -> dict[str, str]:
        """config.Labels."""
        return dict(self._section().get("Labels") or {})

    @property
    def env(self) -> list[str]:
        """config.Env as ``K=V`` strings."""
        return list(self._section().get("Env") or [])

    @property
    def env_map(self) -> dict[str, str]:
        """config.Env as a mapping."""
        return dict(e.split("=", 1) if "=" in e else (e, "") for e in self.env)

    @property
    def cmd(self) -> list[str]:
        """config.Cmd."""
        return list(self._section().get("Cmd") or [])

    @property
    def entrypoint(self) -> list[str]:
        """config.Entrypoint."""
        return list(self._section().get("Entrypoint") or [])

    @property
    def diff_ids(self) -> list[Digest]:
        """rootfs.diff_ids: the digests of the uncompressed layers, in order."""
        return [Digest(d) for d in (self.data.get("rootfs") or {}).get("diff_ids") or []]

    @property
    def created(self) -> str | None:
        """The creation time (RFC 3339), if set."""
        return self.data.get("created")

    @property
    def history(self) -> list[dict]:
        """The history entries."""
        return list(self.data.get("history") or [])

    def with_changes(self, *, config: Mapping[str, Any] | None = None, **top: Any) -> "ImageConfig":
        """A new config: keys of ``config`` replace those of the ``config`` section (None deletes), ``top`` likewise."""
        doc = json.loads(self.raw)
        section = dict(doc.get("config") or {})
        for k, v in (config or {}).items():
            if v is None:
                section.pop(k, None)
            else:
                section[k] = v
        doc["config"] = section
        for k, v in top.items():
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = v
        return ImageConfig(canonical_json(doc), self.media_type)

    def with_layer(self, diff_id: str, history: Mapping[str, Any] | None = None) -> "ImageConfig":
        """A new config with one more layer (its diffID) and a history entry."""
        doc = json.loads(self.raw)
        rootfs = doc.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        rootfs.setdefault("type", "layers")
        rootfs.setdefault("diff_ids", []).append(str(Digest(diff_id)))
        doc.setdefault("history", []).append(dict(history or {}))
        return ImageConfig(canonical_json(doc), self.media_type)

    def with_history(self, entry: Mapping[str, Any]) -> "ImageConfig":
        """A new config with a history entry that adds no layer (``empty_layer``)."""
        doc = json.loads(self.raw)
        doc.setdefault("history", []).append({**entry, "empty_layer": True})
        return ImageConfig(canonical_json(doc), self.media_type)
