"""``imgbuild sandbox up N --provider docker``: containers of a real Docker-API service (podman's) as SSH hosts.

The host image is built by imgbuild from this machine's own bash, sshd, tar and busybox
(:func:`tests.support.podman.host_image_context`), loaded into the daemon by the sandbox
itself. The hosts are reached over SSH at the addresses the sandbox chose (the test's own).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgbuild.cli.main import run
from tests.support.podman import host_image_context

pytestmark = [pytest.mark.docker, pytest.mark.root, pytest.mark.ssh]


def _up(capsys, *extra: str) -> dict:
    assert run(["sandbox", "up", "2", "--name", "dk", "--provider", "docker", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_docker_hosts_up_exec_down(tmp_path: Path, podman_service, imgbuild_home, capsys) -> None:
    assert run(["build", "-q", "-t", "sandbox-host:1", str(host_image_context(tmp_path / "host"))]) == 0
    capsys.readouterr()
    sb = _up(capsys, "--host-image", "sandbox-host:1")
    assert sb["provider"] == "docker" and not sb["reused"]
    addresses = [h["address"] for h in sb["hosts"]]

    assert run(["sandbox", "exec", "dk-1", "--", "sh", "-c", "hostname; id -u; grep -w dk-2 /etc/hosts"]) == 0
    out = capsys.readouterr().out.split("\n")
    assert out[:2] == ["dk-1", "0"] and out[2].split() == [addresses[1], "dk-2"]

    assert run(["sandbox", "ls", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(s["name"], s["state"], [h["running"] for h in s["hosts"]]) for s in listed] == [
        ("dk", "running", [True, True])]
    assert _up(capsys, "--host-image", "sandbox-host:1")["reused"]

    assert run(["sandbox", "clusterfile", "dk", "--masters", "2"]) == 0
    assert f"- {addresses[0]}:22\n    - {addresses[1]}:22\n    roles:\n    - master" in capsys.readouterr().out

    _ship_a_tree(tmp_path, addresses[1], sb["key_file"], imgbuild_home)

    privileged = podman_service.podman("inspect", "--format", "{{.HostConfig.Privileged}}", "imgb-dk-1").stdout
    assert privileged.strip() == "true"
    assert run(["sandbox", "down", "dk"]) == 0
    assert podman_service.podman("ps", "-aq").stdout.strip() == ""
    assert "imgb-dk" not in podman_service.podman("network", "ls").stdout
    assert run(["sandbox", "down", "dk"]) == 2  # gone: nothing to remove


def _ship_a_tree(tmp_path: Path, address: str, key_file: str, home: Path) -> None:
    """The run engine's SSH executor sends a tree to a container host (tar over SSH) and reads it back."""
    from imgbuild.engine.ssh import SSHPool, SSHTarget

    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file.txt").write_text("shipped\n")
    with SSHPool(known_hosts=home / "known_hosts") as pool:
        ex = pool.executor(SSHTarget(address, 22, key_file=key_file))
        ex.send_tree(tree, "/opt/tree")
        assert ex.run(["cat", "/opt/tree/sub/file.txt"]).stdout == "shipped\n"


def test_docker_options_are_checked_and_an_unreachable_daemon_is_named(tmp_path: Path, imgbuild_home, monkeypatch,
                                                                       capsys) -> None:
    assert run(["sandbox", "up", "1", "--provider", "docker"]) == 2
    assert "--host-image goes with --provider docker" in capsys.readouterr().err
    assert run(["sandbox", "up", "1", "--provider", "vm", "--host-image", "x"]) == 2
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    assert run(["sandbox", "up", "1", "--name", "dk", "--provider", "docker", "--host-image", "docker-daemon:x"]) == 1
    assert "absent.sock" in capsys.readouterr().err
    assert not (imgbuild_home / "sandbox" / "dk").exists()  # nothing made, nothing left
