"""Addresses, ranges, roles, SSH overlay, env precedence, expansion and masking."""

from __future__ import annotations

import pytest

from imgbuild.cluster.env import FrozenMap, effective_env, expand, masked, parse_env_item
from imgbuild.cluster.hosts import SSH, expand_hosts, format_endpoint, parse_endpoint, role_problem


@pytest.mark.parametrize("text, want", [
    ("127.0.0.2", ("127.0.0.2", None)),
    ("127.0.0.2:2222", ("127.0.0.2", 2222)),
    (" 127.0.0.2:22 ", ("127.0.0.2", 22)),
    ("::1", ("::1", None)),
    ("0:0::1", ("::1", None)),
    ("[::1]:22", ("::1", 22)),
    ("[fd00::2]", ("fd00::2", None)),
])
def test_parse_endpoint(text: str, want: tuple) -> None:
    assert parse_endpoint(text) == want


@pytest.mark.parametrize("text, message", [
    ("127.0.0.256", "is not an IP address"),
    ("host-1", "is not an IP address"),
    ("127.0.0.2:0", "is not a number from 1 to 65535"),
    ("127.0.0.2:65536", "is not a number from 1 to 65535"),
    ("127.0.0.2:ssh", "is not a number"),
    ("[127.0.0.2]:22", "only IPv6"),
    ("[::1]x", r"is not \[ipv6\]:port"),
    ("", "is not an IP address"),
])
def test_parse_endpoint_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_endpoint(text)


def test_format_endpoint_brackets_ipv6() -> None:
    assert format_endpoint("::1", 22) == "[::1]:22"
    assert format_endpoint("127.0.0.2", 22) == "127.0.0.2:22"
    assert format_endpoint("127.0.0.2", None) == "127.0.0.2"


@pytest.mark.parametrize("text, want", [
    ("127.0.0.2,127.0.0.3", ["127.0.0.2", "127.0.0.3"]),
    ("127.0.0.4-127.0.0.6", ["127.0.0.4", "127.0.0.5", "127.0.0.6"]),
    ("127.0.0.255-127.0.1.1", ["127.0.0.255", "127.0.1.0", "127.0.1.1"]),
    ("127.0.0.2:2222,,127.0.0.3", ["127.0.0.2:2222", "127.0.0.3"]),
    ("127.0.0.8/30", ["127.0.0.8", "127.0.0.9", "127.0.0.10", "127.0.0.11"]),
    ("::1-::3", ["::1", "::2", "::3"]),
    ("[::1]:2200", ["[::1]:2200"]),
    ("", []),
])
def test_expand_hosts(text: str, want: list) -> None:
    assert expand_hosts(text) == want


@pytest.mark.parametrize("text, message", [
    ("127.0.0.6-127.0.0.4", "starts after it ends"),
    ("127.0.0.1-::1", "mixes IPv4 and IPv6"),
    ("127.0.0.1-x", "is not a range"),
    ("127.0.0.0/8", "more than 65536"),
    ("127.0.0.0/33", "is not a CIDR"),
])
def test_expand_hosts_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expand_hosts(text)


@pytest.mark.parametrize("role, problem", [
    ("master", None), ("node", None), ("registry", None), ("amd64", None), ("db", None), ("gpu-a100", None),
    ("Master", "did you mean 'master'"), ("mastr", "did you mean 'master'"), ("nodes", "did you mean 'node'"),
    ("worker", "did you mean 'node'"), ("control-plane", "did you mean 'master'"),
    ("registery", "did you mean 'registry'"), ("", "empty role"), ("a b", "is not a tag"),
])
def test_role_problem(role: str, problem: str | None) -> None:
    got = role_problem(role)
    assert (got is None) if problem is None else (problem in got)


def test_ssh_overlay_and_masking() -> None:
    base = SSH(user="root", passwd="pw", port=22)
    host = base.overlay(SSH(user="ubuntu", pk="/k", port=2222))
    assert host == SSH(user="ubuntu", passwd="pw", pk="/k", port=2222)
    assert base.overlay(None) is base
    assert host.masked() == {"user": "ubuntu", "passwd": "******", "pk": "/k", "port": 2222}
    assert "pw" not in repr(host)
    assert SSH(pk_passwd="x").to_dict() == {"pkPasswd": "x"}


def test_effective_env_precedence() -> None:
    env = effective_env({"a": "image", "b": "image", "c": "image", "d": "image"},
                        {"b": "spec", "c": "spec", "d": "spec"}, {"c": "host", "d": "host"}, {"d": "cli"})
    assert env == {"a": "image", "b": "spec", "c": "host", "d": "cli"}
    assert effective_env(None, None, None, None) == {}


@pytest.mark.parametrize("text, want", [
    ("bash init.sh $registryDomain $(registryPort)", "bash init.sh sealos.hub 5000"),
    ("${registryDomain}:${registryPort}", "sealos.hub:5000"),
    ("$unknown $(unknown) ${unknown} stay", "$unknown $(unknown) ${unknown} stay"),
    ("$registryDomainX is a longer name", "$registryDomainX is a longer name"),
    ("$$registryDomain", "$sealos.hub"),
    ("${registryDomain:-x}", "${registryDomain:-x}"),
    ("no dollars", "no dollars"),
    ("$(registryPort)$registryPort", "50005000"),
])
def test_expand_as_sealos(text: str, want: str) -> None:
    assert expand(text, {"registryDomain": "sealos.hub", "registryPort": "5000"}) == want


def test_expand_does_not_expand_values_again() -> None:
    assert expand("$a", {"a": "$b", "b": "no"}) == "$b"


def test_masked_hides_secrets_only() -> None:
    env = {"registryPassword": "p", "passwd": "p", "MY_TOKEN": "t", "dbPassword": "p", "registryDomain": "d",
           "emptyPassword": ""}
    assert masked(env) == {"registryPassword": "******", "passwd": "******", "MY_TOKEN": "******",
                           "dbPassword": "******", "registryDomain": "d", "emptyPassword": ""}


def test_parse_env_item() -> None:
    assert parse_env_item("a=b=c") == ("a", "b=c")
    assert parse_env_item("etcd-dir=/data") == ("etcd-dir", "/data")
    assert parse_env_item("EMPTY=") == ("EMPTY", "")
    for bad in ("novalue", "=x", "1a=b", "a b=c"):
        with pytest.raises(ValueError):
            parse_env_item(bad)


def test_frozen_map_is_hashable_ordered_and_read_only() -> None:
    m = FrozenMap([("b", "1"), ("a", "2")])
    assert list(m) == ["b", "a"] and m == {"a": "2", "b": "1"}
    assert hash(m) == hash(FrozenMap({"a": "2", "b": "1"}))
    with pytest.raises(TypeError):
        m["c"] = "3"  # type: ignore[index]
    assert "2" not in repr(FrozenMap({"passwd": "2"}))
