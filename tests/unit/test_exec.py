"""The command seam: local runs, streaming, missing tools, the fake."""

import pytest

from imgbuild.engine.exec import FakeExecutor, LocalExecutor

LOCAL = LocalExecutor()
from imgbuild.errors import CommandFailed, ToolMissing


def test_local_run_captures_output():
    res = LOCAL.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (res.stdout, res.stderr, res.exit_code, res.ok) == ("out\n", "err\n", 3, False)


def test_local_run_check_raises_with_tail():
    with pytest.raises(CommandFailed) as info:
        LOCAL.run(["sh", "-c", "echo failing-step >&2; exit 7"])
    assert "exit code 7" in str(info.value) and "failing-step" in str(info.value)


def test_local_stream_lines():
    seen = []
    res = LOCAL.run(["sh", "-c", "echo a; echo b >&2; echo c"], on_line=seen.append)
    assert sorted(seen) == ["a", "b", "c"] and seen.index("a") < seen.index("c") and res.ok
    assert (res.stdout, res.stderr) == ("a\nc\n", "b\n")  # streamed, yet still two streams


def test_missing_tool():
    with pytest.raises(ToolMissing):
        LOCAL.run(["definitely-not-a-tool-imgbuild"])


def test_fake_executor_matches_prefix_and_records():
    fake = FakeExecutor()
    fake.expect(["buildah", "--version"], stdout="buildah version 1.28\n")
    fake.expect(["buildah", "bud"], stderr="bad", exit_code=1)
    assert fake.run(["buildah", "--version"]).stdout.startswith("buildah")
    with pytest.raises(CommandFailed):
        fake.run(["buildah", "bud", "."])
    with pytest.raises(AssertionError):
        fake.run(["skopeo"])
    assert fake.calls[0] == ("buildah", "--version")
