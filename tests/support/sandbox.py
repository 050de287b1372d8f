"""Sandbox hosts for tests: stable names, so a sandbox left by a crashed run is removed by the next one.

Every test sandbox lives in one Home, :data:`TEST_HOME` (not the per-test
``IMGBUILD_HOME``), under a name taken from a small set of slots: ``imgbtest``
for the session's shared hosts, others (``imgbtown``...) for tests that need their own.
A slot is held with a lock file for as long as the sandbox lives, so two test
sessions running at once take different slots; whoever takes a slot first
removes whatever a crashed run left under that name (record and kernel view). A
name another Home's live sandbox uses is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

from imgbuild.engine.exec import LocalExecutor
from imgbuild.home import Home
from imgbuild.infra import _netns
from imgbuild.infra.sandbox import Sandbox, down_sandbox

__all__ = ["TEST_HOME", "sandbox_slot", "sandbox_name", "ssh_argv", "host_run"]

TEST_HOME = Home(Path(tempfile.gettempdir()) / "imgbuild-sandbox-tests")
_SLOTS = 8


@contextlib.contextmanager
def sandbox_slot(prefix: str, count: int, *, subnet: str | None = None) -> Iterator[Sandbox]:
    """A fresh sandbox of ``count`` hosts named ``prefix`` (or ``prefix-2``... when taken), downed afterwards."""
    executor = LocalExecutor()
    with sandbox_name(prefix) as name:
        down_sandbox(TEST_HOME.ensure(), name, executor)  # what a crashed run left under this name
        sb = Sandbox.up(TEST_HOME, name, count, executor, subnet=subnet)
        try:
            yield sb
        finally:
            down_sandbox(TEST_HOME, name, executor)


@contextlib.contextmanager
def sandbox_name(prefix: str) -> Iterator[str]:
    """Hold the first free slot name for ``prefix`` (a lock file in TEST_HOME) while the caller runs."""
    locks = TEST_HOME.ensure().root / "slots"
    locks.mkdir(exist_ok=True)
    for i in range(1, _SLOTS + 1):
        name = prefix if i == 1 else f"{prefix}-{i}"
        fd = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        owner = _netns.link_alias(_netns.machine_link(name))
        if owner and owner != str(TEST_HOME.root):  # another Home's sandbox of that name: not ours to remove
            os.close(fd)
            continue
        try:
            yield name
        finally:
            os.close(fd)
        return
    raise RuntimeError(f"all {_SLOTS} sandbox slots for {prefix} are in use")


def ssh_argv(sb: Sandbox, address: str, command: str, user: str = "root") -> list[str]:
    """The OpenSSH client command that runs ``command`` on a sandbox host with the sandbox key (strict host keys)."""
    return ["ssh", "-i", str(sb.key_file), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={sb.home.known_hosts}", "-o", "ConnectTimeout=5", f"{user}@{address}",
            command]


def host_run(sb: Sandbox, index: int, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
    """Run ``argv`` inside host ``index`` (1-based) through nsenter, as test setup does; output as text."""
    return subprocess.run(sb.hosts[index - 1].nsenter_argv(argv), capture_output=True, text=True, check=check,
                          timeout=60)
