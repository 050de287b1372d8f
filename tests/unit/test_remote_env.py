"""Env values for a remote command travel on stdin, never on its command line: run in real local shells.

Each test runs the line :func:`remote_command` builds with ``sh -c`` (dash) and ``bash -c`` (what sshd does
with the login shell), feeding its stdin prefix and then the command's own input.
"""

import os
import subprocess

import pytest

from imgbuild.engine._sshrun import (ENV_NOT_RECEIVED, SUDO_NONE, SUDO_NOPASSWD, SUDO_PASSWORD, RemoteCommand,
                                     remote_command)
from imgbuild.errors import InputError

SHELLS = ["sh", "bash"]
ODD = {
    "registryPassword": "p@ss w0rd's \"$(touch /tmp/imgbt-pwned)\" `id` $HOME \\n \\",
    "MULTI": "line one\nline two\n\nlast",
    "TRAILING_NL": "ends with newlines\n\n",
    "LEADING_NL": "\nstarts with one",
    "EMPTY": "",
    "SPACES": "  padded\tand tabbed  ",
    "CR": "crlf\r\nline\r",
    "UNICODE": "Grüße ✓",
    "RAW": "bytes \udcff\udcfe kept",  # non-UTF-8 bytes, as os.environ gives them (surrogateescape)
    "DASHES": "-n",
    "IFS": "x",  # a special shell variable: set like any other, after the values are read
    "QUOTING": "'\"$_ib_nl\"' '\\'' ; exit 3; '",  # the transport's own quoting, as data
    "LONG": "0123456789abcdef\n" * 600,
}


def _run(shell: str, cmd: RemoteCommand, data: bytes = b"", cwd: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "LC_ALL": "C"}
    return subprocess.run([shell, "-c", cmd.line], input=cmd.prefix + data, capture_output=True, env=env,
                          cwd=cwd, timeout=20)


def _environ(stdout: bytes) -> dict[str, str]:
    pairs = (item.split(b"=", 1) for item in stdout.split(b"\0") if item)
    return {k.decode(): v.decode("utf-8", errors="surrogateescape") for k, v in pairs}


@pytest.mark.parametrize("shell", SHELLS)
def test_odd_values_arrive_exactly(shell, tmp_path):
    cmd = remote_command(["env", "-0"], env=ODD, cwd=str(tmp_path))
    got = _run(shell, cmd)
    assert got.returncode == 0, got.stderr
    env = _environ(got.stdout)
    assert {k: env.get(k) for k in ODD} == ODD
    assert not any(k.startswith("_ib_") for k in env)  # the reader's own variables are not exported
    assert not os.path.exists("/tmp/imgbt-pwned")


@pytest.mark.parametrize("sudo", [SUDO_NONE, SUDO_NOPASSWD, SUDO_PASSWORD])
def test_the_command_line_holds_no_value(sudo):
    secret = "s3cret-" + os.urandom(6).hex()
    env = {"registryPassword": secret, "A": "plain-value-xyz", "B": "two\nlines-qqq"}
    cmd = remote_command(["sh", "-c", 'echo "$registryPassword"'], env=env, cwd="/tmp", sudo=sudo,
                         password="sudo-pw-123")
    for value in [secret, "plain-value-xyz", "lines-qqq", "sudo-pw-123"]:
        assert value not in cmd.line
    assert secret.encode() in cmd.prefix
    if sudo != SUDO_NONE:
        assert "--preserve-env=registryPassword,A,B" in cmd.line


def test_sudo_password_line_comes_after_the_env_lines():
    cmd = remote_command(["true"], env={"A": "1", "B": "x\ny'z"}, sudo=SUDO_PASSWORD, password="pw")
    assert cmd.prefix == b"""A='1' B='x'"$_ib_nl"'y'\\''z'\npw\n"""
    assert remote_command(["true"], sudo=SUDO_PASSWORD, password="pw").prefix == b"pw\n"
    assert remote_command(["true"], sudo=SUDO_NOPASSWD, password="pw").prefix == b""
    with pytest.raises(InputError, match="needs a password"):
        remote_command(["true"], sudo=SUDO_PASSWORD)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("env", [{}, ODD], ids=["no-env", "odd-env"])
def test_input_after_the_prefix_arrives_exactly(shell, env, tmp_path):
    data = bytes(range(256)) * 64 + b"\nno newline at the end"
    got = _run(shell, remote_command(["sh", "-c", 'pwd >&2; exec cat'], env=env, cwd=str(tmp_path)), data)
    assert (got.returncode, got.stdout, got.stderr) == (0, data, f"{tmp_path}\n".encode())


@pytest.mark.parametrize("shell", SHELLS)
def test_stdin_ending_early_stops_before_the_command(shell, tmp_path):
    marker = tmp_path / "ran"
    cmd = remote_command(["touch", str(marker)], env={"A": "a", "B": "b\nc"})
    for cut in [cmd.prefix[:-3], b""]:
        got = subprocess.run([shell, "-c", cmd.line], input=cut, capture_output=True, timeout=20)
        assert got.returncode == ENV_NOT_RECEIVED and b"environment did not arrive on stdin" in got.stderr
        assert not marker.exists()


def test_no_env_means_no_reader():
    cmd = remote_command(["echo", "hi"], cwd="/x y")
    assert cmd == RemoteCommand("cd -- '/x y' && exec echo hi", b"")


@pytest.mark.parametrize("env", [{"_ib_v": "x"}, {"A": "nul\0byte"}])
def test_reserved_names_and_nul_bytes_are_refused(env):
    with pytest.raises(InputError):
        remote_command(["true"], env=env)
