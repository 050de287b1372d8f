"""The CLI shell: help, version, one-line errors, exit codes, JSON, speed of --help."""

import json
import os
import subprocess
import sys
import time

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


def test_help_is_fast():
    exe = os.path.join(os.path.dirname(sys.executable), "imgbuild")
    subprocess.run([exe, "--help"], capture_output=True, check=True)  # warm the cache
    start = time.perf_counter()
    subprocess.run([exe, "--help"], capture_output=True, check=True)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"imgbuild --help took {elapsed:.2f}s"
