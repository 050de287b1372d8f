"""imgbuild sandbox for real: hosts answer over SSH, keep their files and processes to themselves, and go away whole.

The shared hosts come from the session's ``sandbox`` fixture; tests that make,
break or remove a sandbox take their own slot (``tests.support.sandbox``).
Traffic goes only to loopback and to the hosts these tests create. The first
tests check the pure logic (names, subnet choice, records, Clusterfile) and
need no root.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from imgbuild.cli.main import run
from imgbuild.engine.exec import LocalExecutor
from imgbuild.errors import InputError
from imgbuild.home import Home
from imgbuild.infra import _hostinit, _netns
from imgbuild.infra.sandbox import Sandbox, SandboxHost, down_sandbox
from tests.support.sandbox import TEST_HOME, host_run, sandbox_name, sandbox_slot, ssh_argv

_USED = [(ipaddress.ip_network("192.0.2.0/24"), "route 192.0.2.0/24 dev eth0"),
         (ipaddress.ip_network("10.213.0.0/24"), "route 10.213.0.0/24 dev ib0")]


# --- logic (no root) -------------------------------------------------------------------------------------------

def test_subnet_choice_skips_what_the_machine_uses_and_refuses_an_overlap():
    assert str(_netns.choose_subnet(_USED, 3)) == "10.213.1.0/24"
    assert str(_netns.choose_subnet(_USED, 3, "10.9.0.0/24")) == "10.9.0.0/24"
    with pytest.raises(InputError, match="overlaps route 10.213.0.0/24 dev ib0"):
        _netns.choose_subnet(_USED, 3, "10.213.0.0/16")
    for bad in ("10.9.0.1/24", "8.8.8.0/24", "127.0.0.0/8", "10.9.0.0/30", "nonsense"):
        with pytest.raises(InputError):
            _netns.choose_subnet(_USED, 3, bad)
    assert _netns.addresses(ipaddress.ip_network("10.9.0.0/24"), 2) == ("10.9.0.1", ["10.9.0.2", "10.9.0.3"])


def test_names_and_namespace_ownership():
    assert _netns.validate_name("demo-2") == "demo-2"
    for bad in ("Demo", "-x", "x", "a_b", "x" * 40, "demo-"):
        with pytest.raises(InputError):
            _netns.validate_name(bad)
    names = ["imgb-demo-1", "imgb-demo-12", "imgb-demo-br", "imgb-demo-x-1", "imgb-demox-1", "other"]
    assert _netns.sandbox_netns("demo", names) == ["imgb-demo-1", "imgb-demo-12", "imgb-demo-br"]
    assert len(_netns.machine_link("a-very-long-sandbox-name-indeed")) <= 15


def test_clusterfile_names_hosts_roles_and_key(tmp_path: Path):
    home = Home(tmp_path)
    hosts = [SandboxHost(f"demo-{i}", f"10.9.0.{i + 1}", i, f"imgb-demo-{i}", tmp_path / str(i)) for i in (1, 2, 3)]
    sb = Sandbox(home, "demo", "10.9.0.0/24", "10.9.0.1", hosts)
    doc = yaml.safe_load(sb.clusterfile(["localhost:5000/demo/app:v1"]))
    assert doc["apiVersion"] == "apps.sealos.io/v1beta1" and doc["kind"] == "Cluster"
    assert doc["spec"]["hosts"] == [{"ips": ["10.9.0.2:22"], "roles": ["master"]},
                                    {"ips": ["10.9.0.3:22", "10.9.0.4:22"], "roles": ["node"]}]
    assert doc["spec"]["ssh"] == {"user": "root", "pk": str(tmp_path / "sandbox/demo/id_ed25519")}
    assert doc["spec"]["image"] == ["localhost:5000/demo/app:v1"]
    assert SandboxHost.from_dict(hosts[0].to_dict()) == hosts[0]
    assert yaml.safe_load(sb.clusterfile(masters=3))["spec"]["hosts"] == [{"ips": [f"10.9.0.{i}:22" for i in (2, 3, 4)],
                                                                          "roles": ["master"]}]
    with pytest.raises(InputError, match="masters must be 1 to 3"):
        sb.clusterfile(masters=4)


def test_known_hosts_update_replaces_only_the_sandbox_addresses(tmp_path: Path):
    kh = tmp_path / "known_hosts"
    kh.write_text("127.0.0.1 ssh-ed25519 AAAkeep\n10.9.0.2 ssh-ed25519 AAAold\n")
    _hostinit.update_known_hosts(kh, {"10.9.0.2"}, ["10.9.0.2 ssh-ed25519 AAAnew"])
    assert kh.read_text() == "127.0.0.1 ssh-ed25519 AAAkeep\n10.9.0.2 ssh-ed25519 AAAnew\n"
    assert kh.stat().st_mode & 0o777 == 0o600


def test_overlay_order_mounts_the_directory_holding_the_host_last():
    assert _hostinit.overlay_order(Path("/root/.imgbuild/sandbox/s/hosts/1"))[-1] == "root"
    assert _hostinit.overlay_order(Path("/srv/x")) == list(_hostinit.OVERLAY_DIRS)


def test_non_root_is_told_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for argv in (["sandbox", "up", "2"], ["sandbox", "ls"], ["sandbox", "down", "--all"]):
        assert run(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "needs root" in err


# --- real hosts (root) -----------------------------------------------------------------------------------------

@pytest.mark.root
@pytest.mark.ssh
def test_each_host_answers_ssh_with_its_own_name_and_key(sandbox: Sandbox):
    for h in sandbox.hosts:
        out = subprocess.run(ssh_argv(sandbox, h.address, "hostname; cat /etc/hostname"), capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [h.name, h.name]
    keys = [tuple(_hostinit.host_key_lines(h.upper, "x")) for h in sandbox.hosts]
    machine = Path("/etc/ssh/ssh_host_ed25519_key.pub")
    assert len(set(keys)) == len(keys)
    if machine.exists():
        assert all(machine.read_text().split()[1] not in "".join(k) for k in keys)


@pytest.mark.root
def test_files_written_on_a_host_stay_on_that_host(sandbox: Sandbox):
    probe = f"imgbuild-sandbox-probe-{uuid.uuid4().hex[:8]}"
    dirs = ["/root", "/etc", "/var/lib", "/usr/local", "/opt", "/home", "/tmp", "/run"]
    paths = [f"{d}/{probe}" for d in dirs]
    host_run(sandbox, 1, ["sh", "-c", "for p; do echo one > $p; done", "sh", *paths])
    assert host_run(sandbox, 1, ["cat", *paths]).stdout.split() == ["one"] * len(paths)
    other = host_run(sandbox, 2, ["ls", *paths], check=False)
    assert other.returncode != 0 and other.stdout == ""
    assert not any(os.path.exists(p) for p in paths)
    assert (sandbox.hosts[0].upper / "etc" / probe).exists()  # the change lives in host 1's layer
    host_run(sandbox, 1, ["rm", "-f", *paths])


@pytest.mark.root
def test_a_pkill_on_one_host_touches_only_that_host_and_orphans_are_reaped(sandbox: Sandbox):
    marker = f"sleep {1000 + os.getpid() % 1000}.5"
    for i in (1, 2):
        host_run(sandbox, i, ["sh", "-c", f"nohup {marker} >/dev/null 2>&1 & sh -c 'sleep 0.1 &'"])
    try:
        assert host_run(sandbox, 1, ["ps", "-o", "pid=", "-p", "1"]).stdout.strip() == "1"
        host_run(sandbox, 1, ["pkill", "-f", marker])
        assert host_run(sandbox, 2, ["pgrep", "-f", marker]).stdout.strip()
        deadline = time.monotonic() + 5
        while True:
            states = host_run(sandbox, 1, ["ps", "-eo", "stat=,args="]).stdout
            if marker not in states and not any(ln.strip().startswith("Z") for ln in states.splitlines()):
                break
            assert time.monotonic() < deadline, f"not reaped:\n{states}"
            time.sleep(0.1)
    finally:
        host_run(sandbox, 2, ["pkill", "-f", marker], check=False)


@pytest.mark.root
def test_hosts_reach_each_other_and_the_machine_and_nothing_else(sandbox: Sandbox):
    with socket.socket() as srv:
        srv.bind((sandbox.gateway, 0))
        srv.listen(1)
        srv.settimeout(10)
        port = srv.getsockname()[1]
        host_run(sandbox, 1, ["bash", "-c", f"hostname > /dev/tcp/{sandbox.gateway}/{port}"])
        conn, _ = srv.accept()
        with conn:
            assert conn.recv(100).decode().strip() == sandbox.hosts[0].name
    reach = host_run(sandbox, 1, ["bash", "-c", f"exec 3<>/dev/tcp/{sandbox.hosts[1].address}/22; head -c 7 <&3"])
    assert reach.stdout == "SSH-2.0"
    route = host_run(sandbox, 1, ["ip", "route", "get", "192.0.2.1"], check=False)  # no packet is sent
    assert route.returncode != 0 and "unreachable" in route.stderr
    assert host_run(sandbox, 1, ["ip", "netns", "list"]).stdout == ""


@pytest.mark.root
@pytest.mark.ssh
def test_root_by_key_only_and_users_by_password_with_sudo(sandbox: Sandbox):
    from imgbuild.engine.ssh import SSHPool, SSHTarget

    h = sandbox.hosts[2]
    password = "pw-" + uuid.uuid4().hex[:10]
    host_run(sandbox, 3, ["sh", "-c", f"useradd -m -s /bin/bash -G sudo imgbtuser && "
                                      f"echo imgbtuser:{password} | chpasswd && echo root:{password} | chpasswd"])
    assert subprocess.run(["getent", "passwd", "imgbtuser"], capture_output=True).returncode != 0
    with SSHPool(known_hosts=sandbox.home.known_hosts) as pool:
        out = pool.executor(SSHTarget(h.address, user="imgbtuser", password=password)).run(["id", "-u"])
        assert out.stdout.strip() == "0"  # through sudo
    assert not asyncio.run(_password_login(h.address, "root", password, sandbox.home.known_hosts))
    assert asyncio.run(_password_login(h.address, "imgbtuser", password, sandbox.home.known_hosts))


async def _password_login(address: str, user: str, password: str, known_hosts: Path) -> bool:
    import asyncssh

    try:
        async with asyncssh.connect(address, username=user, password=password, known_hosts=str(known_hosts),
                                    client_keys=None, agent_path=None, connect_timeout=10):
            return True
    except asyncssh.PermissionDenied:
        return False


@pytest.mark.root
def test_up_is_idempotent_repairs_a_crash_and_down_leaves_nothing():
    ex = LocalExecutor()
    with sandbox_slot("imgbtown", 2) as sb:
        again = Sandbox.up(TEST_HOME, sb.name, 2, ex)
        assert again.reused and [h.pid for h in again.hosts] == [h.pid for h in sb.hosts]
        with pytest.raises(InputError, match="running with 2 hosts"):
            Sandbox.up(TEST_HOME, sb.name, 3, ex)
        os.kill(sb.hosts[1].pid, signal.SIGKILL)
        _netns.kill_and_wait([sb.hosts[1].pid])
        assert Sandbox.load(TEST_HOME, sb.name).state() == "degraded"
        repaired = Sandbox.up(TEST_HOME, sb.name, 2, ex)
        assert not repaired.reused and repaired.state() == "running"
        host_run(repaired, 1, ["sh", "-c", "echo x > /etc/imgbtest-left"])
        name, link, sdir = sb.name, sb.link, sb.dir
    assert subprocess.run(["pgrep", "-f", str(sdir)], capture_output=True).returncode == 1  # no process left
    assert f"imgb-{name}-" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert link not in subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert not any(name in ln or str(TEST_HOME.root) in ln for ln in Path("/proc/mounts").read_text().splitlines())
    assert not sdir.exists() and not Path("/etc/imgbtest-left").exists()
    assert all(h.address not in TEST_HOME.known_hosts.read_text() for h in repaired.hosts)


@pytest.mark.root
def test_a_half_made_sandbox_without_a_record_is_cleaned_by_up():
    ex = LocalExecutor()
    with sandbox_name("imgbthalf") as name:
        down_sandbox(TEST_HOME, name, ex)
        subnet = _netns.choose_subnet(_netns.used_networks(ex), 2)
        _netns.setup_network(ex, name, subnet, 2, owner=str(TEST_HOME.root))
        assert len(_netns.sandbox_netns(name, _netns.netns_names())) == 3
        try:
            sb = Sandbox.up(TEST_HOME, name, 1, ex)
            assert sb.state() == "running" and len(_netns.sandbox_netns(name, _netns.netns_names())) == 2
        finally:
            assert down_sandbox(TEST_HOME, name, ex)
        assert _netns.sandbox_netns(name, _netns.netns_names()) == []


@pytest.mark.root
@pytest.mark.ssh
def test_cli_up_ls_exec_clusterfile_down(monkeypatch, capsys):
    monkeypatch.setenv("IMGBUILD_HOME", str(TEST_HOME.root))
    with sandbox_name("imgbtcli") as name:
        down_sandbox(TEST_HOME, name, LocalExecutor())
        try:
            assert run(["sandbox", "up", "2", "--name", name, "--json"]) == 0
            made = json.loads(capsys.readouterr().out)
            assert [h["name"] for h in made["hosts"]] == [f"{name}-1", f"{name}-2"]
            assert run(["sandbox", "exec", f"{name}-2", "--", "sh", "-c", "hostname; exit 3"]) == 3
            assert capsys.readouterr().out.strip() == f"{name}-2"
            assert run(["sandbox", "ls", "--json"]) == 0
            listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
            assert listed[name]["state"] == "running"
            assert run(["sandbox", "up", "2", "--name", name, "--print-clusterfile", "--image", "a/b:c"]) == 0
            doc = yaml.safe_load(capsys.readouterr().out)
            assert doc["spec"]["hosts"][0]["ips"] == [made["hosts"][0]["address"] + ":22"]
        finally:
            assert run(["sandbox", "down", name]) == 0
        assert run(["sandbox", "down", name]) == 2
        assert "no sandbox named" in capsys.readouterr().err


@pytest.mark.root
def test_eight_hosts_come_up_quickly_and_cheaply():
    """Correctness only; prints the measurements (run with -s): seconds for up and down, RSS per host."""
    start = time.monotonic()
    with sandbox_slot("imgbtbench", 8) as sb:
        up_s = time.monotonic() - start
        assert sb.state() == "running" and len({h.address for h in sb.hosts}) == 8
        rss = [_netns.rss_kib(h.processes()) / 1024 for h in sb.hosts]
        start = time.monotonic()
    down_s = time.monotonic() - start
    print(f"\nsandbox of 8 hosts: up {up_s:.2f}s, down {down_s:.2f}s, "
          f"RSS per host {min(rss):.1f}-{max(rss):.1f} MB (sum over the host's processes)")
