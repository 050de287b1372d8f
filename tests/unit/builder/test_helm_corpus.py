"""A corpus of public charts: the built-in renderer finds exactly what ``helm template`` renders by default.

Each ``tests/data/charts/<case>/`` is a build context holding one upstream chart
(``charts/<chart>``, dependencies vendored as ``helm dependency build`` would),
its upstream ``LICENSE`` and ``SOURCE`` (repository, commit, path), and
``images.txt``: the images ``helm template`` renders with default values,
derived by hand from each chart's values and templates (no helm binary here).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild.builder.images import find_images

CORPUS = Path(__file__).resolve().parents[2] / "data" / "charts"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "images.txt").is_file())


def _expected(case: Path) -> list[str]:
    lines = (case / "images.txt").read_text().splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def test_the_corpus_has_at_least_twenty_charts_each_with_its_license() -> None:
    assert len(CASES) >= 20
    for case in CASES:
        assert (CORPUS / case / "LICENSE").is_file() and (CORPUS / case / "SOURCE").is_file(), case
        assert "Apache License" in (CORPUS / case / "LICENSE").read_text(), case


@pytest.mark.parametrize("case", CASES)
def test_rendered_images_match_helm_template(case: str) -> None:
    result = find_images(CORPUS / case, helm="never")
    assert result.warnings == (), "the chart must render, not fall back to the static read"
    assert result.refs == _expected(CORPUS / case)
    assert result.skipped == ()
