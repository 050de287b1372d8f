"""``imgbuild lint`` through the CLI: summary, every error with a caret, exit codes, --json, contexts."""

import json
from pathlib import Path

from imgbuild.cli.main import run

CORPUS = Path(__file__).resolve().parents[1] / "data" / "kubefiles"


def test_valid_file_exit_0(capsys):
    assert run(["lint", "-f", str(CORPUS / "multistage.Kubefile")]) == 0
    out = capsys.readouterr().out
    assert "ok (3 stages" in out


def test_syntax_error_exit_2_with_caret(capsys):
    assert run(["lint", "-f", str(CORPUS / "err-unknown-instruction.Kubefile")]) == 2
    err = capsys.readouterr().err
    assert "error: unknown instruction 'COPPY' (did you mean COPY?)" in err
    assert "err-unknown-instruction.Kubefile:2:1)" in err
    assert "    COPPY a b\n    ^\n" in err


def test_every_semantic_error_is_printed(tmp_path, capsys):
    kf = tmp_path / "Kubefile"
    kf.write_text('FROM alpine AS a\nFROM alpine AS a\nCOPY --from=9 /x /y\nAPP web local://web.yaml\nLAUNCH ["web", "db"]\n')
    assert run(["lint", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("error: ") == 4  # duplicate stage, --from=9, db unknown, web.yaml missing
    assert "Kubefile:5:" in err and "web.yaml" in err


def test_json_model_and_errors(tmp_path, capsys):
    assert run(["lint", "-f", str(CORPUS / "sealos-app.Kubefile"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True
    cmd = data["kubefile"]["stages"][0]["instructions"][-1]
    assert cmd["keyword"] == "CMD" and cmd["line"] == 7 and "$(NAME)" in cmd["value"][0]
    assert run(["--json", "lint", "-f", str(CORPUS / "err-unterminated-subst.Kubefile")]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["errors"][0]["line"] == 3 and data["errors"][0]["column"] == 7


def test_build_args_and_context_default_file(tmp_path, capsys):
    (tmp_path / "Sealfile").write_text("ARG TAG=old\nFROM nginx:$TAG\nCOPY conf /etc/nginx/\n")
    (tmp_path / "conf").mkdir()
    assert run(["lint", str(tmp_path), "--build-arg", "TAG=1.25", "--build-arg", "EXTRA=1", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["kubefile"]["stages"][0]["base"] == "nginx:1.25"
    assert "EXTRA" in captured.err  # unused build arg warning


def test_no_kubefile_in_context(tmp_path, capsys):
    assert run(["lint", str(tmp_path)]) == 2
    assert "no build file found" in capsys.readouterr().err


def test_unreadable_file(tmp_path, capsys):
    assert run(["lint", "-f", str(tmp_path / "missing")]) == 2
    assert "cannot read the Kubefile" in capsys.readouterr().err
