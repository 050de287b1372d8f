"""The error tree maps to the documented exit codes and renders one line."""

import pytest

from imgbuild import errors as E


@pytest.mark.parametrize(
    "exc,code",
    [
        (E.ImgbuildError("x"), 1),
        (E.InputError("x"), 2),
        (E.KubefileError("x", "Kubefile", 3, 1), 2),
        (E.InvalidReference("x"), 2),
        (E.ImageNotFound("x"), 2),
        (E.ContextError("x"), 2),
        (E.UnsafePathError("x"), 2),
        (E.ClusterfileError("x"), 2),
        (E.StoreError("x"), 1),
        (E.DigestMismatch("sha256:a", "sha256:b"), 1),
        (E.RegistryError("x"), 1),
        (E.AuthError("x"), 1),
        (E.BuildError("x"), 1),
        (E.MountError("x"), 1),
        (E.ToolMissing("buildah"), 1),
        (E.Interrupted(), 130),
    ],
)
def test_exit_codes(exc, code):
    assert exc.exit_code == code


def test_where_is_appended():
    assert str(E.ImageNotFound("no such image", "docker.io/library/x:1")) == "no such image (docker.io/library/x:1)"
    assert str(E.ImgbuildError("plain")) == "plain"


def test_kubefile_error_points_at_line_and_column():
    err = E.KubefileError("unknown instruction RUNN", "ctx/Kubefile", 4, 1, "RUNN echo")
    assert str(err) == "unknown instruction RUNN (ctx/Kubefile:4:1)"
    assert err.detail() == "    RUNN echo\n    ^"


def test_command_failed_carries_evidence():
    from imgbuild.engine.exec import Result

    res = Result(("buildah", "bud", "."), "", "line1\nboom", 125, "localhost")
    err = E.CommandFailed(res)
    assert "exit code 125" in str(err) and "boom" in str(err) and err.where == "localhost"
