"""oci/: the OCI data model and where images live.

:mod:`.model` holds the values (digests, descriptors, manifests, indexes,
configs); :mod:`.layer` writes and reads layer tars; :mod:`.store` is the local
OCI image layout; :mod:`.archive` saves and loads oci-/docker-archives;
:mod:`.registry` talks to remote registries; :mod:`.regdir` writes the
``registry/`` directory a stock registry serves.
"""

__all__: list[str] = []
