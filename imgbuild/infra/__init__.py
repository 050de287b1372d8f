"""Hosts to run cluster images on, made on this machine: network-namespace sandboxes, or containers of a daemon.

:mod:`imgbuild.infra.sandbox` makes small local "servers" out of Linux
namespaces: each with its own address on a private switch, hostname, process
table, sshd and writable root filesystem (overlays over the machine's), so a
cluster image can be tried, and every multi-host test can run, without VMs.
The private modules hold its parts: ``_netns`` (names, subnet choice, the
network and what the kernel shows of it) and ``_hostinit`` (a host's init
script and the files it starts with). :mod:`imgbuild.infra.docker` makes the same
kind of hosts as privileged containers of a Docker daemon (or podman's service)
on their own bridge network, through the Engine API (``--provider docker``).
"""

from __future__ import annotations

__all__: list[str] = []
