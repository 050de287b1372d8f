"""The Kubefile corpus: every tests/data/kubefiles/*.Kubefile parses to its expected model or error.

Each ``NAME.Kubefile`` has a ``NAME.expect.json`` beside it with some of:
``build_args``; ``model`` (dotted path into ``kubefile.to_dict()`` -> expected
value); ``error`` (``line``, optional ``column``, ``match`` substring) - a parse
error, or with ``lint: true`` a semantic error from :func:`lint` (``errors``
gives their count); ``lint_ok: true`` when lint must find nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgbuild.errors import KubefileError
from imgbuild.kubefile import lint, parse_file

CORPUS = Path(__file__).resolve().parents[2] / "data" / "kubefiles"
CASES = sorted(p.name[: -len(".Kubefile")] for p in CORPUS.glob("*.Kubefile"))


def _get(data, path: str):
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _matches(err: KubefileError, want: dict) -> bool:
    return (
        err.line == want["line"]
        and ("column" not in want or err.column == want["column"])
        and want["match"] in err.message
    )


def test_corpus_is_big_enough():
    assert len(CASES) >= 40
    assert sum(1 for c in CASES if c.startswith(("err-", "lint-"))) >= 20


@pytest.mark.parametrize("name", CASES)
def test_corpus_case(name: str) -> None:
    expect = json.loads((CORPUS / f"{name}.expect.json").read_text())
    path = CORPUS / f"{name}.Kubefile"
    build_args = expect.get("build_args")
    if "error" in expect and not expect.get("lint"):
        with pytest.raises(KubefileError) as info:
            parse_file(path, build_args=build_args)
        err = info.value
        assert _matches(err, expect["error"]), f"{err} (line {err.line} col {err.column})"
        assert err.file == str(path)
        if err.line is not None and err.source_line is not None:
            assert err.source_line == path.read_text(encoding="utf-8-sig").splitlines()[err.line - 1]
            assert "^" in err.detail()
        return
    kf = parse_file(path, build_args=build_args)
    data = kf.to_dict()
    json.dumps(data)  # serialisable
    for key, value in expect.get("model", {}).items():
        assert _get(data, key) == value, key
    problems = lint(kf)
    if expect.get("lint_ok"):
        assert problems == []
    if expect.get("lint"):
        assert any(_matches(e, expect["error"]) for e in problems), [f"{e} col {e.column}" for e in problems]
        if "errors" in expect:
            assert len(problems) == expect["errors"], [str(e) for e in problems]


def test_onbuild_trigger_is_not_substituted_now():
    from imgbuild.kubefile import parse

    kf = parse("FROM a\nONBUILD ENV X=${REQUIRED:?}\n")
    assert kf.final.instructions[0].expression == "ENV X=${REQUIRED:?}"


def test_error_inside_continuation_points_at_physical_line():
    from imgbuild.kubefile import parse

    with pytest.raises(KubefileError) as info:
        parse("FROM a\nRUN --mount=type=cache \\\n    --network=bogus true\n")
    assert (info.value.line, info.value.column) == (3, 5)  # at the flag, on its own line
    with pytest.raises(KubefileError) as info:
        parse("FROM a\nLABEL a=1 \\\n  # dropped comment\n      b=${\n")
    assert (info.value.line, info.value.column) == (4, 9)
    assert info.value.source_line == "      b=${"


def test_stage_lookup_by_name_and_index():
    from imgbuild.kubefile import parse

    kf = parse("FROM a AS Build\nFROM b\n")
    assert kf.stage("build").index == 0 and kf.stage("BUILD").index == 0
    assert kf.stage(1) is kf.final and kf.stage("1") is kf.final
    with pytest.raises(KeyError):
        kf.stage("nope")
    assert [i.keyword for i in kf.instructions()] == ["FROM", "FROM"]
