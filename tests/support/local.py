"""What the CLI edge passes the library, for tests: the test's Home (``$IMGBUILD_HOME``), its store, a local executor.

Library code never reads ``$IMGBUILD_HOME``; tests that call it directly use these
helpers, which make the same Home, Store and LocalExecutor a CLI command would.
"""

from __future__ import annotations

from imgbuild.engine.exec import LocalExecutor
from imgbuild.home import Home, home
from imgbuild.oci.store import Store, open_store
from imgbuild.rootfs import mount as _mount

__all__ = ["EXEC", "here", "store", "mount", "umount", "list_mounts", "mounts_dir", "record_of", "build"]

EXEC = LocalExecutor()


def here() -> Home:
    """The test's Home."""
    return home()


def store() -> Store:
    """The image store of the test's Home."""
    return open_store(home())


def mount(ref: str, *, executor=EXEC, **kw):
    """:func:`imgbuild.rootfs.mount.mount` in the test's store."""
    return _mount.mount(ref, store=store(), executor=executor, **kw)


def umount(target: str | None = None, **kw):
    """:func:`imgbuild.rootfs.mount.umount` in the test's Home."""
    return _mount.umount(target, home=home(), executor=EXEC, **kw)


def list_mounts():
    """:func:`imgbuild.rootfs.mount.list_mounts` of the test's Home."""
    return _mount.list_mounts(home(), EXEC)


def mounts_dir():
    """:func:`imgbuild.rootfs.mount.mounts_dir` of the test's Home."""
    return _mount.mounts_dir(home())


def record_of(target: str):
    """:func:`imgbuild.rootfs.mount.record_of` in the test's Home."""
    return _mount.record_of(target, home(), EXEC)


def build(req):
    """:func:`imgbuild.builder.request.build` of ``req`` into the test's store, tools run locally."""
    from imgbuild.builder.request import build as _build

    return _build(req, store(), executor=EXEC)
