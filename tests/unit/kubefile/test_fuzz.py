"""Property tests: no input makes the parser raise anything but KubefileError; parsing is deterministic."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgbuild.errors import KubefileError
from imgbuild.kubefile import KEYWORDS, lint, parse

_TOKENS = st.sampled_from(
    [*KEYWORDS, *(k.lower() for k in KEYWORDS), "--from=", "--mount=type=cache", "--chmod=", "--link", "--",
     "AS", "<<EOF", "<<-EOF", "<<'EOF'", "EOF", "\tEOF", "[", "]", '["a"]', "[1]", "{", "}", "${", "$", "$(X)",
     ":-", ":+", "-", "+", "?", "#", "# escape=`", "# syntax=x", "\\", "`", "'", '"', "=", "k=v", "local://a",
     "https://x", "NONE", "CMD", "\n", "\n", "\r\n", " ", "\t", "\ufeff", "é", "\x00"]
)
_LINES = st.lists(st.one_of(_TOKENS, st.text(max_size=6)), max_size=40).map(" ".join)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_LINES)
def test_token_soup_only_raises_kubefile_error(text):
    _check(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_only_raises_kubefile_error(text):
    _check(text)


@settings(max_examples=300, deadline=None)
@given(_LINES)
def test_after_a_valid_from(text):
    _check("FROM alpine AS base\n" + text)


def _check(text: str) -> None:
    try:
        kf = parse(text, build_args={"A": "1"})
    except KubefileError as exc:
        assert exc.line is None or exc.line >= 1
        exc.detail()
        return
    assert kf.to_dict() == parse(text, build_args={"A": "1"}).to_dict()
    for err in lint(kf):
        assert isinstance(err, KubefileError)
