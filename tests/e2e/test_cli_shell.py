"""The CLI shell: help, version, one-line errors, exit codes, JSON, --help importing nothing heavy."""

import json
import subprocess
import sys

from imgbuild.cli.main import run


def test_help_lists_commands(capsys):
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    assert "version" in out and "Exit codes" in out


def test_unknown_command_is_one_line_exit_2(capsys):
    assert run(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_bad_option_exit_2(capsys):
    assert run(["version", "--bogus"]) == 2
    assert "--bogus" in capsys.readouterr().err


def test_version_json(capsys):
    assert run(["version", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["imgbuild"] and set(data["tools"]) == {"buildah", "skopeo", "registry"}


def test_global_json_flag(capsys):
    assert run(["--json", "version"]) == 0
    assert json.loads(capsys.readouterr().out)["imgbuild"]


def test_library_error_is_one_line(monkeypatch, capsys):
    from imgbuild.cli.app import app
    from imgbuild.errors import ImageNotFound

    @app.command("raise-for-test", hidden=True)
    def _boom() -> None:
        raise ImageNotFound("no such image", "docker.io/library/nope:latest")

    try:
        assert run(["raise-for-test"]) == 2
        err = capsys.readouterr().err
        assert err == "error: no such image (docker.io/library/nope:latest)\n"
        assert run(["--debug", "raise-for-test"]) == 2
        assert "Traceback" in capsys.readouterr().err
    finally:
        app.registered_commands = [c for c in app.registered_commands if c.name != "raise-for-test"]


def test_internal_error_hides_traceback(capsys):
    from imgbuild.cli.app import app

    @app.command("bug-for-test", hidden=True)
    def _bug() -> None:
        raise ValueError("oops")

    try:
        assert run(["bug-for-test"]) == 1
        err = capsys.readouterr().err
        assert "internal error: ValueError: oops" in err and "Traceback" not in err
    finally:
        app.registered_commands = [c for c in app.registered_commands if c.name != "bug-for-test"]


def test_help_imports_nothing_heavy():
    """``--help`` stays fast by importing no heavy library (asserted on imports, not on time: the machine may be busy)."""
    code = ("import sys\nfrom imgbuild.cli.main import run\nrun(['--help'])\n"
            "heavy = {'asyncssh', 'requests', 'cryptography', 'docker', 'zstandard', 'yaml', 'tqdm', 'oras'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out
