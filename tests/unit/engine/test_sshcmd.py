"""The remote command line: quoting, env, cwd, and sudo that keeps the password off argv."""

import shlex
import subprocess

import pytest

from imgbuild.engine._hostkeys import host_pattern
from imgbuild.engine._sshrun import SUDO_NONE, SUDO_NOPASSWD, SUDO_PASSWORD, remote_command
from imgbuild.engine.ssh import SSHTarget
from imgbuild.errors import InputError


def test_root_command_runs_in_a_posix_shell():
    cmd = remote_command(["sh", "-c", 'echo "$A $1" "$(pwd)"', "sh", "it's"], env={"A": "a b"}, cwd="/tmp")
    out = subprocess.run(["sh", "-c", cmd.line], input=cmd.prefix.decode(), capture_output=True, text=True,
                         check=True).stdout
    assert out == "a b it's /tmp\n"


def test_sudo_password_mode_reads_the_password_from_stdin_only():
    cmd = remote_command(["cat", "/etc/hostname"], env={"registryPassword": "s3cret"}, sudo=SUDO_PASSWORD,
                         password="pw")
    assert "s3cret" not in cmd.line and "pw" not in cmd.line  # both on stdin: env value first, then the password
    assert cmd.prefix == b"registryPassword='s3cret'\npw\n"
    words = shlex.split(cmd.line.rsplit("; ", 1)[1])
    assert words[:6] == ["exec", "sudo", "-S", "-k", "-p", ""]
    assert words[6:] == ["--preserve-env=registryPassword", "--", "cat", "/etc/hostname"]


def test_sudo_nopasswd_with_cwd_wraps_in_sh():
    words = shlex.split(remote_command(["ls"], cwd="/var/x y", sudo=SUDO_NOPASSWD).line)
    assert words == ["exec", "sudo", "-n", "--", "sh", "-c", "cd -- '/var/x y' && exec \"$@\"", "sh", "ls"]


@pytest.mark.parametrize("env", [{"A-B": "x"}, {"1X": "y"}, {"A;rm": "z"}])
def test_bad_env_names_are_refused(env):
    with pytest.raises(InputError):
        remote_command(["true"], env=env, sudo=SUDO_NONE)


def test_labels_and_secrets():
    t = SSHTarget("10.0.0.2", password="pw", key_passphrase="pp")
    assert t.label == "10.0.0.2" and "pw" not in repr(t) and "pp" not in repr(t)
    assert SSHTarget("10.0.0.2", 2222).label == "10.0.0.2:2222"
    assert SSHTarget("fd00::2", 2222).label == "[fd00::2]:2222"
    assert host_pattern("10.0.0.2", 22) == "10.0.0.2" and host_pattern("10.0.0.2", 2222) == "[10.0.0.2]:2222"
