"""imgbuild: build, ship and run cluster images.

The library is usable without the CLI: :mod:`imgbuild.api` has the one-call
verbs (build, pull, push, inspect, mount, ...), :mod:`imgbuild.errors` the one
error tree. The CLI in :mod:`imgbuild.cli` is a thin layer over both.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
