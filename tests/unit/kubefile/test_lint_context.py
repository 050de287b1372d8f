"""lint() with a build context: missing COPY/ADD/APP sources, path escapes, globs, known apps."""

from pathlib import Path

from imgbuild.kubefile import find_kubefile, lint, parse
from imgbuild.errors import ContextError

import pytest


def _ctx(tmp_path: Path) -> Path:
    (tmp_path / "charts" / "nginx").mkdir(parents=True)
    (tmp_path / "charts" / "nginx" / "Chart.yaml").write_text("name: nginx\n")
    (tmp_path / "init.sh").write_text("true\n")
    (tmp_path / "app.yaml").write_text("kind: List\n")
    return tmp_path


def test_all_sources_present(tmp_path):
    ctx = _ctx(tmp_path)
    kf = parse("FROM scratch\nCOPY . .\nCOPY charts/*/Chart.yaml /c/\nADD https://x/y.tgz /\nAPP a local://app.yaml\n")
    assert lint(kf, ctx) == []


def test_missing_sources_all_reported(tmp_path):
    ctx = _ctx(tmp_path)
    text = "FROM scratch\nCOPY nope.sh /\nCOPY charts/*/values.yaml /v/\nAPP a local://missing.yaml\nADD ../etc/passwd /\n"
    errors = lint(parse(text, filename="K"), ctx)
    assert [(e.line, e.column) for e in errors] == [(2, 6), (3, 6), (4, 15), (5, 5)]
    assert "missing from the build context" in errors[0].message
    assert "no file in the build context matches" in errors[1].message
    assert "outside the build context" in errors[3].message


def test_copy_from_stage_is_not_a_context_source(tmp_path):
    kf = parse("FROM alpine AS b\nFROM scratch\nCOPY --from=b /nowhere /x\n")
    assert lint(kf, tmp_path) == []


def test_without_context_sources_are_not_checked():
    assert lint(parse("FROM scratch\nCOPY nope /\n")) == []


def test_known_apps_from_the_base_image():
    kf = parse('FROM base\nLAUNCH ["inherited"]\n')
    assert len(lint(kf)) == 1
    assert lint(kf, known_apps=["inherited"]) == []


def test_copy_url_is_an_error():
    errors = lint(parse("FROM a\nCOPY https://example.com/x /x\n"))
    assert "use ADD" in errors[0].message


def test_find_kubefile_order(tmp_path):
    with pytest.raises(ContextError):
        find_kubefile(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM a\n")
    assert find_kubefile(tmp_path).name == "Dockerfile"
    (tmp_path / "Sealfile").write_text("FROM a\n")
    assert find_kubefile(tmp_path).name == "Sealfile"
    (tmp_path / "Kubefile").write_text("FROM a\n")
    assert find_kubefile(tmp_path).name == "Kubefile"
    with pytest.raises(ContextError):
        find_kubefile(tmp_path / "Kubefile")
