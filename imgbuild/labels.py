"""The contract names other tools and images rely on, said once.

Image labels and env follow sealos, so existing cluster images run unchanged;
sealer's cluster instructions are kept as ``io.imgbuild.*`` labels (see
:mod:`imgbuild.builder.plan`). The run engine's host layout and the env it
gives every lifecycle script are defined here too, so images, the engine and
the docs agree.

Lifecycle labels (``check``, ``init``, ``clean``, ``init-registry``,
``clean-registry``, and imgbuild's ``join-master`` / ``join-node``) each run as
``cd <rootfs>/scripts && bash <value>`` with the value env-expanded; where the
label is absent but ``scripts/<name>.sh`` exists, that script runs.
"""

from __future__ import annotations

__all__ = [
    "TYPE_LABEL", "TYPE_ROOTFS", "TYPE_APPLICATION", "TYPE_PATCH", "IMAGE_TYPES",
    "LIFECYCLE_LABELS", "CHECK", "INIT", "CLEAN", "INIT_REGISTRY", "CLEAN_REGISTRY", "JOIN_MASTER", "JOIN_NODE",
    "REGISTRY_ENV_DEFAULTS", "SECRET_ENV_KEYS", "LABEL_PREFIX", "ROLE_ANNOTATION", "LAYER_ROLES",
    "DEFAULT_DATA_DIR", "ENGINE_ENV",
]

TYPE_LABEL = "sealos.io.type"
TYPE_ROOTFS = "rootfs"
TYPE_APPLICATION = "application"
TYPE_PATCH = "patch"
IMAGE_TYPES = (TYPE_ROOTFS, TYPE_APPLICATION, TYPE_PATCH)

CHECK = "check"
INIT = "init"
CLEAN = "clean"
INIT_REGISTRY = "init-registry"
CLEAN_REGISTRY = "clean-registry"
JOIN_MASTER = "join-master"
JOIN_NODE = "join-node"
LIFECYCLE_LABELS = (CHECK, INIT, CLEAN, INIT_REGISTRY, CLEAN_REGISTRY, JOIN_MASTER, JOIN_NODE)

REGISTRY_ENV_DEFAULTS = {
    "registryDomain": "sealos.hub",
    "registryPort": "5000",
    "registryUsername": "admin",
    "registryPassword": "passw0rd",
    "registryData": "/var/lib/registry",
    "registryConfig": "/etc/registry",
    "criData": "/var/lib/containerd",
}
"""sealos' defaults for the registry env a rootfs image's scripts read (an image's ENV overrides them)."""

SECRET_ENV_KEYS = frozenset({"registryPassword", "passwd", "pkPasswd", "password", "clusterToken"})
"""Env and field names whose values are never printed, logged or shown in ``--json`` (masked as ``******``)."""

LABEL_PREFIX = "io.imgbuild."
ROLE_ANNOTATION = "io.imgbuild.layer.role"
LAYER_ROLES = ("rootfs", "registry", "scripts", "application")

DEFAULT_DATA_DIR = "/var/lib/sealos/data"
"""Per-cluster data on hosts, sealos' layout: ``<data-dir>/<cluster>/rootfs`` holds the merged rootfs of
every rootfs/patch image, ``<data-dir>/<cluster>/applications/<app>/workdir`` each application image."""

ENGINE_ENV = {
    "SEALOS_SYS_CLUSTER_NAME": "the cluster's name",
    "SEALOS_SYS_ROOTFS": "the rootfs directory on this host",
    "HOST_IP": "this host's address (without port)",
    "HOST_ROLES": "this host's roles, comma-separated",
    "MASTER0": "the first master's address",
    "MASTERS": "every master's address, comma-separated, master0 first",
    "NODES": "every node's address, comma-separated",
    "REGISTRY_HOSTS": "the registry hosts' addresses, comma-separated",
    "SEALOS_SYS_PKI": "the cluster PKI on this host: ca.crt, host.crt, host.key (SANs: address, hostname, "
                      "127.0.0.1, localhost), token (the cluster's join secret, 0600), ca.key on masters",
}
"""Env the engine adds for every lifecycle script and CMD, after the image's and the user's env."""
