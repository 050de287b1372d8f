"""The desired state of a cluster, as sealos users write it: pure library code, no host is touched here.

A Clusterfile (``apps.sealos.io/v1beta1``) holds one ``Cluster`` (images, SSH
settings, host groups with roles and env, env, command, status) and ``Config``
documents; :func:`load_clusterfile` reads it with ``file:line`` errors and
:meth:`Clusterfile.dump` writes it back byte-stable. ``Cluster.from_flags``
builds one from ``run``-style flags. :mod:`~imgbuild.cluster.env` orders and
expands env, :mod:`~imgbuild.cluster.configs` applies Config documents to image
trees, :mod:`~imgbuild.cluster.state` keeps what each host has (saved
atomically, 0600) and :func:`plan` says what to do to get from that state to
the desired Cluster. (``*.tmpl`` rendering lives in :mod:`imgbuild.cluster.render`.)

Modules: ``hosts`` (addresses, ranges, roles, SSH, Machine), ``env``, ``model``
(the dataclasses), ``yamlnodes`` and ``parse`` (the schema with line numbers),
``values`` (``--values``/``--set``), ``clusterfile`` (documents, load, dump),
``configs``, ``state``, ``plan``.
"""

from __future__ import annotations

from imgbuild.cluster.clusterfile import Clusterfile, Document, load_clusterfile, parse_clusterfile, to_yaml
from imgbuild.cluster.configs import apply_configs
from imgbuild.cluster.env import FrozenMap, effective_env, expand, masked
from imgbuild.cluster.hosts import MASTER, NODE, REGISTRY, SSH, Machine, expand_hosts, parse_endpoint
from imgbuild.cluster.model import API_VERSION, Cluster, Condition, Config, Host, Status
from imgbuild.cluster.plan import Action, plan
from imgbuild.cluster.state import ClusterState, HostState, ImageRecord

__all__ = [
    "API_VERSION", "Action", "Cluster", "ClusterState", "Clusterfile", "Condition", "Config", "Document",
    "FrozenMap", "Host", "HostState", "ImageRecord", "MASTER", "Machine", "NODE", "REGISTRY", "SSH", "Status", "apply_configs",
    "effective_env", "expand", "expand_hosts", "load_clusterfile", "masked", "parse_clusterfile",
    "parse_endpoint", "plan", "to_yaml",
]
