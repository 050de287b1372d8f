"""A secret env value never shows in a process's command line, on the host or here, while its command runs.

A command that sleeps runs over SSH with ``registryPassword=<random>``; meanwhile a scanner reads every
``/proc/*/cmdline`` on this machine (the loopback sshd's sessions, the local ``ssh`` client of the OpenSSH path
and the sandbox hosts' processes all live in this machine's /proc) and must never find the value. As a
control it also reads ``/proc/*/environ``, where the value belongs (the command's own environment), and it
must see the sleeping command itself, so the scan ran while the command did.

The login shell that sshd starts as ``SHELL -c LINE`` ``exec``s the command within a millisecond, too quick for
a scan; so the sudo users here log in with a shell that waits half a second before it becomes bash, and the
line sshd handed it stays in its cmdline that long (with values on the line, as before, these tests fail).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from imgbuild.engine.ssh import SSHPool, SSHTarget
from tests.integration.ssh_support import make_user, start_sshd

pytestmark = [pytest.mark.ssh, pytest.mark.root]

SCRIPT = 'sleep "$1"; printf "%s|" "$registryPassword" "$(id -u)"; wc -c'


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """One sshd on 127.0.0.1:<free port>; root by key, other users by password."""
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def slow_shell():
    """A login shell that shows its ``-c LINE`` for half a second, then becomes bash (any user may run it)."""
    where = Path(tempfile.mkdtemp(prefix="imgbt-shell-"))
    where.chmod(0o755)
    shell = where / "slowsh"
    shell.write_text('#!/bin/sh\nsleep 0.5\nexec /bin/bash "$@"\n')
    shell.chmod(0o755)
    try:
        yield str(shell)
    finally:
        shutil.rmtree(where)


@dataclass
class Scan:
    """What the scanner saw: command lines and environments holding the value, and the command itself."""

    in_cmdline: set[str] = field(default_factory=set)
    in_environ: int = 0
    saw_command: bool = False
    rounds: int = 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended, or a kernel thread
        return b""


@contextlib.contextmanager
def _scanning(value: str, marker: str) -> Iterator[Scan]:
    """Scan every process's cmdline and environ for ``value`` until the block ends."""
    scan, stop, needle = Scan(), threading.Event(), value.encode()

    def loop() -> None:
        while not stop.is_set():
            for proc in Path("/proc").glob("[0-9]*"):
                cmdline = _read(proc / "cmdline")
                if needle in cmdline:
                    scan.in_cmdline.add(cmdline.replace(b"\0", b" ").decode(errors="replace"))
                scan.saw_command |= marker.encode() in cmdline and b"sleep" in cmdline
                scan.in_environ += needle in _read(proc / "environ")
            scan.rounds += 1
            time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield scan
    finally:
        stop.set()
        thread.join(timeout=10)


def _run_watched(pool: SSHPool, target: SSHTarget, *, streamed: bool) -> tuple[str, Scan]:
    """Run SCRIPT with a fresh secret under the scanner; its output and what the scanner saw."""
    value = "rp-" + secrets.token_hex(12)
    marker = f"2.{secrets.randbelow(900) + 100}"  # the sleep's argument: finds the command in the scan
    data = (b"x" * 100 for _ in range(10)) if streamed else b"x" * 1000
    with _scanning(value, marker) as scan:
        res = pool.executor(target).run(["sh", "-c", SCRIPT, "sh", marker],
                                        env={"registryPassword": value, "OTHER": "plain"}, input=data)
    assert res.stdout.split("|")[0] == value, res.stderr
    assert not scan.in_cmdline, f"the secret is in a command line: {scan.in_cmdline}"
    assert scan.saw_command and scan.in_environ and scan.rounds >= 5
    return res.stdout, scan


@pytest.mark.parametrize("openssh", [False, True], ids=["asyncssh", "openssh"])
def test_root_by_key_keeps_the_secret_off_every_command_line(sshd, tmp_path, openssh):
    with SSHPool(known_hosts=tmp_path / "kh", openssh=openssh) as pool:
        target = SSHTarget("127.0.0.1", sshd.port, key_file=str(sshd.key_file))
        assert pool.uses_openssh(target, iter([])) is openssh
        out, _ = _run_watched(pool, target, streamed=True)
        assert out.split("|", 2)[1:] == ["0", "1000\n"]


@pytest.mark.parametrize("nopasswd", [False, True], ids=["password-sudo", "nopasswd-sudo"])
def test_sudo_users_get_the_env_and_keep_it_off_command_lines(sshd, tmp_path, slow_shell, nopasswd):
    with make_user(nopasswd=nopasswd) as (user, password), SSHPool(known_hosts=tmp_path / "kh") as pool:
        subprocess.run(["usermod", "-s", slow_shell, user], check=True)
        target = SSHTarget("127.0.0.1", sshd.port, user=user, password=password)
        out, _ = _run_watched(pool, target, streamed=False)
        assert out.split("|", 2)[1:] == ["0", "1000\n"]  # root through sudo; the input intact after the prefix
        assert not any(password in line for line in sshd.log)


def test_sandbox_host_keeps_the_secret_off_every_command_line(sandbox, tmp_path):
    host = sandbox.hosts[0]
    with SSHPool(known_hosts=tmp_path / "kh") as pool:
        target = SSHTarget(host.address, host.port, key_file=str(sandbox.key_file))
        out, _ = _run_watched(pool, target, streamed=True)
        assert out.split("|", 2)[1:] == ["0", "1000\n"]
