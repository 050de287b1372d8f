"""The SSH executor against a real sshd on loopback: logins, sudo, streams, timeouts, host keys, fan-out."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from imgbuild.engine.exec import LocalExecutor
from imgbuild.engine.ssh import SSHPool, SSHTarget, executor_for
from imgbuild.errors import CommandFailed, HostUnreachable, InputError
from tests.integration.ssh_support import free_port, make_user, start_sshd

pytestmark = [pytest.mark.ssh, pytest.mark.root]


@pytest.fixture
def sshd(tmp_path: Path):
    """One sshd on 127.0.0.1:<free port>; root by key, other users by password."""
    server = start_sshd(tmp_path / "sshd")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pool(tmp_path: Path):
    with SSHPool(known_hosts=tmp_path / "known_hosts", max_parallel=8) as p:
        yield p


def _root(server) -> SSHTarget:
    return SSHTarget("127.0.0.1", server.port, key_file=str(server.key_file))


def test_key_login_streams_and_keeps_stdout_stderr_apart(sshd, pool):
    lines: list[str] = []
    ex = pool.executor(_root(sshd))
    res = ex.run(["sh", "-c", "echo out; echo err >&2; printf tail"], on_line=lines.append)
    assert (res.stdout, res.stderr, res.exit_code, res.host) == ("out\ntail", "err\n", 0, f"127.0.0.1:{sshd.port}")
    assert sorted(lines) == ["err", "out", "tail"]
    assert ex.run(["id", "-u"]).stdout == "0\n"


def test_failure_carries_evidence(sshd, pool):
    with pytest.raises(CommandFailed) as info:
        pool.executor(_root(sshd)).run(["sh", "-c", "echo step-three-broke >&2; exit 7"])
    res = info.value.result
    assert (res.exit_code, res.host) == (7, f"127.0.0.1:{sshd.port}")
    assert "exit code 7" in str(info.value) and "step-three-broke" in str(info.value)


@pytest.mark.parametrize("openssh", [False, True], ids=["asyncssh", "openssh"])
def test_env_cwd_streamed_input_and_timeout(sshd, tmp_path, openssh):
    with SSHPool(known_hosts=tmp_path / "kh", openssh=openssh) as pool:
        ex = pool.executor(_root(sshd))
        assert pool.uses_openssh(ex.target, iter([b""])) is openssh
        res = ex.run(["sh", "-c", 'echo "$A|$B|$(pwd)"; wc -c'], env={"A": "it's", "B": "x y"}, cwd="/tmp",
                     input=(b"x" * 1000 for _ in range(3000)))
        assert res.stdout.splitlines() == ["it's|x y|/tmp", "3000000"] and res.host == f"127.0.0.1:{sshd.port}"
        with pytest.raises(CommandFailed, match="timed out after 1") as info:
            ex.run(["sleep", "20"], input=iter([b"x"]), timeout=1)
        assert info.value.result.command == ("sleep", "20")
        with pytest.raises(CommandFailed, match="exit code 3"):
            ex.run(["sh", "-c", "cat >/dev/null; exit 3"], input=iter([b"x"]))


@pytest.mark.parametrize("openssh", [False, True], ids=["asyncssh", "openssh"])
def test_a_remote_command_killed_by_a_signal_fails_and_the_host_stays_reachable(sshd, tmp_path, openssh):
    """ssh exits 255 without a word both for this and for a lost connection: only the latter is HostUnreachable."""
    with SSHPool(known_hosts=tmp_path / "kh", openssh=openssh) as pool:
        ex = pool.executor(_root(sshd))
        with pytest.raises(CommandFailed) as info:
            ex.run(["sh", "-c", "cat >/dev/null; kill -9 $$"], input=iter([b"x" * 1000]))
        assert not isinstance(info.value, HostUnreachable) and info.value.result.exit_code in (-1, 255)
        assert ex.run(["echo", "still there"], input=iter([b""])).stdout == "still there\n"


def test_connection_is_reused(sshd, pool):
    ex = pool.executor(_root(sshd))
    for _ in range(3):
        ex.run(["true"])
    accepted = [ln for ln in sshd.log if "Accepted publickey" in ln]
    assert len(accepted) == 1 and sshd.sessions_started() == 3


def test_timeout_is_enforced(sshd, pool):
    start = time.monotonic()
    with pytest.raises(CommandFailed, match="timed out after 1"):
        pool.executor(_root(sshd)).run(["sleep", "30"], timeout=1)
    assert time.monotonic() - start < 5
    assert pool.executor(_root(sshd)).run(["echo", "still usable"]).stdout == "still usable\n"


def test_password_user_runs_through_sudo_without_leaking_the_password(sshd, pool):
    with make_user() as (user, password):
        target = SSHTarget("127.0.0.1", sshd.port, user=user, password=password)
        ex = pool.executor(target)
        res = ex.run(["sh", "-c", 'id -u; echo "$X"; cat'], input="from-stdin\n", env={"X": "kept"}, cwd="/root")
        assert res.stdout.splitlines() == ["0", "kept", "from-stdin"]
        streamed = ex.run(["wc", "-c"], input=(b"y" * 100 for _ in range(10)))  # a password login: asyncssh
        assert streamed.stdout.strip() == "1000" and not pool.uses_openssh(target, iter([]))
        assert password not in repr(target)
        assert not any(password in line for line in sshd.log)
        bad = SSHTarget("127.0.0.1", sshd.port, user=user, password="wrong")
        with pytest.raises(HostUnreachable, match=f"refused by 127.0.0.1:{sshd.port}"):
            pool.executor(bad).run(["true"])


def test_nopasswd_sudo_user(sshd, pool, tmp_path):
    with make_user(nopasswd=True) as (user, password):
        ex = pool.executor(SSHTarget("127.0.0.1", sshd.port, user=user, password=password))
        assert ex.run(["sh", "-c", "id -u; cat"], input="in\n").stdout == "0\nin\n"


def test_user_without_sudo_is_named(sshd, pool):
    with make_user(sudo=False) as (user, password):
        with pytest.raises(HostUnreachable, match=f"{user} cannot sudo on 127.0.0.1:{sshd.port}"):
            pool.executor(SSHTarget("127.0.0.1", sshd.port, user=user, password=password)).run(["true"])


def test_unreachable_host_is_named(pool):
    port = free_port()
    with pytest.raises(HostUnreachable, match=f"cannot connect to 127.0.0.1:{port}") as info:
        pool.executor(SSHTarget("127.0.0.1", port)).run(["true"])
    assert info.value.host == f"127.0.0.1:{port}"


def test_host_key_trusted_on_first_use_and_a_changed_key_refused(tmp_path, sshd):
    known = tmp_path / "known_hosts"
    with SSHPool(known_hosts=known) as pool:
        pool.executor(_root(sshd)).run(["true"])
    assert known.read_text().split() == [f"[127.0.0.1]:{sshd.port}", *sshd.host_pub.split()[:2]]
    port, key = sshd.port, sshd.key_file
    sshd.stop()
    other = start_sshd(tmp_path / "rebuilt", [port])  # same address, new host key
    try:
        other.dir.joinpath("authorized_keys").write_text(Path(f"{key}.pub").read_text())
        with SSHPool(known_hosts=known) as pool:
            with pytest.raises(HostUnreachable) as info:
                pool.executor(_root(sshd)).run(["true"])
        assert str(known) in str(info.value) and f"127.0.0.1:{port}" in str(info.value)
        assert "\n" not in str(info.value)
        with SSHPool(known_hosts=known, insecure_host_key=True) as pool:
            assert pool.executor(_root(sshd)).run(["echo", "ok"]).stdout == "ok\n"
        assert len(known.read_text().splitlines()) == 1  # insecure mode records nothing
    finally:
        other.stop()


def test_max_parallel_bounds_sessions_counted_by_the_server(tmp_path):
    server = start_sshd(tmp_path / "many", 32)
    try:
        targets = [SSHTarget("127.0.0.1", p, key_file=str(server.key_file)) for p in server.ports]
        with SSHPool(known_hosts=tmp_path / "kh", max_parallel=8) as pool:
            with ThreadPoolExecutor(32) as threads:
                list(threads.map(lambda t: pool.executor(t).run(["sleep", "0.3"]), targets))
        assert server.sessions_started() == 32
        assert server.max_open_sessions() == 8
    finally:
        server.stop()


def test_a_dead_host_is_named_and_the_others_finish(tmp_path):
    servers = [start_sshd(tmp_path / f"h{i}") for i in range(3)]
    try:
        with SSHPool(known_hosts=tmp_path / "kh") as pool:
            exs = [pool.executor(_root(s)) for s in servers]
            threading.Timer(1.0, servers[1].stop).start()
            with ThreadPoolExecutor(3) as threads:
                futs = [threads.submit(ex.run, ["sh", "-c", "sleep 2; echo done"]) for ex in exs]
            assert futs[0].result().stdout == futs[2].result().stdout == "done\n"
            with pytest.raises(HostUnreachable, match=f"127.0.0.1:{servers[1].port}"):
                futs[1].result()
    finally:
        for s in servers:
            s.stop()


def test_executor_for_picks_local_for_this_machine(tmp_path):
    local = LocalExecutor()
    with SSHPool(known_hosts=tmp_path / "kh") as pool:
        assert executor_for(SSHTarget("127.0.0.1"), pool, local) is local
        assert executor_for(SSHTarget("127.0.0.1", 2222), pool, local) is not local
        assert executor_for(SSHTarget("127.0.0.1", user="bob"), pool, local) is not local
        assert executor_for(SSHTarget("127.0.0.93"), pool, local) is local  # all of 127/8 is loopback


def test_encrypted_key_with_passphrase_and_the_agent(sshd, tmp_path, monkeypatch):
    import subprocess

    key = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pk-secret", "-f", str(key)], check=True)
    with open(sshd.dir / "authorized_keys", "a") as fh:
        fh.write(Path(f"{key}.pub").read_text())
    with SSHPool(known_hosts=tmp_path / "kh") as pool:
        ex = pool.executor(SSHTarget("127.0.0.1", sshd.port, key_file=str(key), key_passphrase="pk-secret"))
        assert ex.run(["cat"], input=iter([b"via asyncssh"])).stdout == "via asyncssh"  # a passphrase: no ssh(1)
        with pytest.raises(InputError, match="cannot load SSH key"):
            pool.executor(SSHTarget("127.0.0.1", sshd.port, key_file=str(key), key_passphrase="wrong")).run(["true"])
    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True).stdout
    env = dict(part.split("=", 1) for part in agent.replace(";", "\n").split() if "=" in part)
    try:
        monkeypatch.setenv("SSH_AUTH_SOCK", env["SSH_AUTH_SOCK"])
        subprocess.run(["ssh-add", "-q", str(sshd.key_file)], check=True, capture_output=True)
        with SSHPool(known_hosts=tmp_path / "kh") as pool:
            ex = pool.executor(SSHTarget("127.0.0.1", sshd.port))  # no key file, no password: the agent's key
            assert ex.run(["echo", "agent"]).stdout == "agent\n"
            assert ex.run(["cat"], input=iter([b"ssh(1) with the agent"])).stdout == "ssh(1) with the agent"
    finally:
        subprocess.run(["kill", env["SSH_AGENT_PID"]], check=False)
