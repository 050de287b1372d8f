"""References normalise like Docker's and bad ones say what is wrong."""

import pytest

from imgbuild.errors import InvalidReference
from imgbuild.reference import parse_reference

H = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "text,normalized,familiar",
    [
        ("nginx", "docker.io/library/nginx:latest", "nginx:latest"),
        ("nginx:1.25", "docker.io/library/nginx:1.25", "nginx:1.25"),
        ("docker.io/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
        ("index.docker.io/library/nginx:1", "docker.io/library/nginx:1", "nginx:1"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7", "bitnami/redis:7"),
        ("localhost:5000/a/b:v1", "localhost:5000/a/b:v1", "localhost:5000/a/b:v1"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        (f"quay.io/x/y@{H}", f"quay.io/x/y@{H}", f"quay.io/x/y@{H}"),
        (f"ghcr.io/o/r:t@{H}", f"ghcr.io/o/r:t@{H}", f"ghcr.io/o/r:t@{H}"),
        ("[::1]:5000/app:v1", "[::1]:5000/app:v1", "[::1]:5000/app:v1"),
    ],
)
def test_normalise(text, normalized, familiar):
    ref = parse_reference(text)
    assert (ref.normalized, ref.familiar) == (normalized, familiar)


def test_parts_and_derivations():
    ref = parse_reference("127.0.0.1:5000/demo/app:v1")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("127.0.0.1:5000", "demo/app", "v1", None)
    assert ref.with_tag("v2").normalized == "127.0.0.1:5000/demo/app:v2"
    assert ref.with_digest(H).reference == H
    assert parse_reference("app@" + H).tag is None
    assert parse_reference("app", default_tag=False).tag is None


@pytest.mark.parametrize(
    "bad,why",
    [
        ("", "empty"),
        ("Nginx", "lowercase"),
        ("a b", "white space"),
        ("nginx:", "bad tag"),
        ("x@sha256:zz", "bad digest"),
        ("a//b", "path component"),
        ("nginx:${TAG}", "bad tag"),
        ("{{.Values.image}}", "path component"),
    ],
)
def test_invalid(bad, why):
    with pytest.raises(InvalidReference, match=why):
        parse_reference(bad)
