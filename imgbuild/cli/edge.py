"""The CLI edge: where a command makes what the library is given.

A command calls :func:`local_store` (or :func:`local_home`) once: that reads
``$IMGBUILD_HOME`` through :func:`imgbuild.home.home`, the only place that
does, and the resulting Store carries its Home down into the library. Commands
that run tools make one :func:`local_executor` and pass it down the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imgbuild.engine.exec import LocalExecutor
    from imgbuild.home import Home
    from imgbuild.oci.store import Store

__all__ = ["local_home", "local_store", "local_executor"]


def local_home() -> Home:
    """The Home named by ``$IMGBUILD_HOME`` (default ``~/.imgbuild``), created 0700."""
    from imgbuild.home import home

    return home()


def local_store() -> Store:
    """The image store of :func:`local_home`, carrying that Home."""
    from imgbuild.oci.store import open_store

    return open_store(local_home())


def local_executor() -> LocalExecutor:
    """An executor running commands on this machine."""
    from imgbuild.engine.exec import LocalExecutor

    return LocalExecutor()
