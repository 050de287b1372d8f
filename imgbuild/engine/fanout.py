"""``--distribute registry``: hosts fetch the rootfs from the cluster's registry instead of this machine.

With direct distribution this machine streams the whole rootfs to every host
over SSH, so its uplink (and its CPU, encrypting N streams) bounds a big
fleet. With registry distribution:

1. the tree every non-registry host receives (the rootfs/patch images merged
   without ``registry/``, plus the Configs' files: what direct distribution
   would send minus each host's rendered files) is written once, here, as one
   zstd tar stream -- the same stream a fresh host gets over SSH, ending in the
   transfer marker and END -- into a ``registry/`` directory in the stock
   registry's storage layout, as an image ``imgbuild-distribute/rootfs:<key>``
   (:func:`publish`);
2. a registry host receives the artifact under ``registry/`` of its rootfs
   (the bundled registry serves that directory, read-only, so the artifact
   travels with the tree it serves instead of being pushed over HTTP), expands
   the tree from it in place (:func:`seed_registry_host`: the compressed tree
   crosses this machine's link once, not the tree and then the artifact), gets
   the rest (its rendered files, the images' ``registry/``) by the incremental
   transfer, and its registry is started (``init-registry``);
3. every other host fetches the blob from a registry host (spread over them)
   with ``curl | zstd -d | tar -x`` into a new directory that is swapped in
   only when the stream arrived whole (:func:`seed`); all hosts in parallel,
   so the fan-out runs on the hosts' links, not this machine's;
4. the ordinary incremental transfer then sends each host only what differs:
   its rendered files and PKI.

A host that already holds a tree (a re-run, a new patch image) is seeded again
(:func:`refetch`) when most of its tree would change (what the transfer would
send, by rsync's quick check, is over half of the tree), or when the change sent
to every fetching host over SSH would add up to more than one whole tree (they
share that tree, so each gets about the same change): then it fetches the new
artifact as a fresh host does; otherwise the incremental transfer sends it the
changed files. A registry host that holds a tree gets the new artifact and the
changed files by the incremental transfer. A host without ``curl``
or ``zstd`` is sent the tree over SSH, with a note. Registry credentials
(``registryUsername``/``registryPassword``) reach curl on its stdin (``-K -``),
never on a command line. The registry is reached over plain HTTP at
``registryPort``, as sealos' bundled registry serves.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from imgbuild.engine._tarsend import zstd_chunks
from imgbuild.engine.exec import Executor
from imgbuild.engine.transfer import (MARKER, DigestCache, Job, Progress, TreeLayer, distribute, install_script,
                                      raise_failures, tree_marker, tree_stream)
from imgbuild.engine.units import Layer
from imgbuild.errors import ImgbuildError
from imgbuild.fsutil import atomic_write

__all__ = ["REPOSITORY", "Artifact", "publish", "blob_url", "refetch", "seed", "seed_registry_host", "SEEDED",
           "HELD", "NO_TOOLS"]

REPOSITORY = "imgbuild-distribute/rootfs"
"""The repository of the fan-out artifact in the cluster registry."""

_CONFIG_TYPE = "application/vnd.imgbuild.distribute.config.v1+json"
_LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+zstd"
_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
SEEDED, HELD, NO_TOOLS = "seeded", "held", "no-tools"


@dataclass(frozen=True)
class Artifact:
    """The published tree: the registry/ directory holding it, its blob, and the markers it leads to.

    ``host_marker`` is the marker of a registry host that holds the artifact under ``registry/`` and the tree
    expanded from it (:func:`seed_registry_host`), so the transfer that follows sends that host only the rest.
    """

    root: Path
    tag: str
    digest: str
    size: int
    tree: str
    host_marker: bytes
    tree_bytes: int = 0  # the uncompressed stream's size

    @property
    def blob_path(self) -> str:
        """The blob's path inside the registry/ directory."""
        hexdigest = self.digest.split(":", 1)[1]
        return f"docker/registry/v2/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"


def publish(layers: Sequence[TreeLayer], workdir: Path, tag: str, *, level: int = 1) -> Artifact:
    """The tree of ``layers`` as ``imgbuild-distribute/rootfs:<tag>`` in the registry/ directory ``workdir/registry``.

    Kept between runs: a ``workdir`` that already holds ``tag`` is read back, not rebuilt. Anything else there
    (an earlier tag) is removed first, so the registry hosts never receive stale artifacts.
    """
    from imgbuild.oci.regdir import RegistryDir

    found = _read_back(workdir, tag)
    if found is not None:
        return found
    if workdir.exists():
        shutil.rmtree(workdir)
    reg = RegistryDir(workdir / "registry")
    cache = DigestCache()
    chunks, tree = tree_stream(layers, cache)
    counted = [0]

    def measured():  # the uncompressed size, counted on the way (no second walk of the tree)
        for chunk in chunks:
            counted[0] += len(chunk)
            yield chunk

    with reg.blob_writer() as out:
        for piece in zstd_chunks(measured(), level):
            out.write(piece)
    blob, size, total = str(out.digest), out.size, counted[0]
    config = json.dumps({"tree": tree(), "bytes": total}, sort_keys=True).encode()
    config_digest = str(reg.write_blob(config))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": _MANIFEST_TYPE, "artifactType": _CONFIG_TYPE,
        "config": {"mediaType": _CONFIG_TYPE, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": _LAYER_TYPE, "digest": blob, "size": size}],
    }, sort_keys=True).encode()
    reg.put_manifest(REPOSITORY, tag, manifest, _MANIFEST_TYPE)
    shutil.rmtree(reg.v2 / ".tmp", ignore_errors=True)  # empty scratch: not part of what hosts receive
    marker = tree_marker([*layers, Layer(reg.root, "registry")], cache)
    atomic_write(workdir / _HOST_MARKER, marker)
    return Artifact(reg.root, tag, blob, size, tree(), marker, total)


