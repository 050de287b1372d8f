"""Shell-word processing: word splitting, quotes, escapes and ${} modifiers as Docker does them."""

import pytest

from imgbuild.kubefile.substitution import SubstitutionError, expand_vars_only, expand_word, split_words

ENV = {"A": "a", "EMPTY": "", "SP": "x y"}


def look(name):
    return ENV.get(name)


@pytest.mark.parametrize(
    "word, want",
    [
        ("plain", "plain"),
        ("$A", "a"),
        ("${A}b", "ab"),
        ("$Ab", ""),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${A:+x}", "x"),
        ("${EMPTY:+x}", ""),
        ("${EMPTY+x}", "x"),
        ("${UNSET+x}", ""),
        ("${UNSET:-\"q q\"}", "q q"),
        ("${UNSET:-$A}", "a"),
        ("'$A'", "$A"),
        ('"$A"', "a"),
        ('"\\$A"', "$A"),
        ("\\$A", "$A"),
        ('"a\\b"', "a\\b"),
        ("$(A)", "$(A)"),
        ("$", "$"),
        ("a$", "a$"),
        ("$ A", "$ A"),
        ("${SP}", "x y"),
    ],
)
def test_expand_word(word, want):
    assert expand_word(word, look) == want


def test_backtick_escape():
    assert expand_word("`$A", look, "`") == "$A"
    assert expand_word("C:\\dir", look, "`") == "C:\\dir"


@pytest.mark.parametrize("word, msg", [("${A", "missing '}'"), ("${A:-x", "missing '}'"), ("'x", "single quote"),
                                       ('"x', "double quote"), ("${}", "bad substitution"), ("${A:=x}", "unsupported"),
                                       ("${UNSET:?boom}", "boom"), ("${UNSET?}", "not set")])
def test_expand_errors(word, msg):
    with pytest.raises(SubstitutionError, match=msg.replace("$", r"\$").replace("{", r"\{")):
        expand_word(word, look)


def test_error_offset_points_at_dollar():
    with pytest.raises(SubstitutionError) as info:
        expand_word("abc${X", look)
    assert info.value.offset == 3


def test_split_words_keeps_quotes_and_offsets():
    assert split_words('a "b c" d\\ e \'f g\'') == [("a", 0), ('"b c"', 2), ("d\\ e", 8), ("'f g'", 13)]
    assert split_words('k=""  x') == [('k=""', 0), ("x", 6)]
    assert split_words("") == []


def test_expand_vars_only_keeps_quotes():
    assert expand_vars_only('a="$A" b=\'${A}\' c=\\$A $(A)', look) == 'a="a" b=\'a\' c=$A $(A)'


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from imgbuild.kubefile.substitution import _split_fast, _split_slow  # noqa: E402


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=" \t\n'\"\\`ab=$", max_size=30), st.sampled_from(["\\", "`"]))
def test_fast_split_agrees_with_slow(text, escape):
    fast = _split_fast(text, escape)
    if fast is not None:
        assert fast == _split_slow(text, escape)
