"""oci/: the OCI data model and where images live.

:mod:`.model` holds the values (digests, descriptors, manifests, indexes,
configs); :mod:`.layer` writes and reads layer tars; :mod:`.store` is the local
OCI image layout; :mod:`.archive` saves and loads oci-/docker-archives;
:mod:`.registry` talks to remote registries; :mod:`.regdir` writes the
``registry/`` directory a stock registry serves. :mod:`.image` is the one read-only ``Image`` protocol (and the
``Sink`` one) the store, a remote image (:mod:`.remote`), archives, OCI layouts and a Docker daemon
(:mod:`.daemon`) implement, :mod:`.transfer` the one ``copy`` between them, :mod:`.validate` the checks every
implementation passes.
"""

__all__: list[str] = []