_HOST_MARKER = "registry-host.marker.gz"


def _read_back(workdir: Path, tag: str) -> Artifact | None:
    """The artifact ``workdir`` already holds under ``tag``, or None (absent, or incomplete)."""
    from imgbuild.oci.regdir import RegistryDir

    if not (workdir / _HOST_MARKER).is_file():
        return None
    reg = RegistryDir(workdir / "registry")
    try:
        raw, _ = reg.get_manifest(REPOSITORY, tag)
        doc = json.loads(raw)
        layer = doc["layers"][0]
        config = json.loads(reg.blob_path(doc["config"]["digest"]).read_bytes())
        if not reg.blob_path(layer["digest"]).is_file():
            return None
        return Artifact(reg.root, tag, layer["digest"], int(layer["size"]), config["tree"],
                        (workdir / _HOST_MARKER).read_bytes(), int(config.get("bytes", 0)))
    except Exception:  # noqa: BLE001 - anything unreadable is rebuilt
        return None


def refetch(pending: int | None, tree_bytes: int, fetching_hosts: int) -> bool:
    """Whether a host should fetch the artifact: it holds no tree (``pending`` None), over half of its tree would
    change, or the change to all ``fetching_hosts`` over SSH would exceed one whole tree from this machine."""
    if pending is None:
        return True
    return pending > tree_bytes // 2 or pending * max(1, fetching_hosts) > tree_bytes


def blob_url(address: str, port: str | int, digest: str) -> str:
    """Where a host fetches the artifact's blob from the registry at ``address:port``."""
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/v2/{REPOSITORY}/blobs/{digest}"


def _probe(*tools: str, held: bool = True) -> str:
    """Script text that ends the script saying :data:`HELD` (a tree is there, unless ``held`` is False) or
    :data:`NO_TOOLS` when there is nothing to do."""
    missing = " || ".join(f"! command -v {t} >/dev/null 2>&1" for t in tools)
    there = f'if [ -e "$1/{MARKER}" ]; then echo {HELD}; exit 0; fi; ' if held else ""
    return there + f'if {missing}; then echo {NO_TOOLS}; exit 0; fi; '



_FETCH = ('mkdir -p -- "$N"; { curl -fsS --retry 3 --retry-connrefused -K - -- "$2" '
          '|| echo "curl could not fetch $2 (exit $?)" >&2; } | zstd -d -q | tar -x -p --numeric-owner -f - -C "$N"')


def seed(executor: Executor, url: str, dest: str, *, user: str = "", password: str = "",
         replace: bool = False) -> str:
    """Fetch the artifact at ``url`` into ``dest`` on the executor's host unless it holds a tree there.

    Returns :data:`SEEDED`, :data:`HELD` (``dest`` already holds an imgbuild tree: nothing fetched) or
    :data:`NO_TOOLS` (the host lacks curl or zstd). A fetch cut short leaves ``dest`` as it was and raises.
    ``replace`` fetches over a tree that is there (swapped in whole, as a fresh one is).
    """
    config = ""
    if user:  # sent only when the registry asks for it (--anyauth), on curl's stdin
        quoted = f"{user}:{password}".replace("\\", "\\\\").replace('"', '\\"')
        config = f'anyauth\nuser = "{quoted}"\n'
    script = _probe("curl", "zstd", held=not replace) + install_script(_FETCH) + f"; echo {SEEDED}"
    got = executor.run(["sh", "-c", script, "sh", dest.rstrip("/"), url], input=config, check=False)
    said = got.stdout.split()
    if got.exit_code != 0 or not said:
        lines = got.stderr.strip().splitlines()
        tail = "; ".join([line for line in lines if line.startswith("curl")] or lines[-3:]) or f"exit {got.exit_code}"
        raise ImgbuildError(f"fetching the rootfs from the registry failed: {tail}", executor.host)
    return said[-1]


_SEED_LOCAL = ('cp -al -- "$1" "$N"; zstd -d -q < "$N/registry/$2" | tar -x -p --numeric-owner -f - -C "$N"; '
               f'rm -f -- "$N/{MARKER}"; cat > "$N/{MARKER}"')  # a new file: never write through a hard link


def seed_registry_host(executor: Executor, artifact: Artifact, dest: str, *,
                       progress: Progress | None = None) -> str:
    """Give a registry host without a tree at ``dest`` the artifact, and expand the tree from it there.

    The host receives the compressed tree once (the artifact it will serve), instead of the tree and the
    artifact: first ``registry/`` with the artifact goes to ``dest`` over SSH, then the host decompresses the
    blob into a hard-link copy of that and swaps it in with :attr:`Artifact.host_marker`. Returns
    :data:`SEEDED`, :data:`HELD` or :data:`NO_TOOLS` (no zstd there), as :func:`seed` does.
    """
    said = executor.run(["sh", "-c", _probe("zstd") + "echo absent", "sh", dest.rstrip("/")]).stdout.split()
    if said[-1:] != ["absent"]:
        return said[-1] if said else NO_TOOLS
    raise_failures(distribute([Job(executor, [Layer(artifact.root, "registry")], dest)], progress=progress))
    executor.run(["sh", "-c", install_script(_SEED_LOCAL), "sh", dest.rstrip("/"), artifact.blob_path],
                 input=artifact.host_marker)
    return SEEDED
