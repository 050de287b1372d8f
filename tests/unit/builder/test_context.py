"""Build context: Docker ignore semantics, safe COPY source resolution, globs, Kubefile lookup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgbuild.builder.context import BuildContext, IgnoreRules, default_kubefile, has_glob
from imgbuild.errors import ContextError


def _rules(text: str) -> IgnoreRules:
    return IgnoreRules.parse(text, ".dockerignore")


@pytest.mark.parametrize(
    "patterns, path, expected",
    [
        ("*.log", "a.log", True),
        ("*.log", "dir/a.log", False),  # * does not cross '/'
        ("**/*.log", "dir/sub/a.log", True),
        ("**/*.log", "a.log", True),  # ** matches zero directories
        ("dir/**", "dir/x/y", True),
        ("**", "anything/at/all", True),
        ("dir", "dir/deep/file", True),  # a parent match excludes everything below
        ("/dir", "dir/file", True),  # leading '/' dropped
        ("dir/", "dir/file", True),  # trailing '/' cleaned away
        ("./dir/../other", "other/x", True),  # patterns are Clean-ed
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[ab].txt", "b.txt", True),
        ("[^ab].txt", "b.txt", False),
        ("file.txt", "fileXtxt", False),  # '.' is literal
        ("\\*.txt", "*.txt", True),
        ("\\*.txt", "a.txt", False),
        ("# comment\n", "# comment", False),
        ("  spaced.txt  ", "spaced.txt", True),
        ("*\n!keep.txt", "keep.txt", False),
        ("*\n!keep.txt", "other.txt", True),
        ("dir\n!dir/keep", "dir/keep", False),
        ("dir\n!dir/keep", "dir/drop", True),
        ("!keep.txt\n*", "keep.txt", True),  # the last match wins
        ("**/node_modules", "a/b/node_modules/x.js", True),
        ("docs/*.md\n!docs/README*.md\ndocs/README-secret.md", "docs/README-secret.md", True),
        ("docs/*.md\n!docs/README*.md\ndocs/README-secret.md", "docs/README.md", False),
    ],
)
def test_ignore_semantics_match_docker(patterns: str, path: str, expected: bool) -> None:
    assert _rules(patterns).ignored(path) is expected


def test_lone_exclamation_is_an_error() -> None:
    with pytest.raises(ContextError) as info:
        _rules("a\n!\n")
    assert info.value.where == ".dockerignore:2"


def test_bom_and_comment_only_at_line_start() -> None:
    rules = _rules("\ufeff*.tmp\n  # not a comment\n")
    assert rules.ignored("x.tmp")
    assert rules.ignored("# not a comment")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return root


def test_open_reads_the_first_ignore_file_found(tmp_path: Path) -> None:
    _tree(tmp_path, {".kubeignore": "a\n", ".dockerignore": "b\n", "a": "", "b": ""})
    ctx = BuildContext.open(tmp_path)
    assert ctx.ignore_file == ".kubeignore"
    assert ctx.ignored("a") and not ctx.ignored("b")


def test_resolve_plain_dir_and_file(tmp_path: Path) -> None:
    _tree(tmp_path, {"bin/kubectl": "x", "etc/a.tmpl": "y"})
    ctx = BuildContext.open(tmp_path)
    [src] = ctx.resolve("bin")
    assert src.is_dir and src.rel == "bin"
    [src] = ctx.resolve("/etc/a.tmpl")
    assert not src.is_dir and src.rel == "etc/a.tmpl"
    [src] = ctx.resolve(".")
    assert src.rel == "" and src.is_dir


def test_resolve_refuses_dotdot_and_missing(tmp_path: Path) -> None:
    ctx = BuildContext.open(_tree(tmp_path / "ctx", {"a": ""}))
    with pytest.raises(ContextError, match="outside the build context") as info:
        ctx.resolve("../secret", where="Kubefile:3")
    assert info.value.where == "Kubefile:3"
    with pytest.raises(ContextError, match="not found"):
        ctx.resolve("nope")
    [src] = ctx.resolve("x/../a")
    assert src.rel == "a"


def test_symlink_source_escaping_is_refused_but_inner_links_are_kept(tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    ctx_dir = _tree(tmp_path / "ctx", {"dir/real.txt": "ok"})
    os.symlink(tmp_path / "outside.txt", ctx_dir / "escape")
    os.symlink("/etc/passwd", ctx_dir / "dir" / "abs-link")
    os.symlink("real.txt", ctx_dir / "dir" / "rel-link")
    os.symlink("dir/real.txt", ctx_dir / "good-link")
    ctx = BuildContext.open(ctx_dir)
    with pytest.raises(ContextError, match="resolves outside") as info:
        ctx.resolve("escape", where="Kubefile:5")
    assert info.value.where == "Kubefile:5"
    [src] = ctx.resolve("good-link")  # a link inside the context is followed
    assert src.path == ctx_dir.resolve() / "dir" / "real.txt" and not src.is_dir
    [d] = ctx.resolve("dir")
    kinds = {f.rel: (f.kind, f.linkname) for f in ctx.walk(d)}
    assert kinds["abs-link"] == ("symlink", "/etc/passwd")  # copied as a link, never followed
    assert kinds["rel-link"] == ("symlink", "real.txt")
    assert kinds[""][0] == "dir" and kinds["real.txt"][0] == "file"


def test_symlinked_parent_escaping_is_refused(tmp_path: Path) -> None:
    _tree(tmp_path / "out", {"f": "x"})
    ctx_dir = _tree(tmp_path / "ctx", {"a": ""})
    os.symlink(tmp_path / "out", ctx_dir / "linkdir")
    ctx = BuildContext.open(ctx_dir)
    with pytest.raises(ContextError, match="outside"):
        ctx.resolve("linkdir/f")
    with pytest.raises(ContextError, match="matches no file"):
        ctx.resolve("linkdir/*")


def test_globs_follow_go_match_and_skip_ignored(tmp_path: Path) -> None:
    _tree(tmp_path, {".dockerignore": "b.txt\n", "a.txt": "", "b.txt": "", "c.md": "", "sub/d.txt": ""})
    ctx = BuildContext.open(tmp_path)
    assert [s.rel for s in ctx.resolve("*.txt")] == ["a.txt"]
    assert [s.rel for s in ctx.resolve("*/*.txt")] == ["sub/d.txt"]
    assert [s.rel for s in ctx.resolve("[ac].*")] == ["a.txt", "c.md"]
    assert [s.rel for s in ctx.resolve("?.md")] == ["c.md"]
    with pytest.raises(ContextError, match="matches no file"):
        ctx.resolve("*.none")


def test_ignored_source_is_an_error_and_walk_skips_ignored(tmp_path: Path) -> None:
    _tree(tmp_path, {
        ".dockerignore": "secret\n**/*.log\ncache\n!cache/keep\n",
        "secret": "", "app/a.log": "", "app/main": "", "cache/x": "", "cache/keep": "",
    })
    ctx = BuildContext.open(tmp_path)
    with pytest.raises(ContextError, match="excluded by .dockerignore"):
        ctx.resolve("secret")
    [root] = ctx.resolve(".")
    rels = [f.rel for f in ctx.walk(root)]
    assert "app/main" in rels and "app/a.log" not in rels and "secret" not in rels
    assert "cache/keep" in rels and "cache/x" not in rels
    assert rels == [""] + sorted(rels[1:], key=lambda r: r.split("/"))


def test_default_kubefile_order(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="no Kubefile"):
        default_kubefile(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert default_kubefile(tmp_path).name == "Dockerfile"
    (tmp_path / "Sealfile").write_text("FROM scratch\n")
    assert default_kubefile(tmp_path).name == "Sealfile"
    (tmp_path / "Kubefile").write_text("FROM scratch\n")
    assert default_kubefile(tmp_path).name == "Kubefile"


def test_has_glob() -> None:
    assert has_glob("a*") and has_glob("a?") and has_glob("[a]") and not has_glob("plain/path")
