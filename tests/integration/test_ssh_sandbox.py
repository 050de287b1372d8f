"""The SSH executor and transfer on sandbox hosts (network namespaces with their own sshd and host keys).

Uses the session's shared four hosts (``sandbox`` fixture). Nothing here changes a host for later tests:
users made for a test are removed, a "changed" host key is simulated on the client side (a known_hosts
file that lists another key for the host), a killed host only loses its SSH sessions.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from imgbuild.engine.exec import LocalExecutor
from imgbuild.engine.ssh import SSHPool, SSHTarget
from imgbuild.engine.transfer import Job, distribute
from imgbuild.errors import HostUnreachable
from tests.integration.ssh_support import descendants
from tests.support.sandbox import sandbox_slot

pytestmark = [pytest.mark.root, pytest.mark.ssh]

LOCAL = LocalExecutor()


def _target(sb, host, **kw) -> SSHTarget:
    return SSHTarget(host.address, host.port, key_file=str(sb.key_file), **kw)


def _kill_sessions(host) -> None:
    """Kill every SSH session on ``host`` (what a host dying mid-transfer does to its connections)."""
    for pid in host.processes():
        with contextlib.suppress(OSError):
            if open(f"/proc/{pid}/cmdline").read().startswith("sshd: /usr/sbin/sshd"):
                for child in descendants(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, 9)


@contextlib.contextmanager
def _user(host, *, sudo: bool = True):
    """A user with a password (and sudo, password required) on ``host`` only; removed afterwards."""
    name, password = f"imgbt{secrets.token_hex(3)}", "pw-" + secrets.token_hex(6)
    LOCAL.run(host.nsenter_argv(["useradd", "-m", "-s", "/bin/bash", name]))
    try:
        LOCAL.run(host.nsenter_argv(["chpasswd"]), input=f"{name}:{password}\n")
        if sudo:
            LOCAL.run(host.nsenter_argv(["sh", "-c", f"echo '{name} ALL=(ALL) ALL' > /etc/sudoers.d/{name}"]))
        yield name, password
    finally:
        LOCAL.run(host.nsenter_argv(["sh", "-c", f"rm -f /etc/sudoers.d/{name}; pkill -9 -u {name}; "
                                           f"userdel -r -f {name}"]), check=False)


def test_key_password_and_sudo_users_on_sandbox_hosts(sandbox, tmp_path):
    h1, h2 = sandbox.hosts[:2]
    with SSHPool(known_hosts=tmp_path / "kh") as pool, _user(h2) as (user, password):
        names = {pool.executor(_target(sandbox, h)).run(["hostname"]).stdout.strip() for h in sandbox.hosts}
        assert names == {h.name for h in sandbox.hosts}
        ex = pool.executor(SSHTarget(h2.address, h2.port, user=user, password=password))
        res = ex.run(["sh", "-c", "id -u; hostname; cat"], input=(b"x" for _ in range(3)))
        assert res.stdout.splitlines() == ["0", h2.name, "xxx"]
        with _user(h1, sudo=False) as (plain, pw):
            with pytest.raises(HostUnreachable, match=f"{plain} cannot sudo on {h1.address}"):
                pool.executor(SSHTarget(h1.address, h1.port, user=plain, password=pw)).run(["true"])


def test_a_changed_host_key_is_refused(sandbox, tmp_path):
    host = sandbox.hosts[0]
    known = tmp_path / "kh"
    with SSHPool(known_hosts=known) as pool:
        pool.executor(_target(sandbox, host)).run(["true"])  # first use: the real key is recorded
    other = tmp_path / "other"
    LOCAL.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)])
    algorithm, blob = Path(f"{other}.pub").read_text().split()[:2]
    known.write_text(f"{host.address} {algorithm} {blob}\n")  # as if the host had been rebuilt since
    with SSHPool(known_hosts=known) as pool:
        with pytest.raises(HostUnreachable) as info:
            pool.executor(_target(sandbox, host)).run(["true"])
    message = str(info.value)
    assert host.address in message and str(known) in message and "\n" not in message


def test_a_host_killed_mid_transfer_is_named_and_a_rerun_completes_it(sandbox, tmp_path):
    src = tmp_path / "tree"
    src.mkdir()
    for i in range(10):
        (src / f"blob{i}").write_bytes(os.urandom(3 << 20))
    dest = f"/tmp/imgbuild-test-{secrets.token_hex(4)}"
    victim = sandbox.hosts[1]
    with SSHPool(known_hosts=tmp_path / "kh") as pool:
        jobs = [Job(pool.executor(_target(sandbox, h)), src, dest) for h in sandbox.hosts]

        class KillAt8MiB:
            seen = 0

            def started(self, label, total):
                pass

            def advanced(self, label, n):
                if label == victim.address:
                    KillAt8MiB.seen += n
                    if KillAt8MiB.seen - n < 8 << 20 <= KillAt8MiB.seen:
                        threading.Thread(target=_kill_sessions, args=(victim,)).start()

            def finished(self, label, note):
                pass

        first = distribute(jobs, progress=KillAt8MiB())
        assert [r.ok for r in first] == [True, False, True, True]
        assert isinstance(first[1].error, HostUnreachable) and victim.address in str(first[1].error)
        there = LOCAL.run(victim.nsenter_argv(["sh", "-c", f"ls -d {dest} 2>/dev/null || echo none"])).stdout
        assert there.strip() == "none"  # nothing half-written in place
        again = distribute(jobs)
        assert [r.unchanged for r in again] == [True, False, True, True] and all(r.ok for r in again)
        sums = {pool.executor(_target(sandbox, h)).run(["sh", "-c", f"cd {dest} && cat blob* | md5sum"]).stdout
                for h in sandbox.hosts}
        assert len(sums) == 1
        for h in sandbox.hosts:
            pool.executor(_target(sandbox, h)).run(["rm", "-rf", dest])


def _running(argv: list[bytes]) -> int:
    """How many processes on this machine (every sandbox host's included) run exactly ``argv``."""
    want, n = b"\0".join(argv) + b"\0", 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    n += fh.read() == want
    return n


def test_32_sandbox_hosts_with_max_parallel_8_never_run_more_than_8_sessions(tmp_path):
    marker = f"1.{secrets.randbelow(10**6):06d}"  # `sleep 1.xxxxxx`: this test's commands, counted on the hosts
    samples: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            samples.append(_running([b"sleep", marker.encode()]))
            time.sleep(0.01)

    with sandbox_slot("imgbmax", 32) as sb, SSHPool(known_hosts=tmp_path / "kh", max_parallel=8) as pool:
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            with ThreadPoolExecutor(32) as threads:
                names = list(threads.map(lambda h: pool.executor(_target(sb, h)).run(
                    ["sh", "-c", f"hostname; exec sleep {marker}"]).stdout.strip(), sb.hosts))
        finally:
            done.set()
            watcher.join()
    assert sorted(names) == sorted(h.name for h in sb.hosts)  # all 32 ran, each on its own host
    assert max(samples) == 8 and pool.peak_sessions == 8  # the bound was reached and never passed
