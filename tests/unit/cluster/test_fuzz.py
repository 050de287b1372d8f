"""Fuzzing the Clusterfile loader: any input gives a model or a ClusterfileError with file:line, never a traceback.

Three generators: arbitrary text, real corpus files with random line edits, and
YAML documents whose known fields hold random values of random types. A load
that succeeds must also dump byte for byte, and load to the same model after a
rewrite from the model and after a patch of its spec and status. The suite runs
``FUZZ_EXAMPLES`` (300) inputs, split over the three generators;
``python bench/bench_cluster.py fuzz 10000`` runs 10,000.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgbuild.cluster import Clusterfile, Status, parse_clusterfile
from imgbuild.errors import ClusterfileError

FUZZ_EXAMPLES = 300
CORPUS = sorted((Path(__file__).resolve().parents[2] / "data" / "clusterfiles").glob("*/*.yaml"))
_TEXTS = [p.read_bytes().decode("utf-8", "replace") for p in CORPUS]
_WHERE = re.compile(r"^.+:\d+$")

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["127.0.0.2", "127.0.0.2:22", "[::1]:22", "master", "node",
                                                           "amd64", "a=b", "x:1", "labring/helm:v3.8.2", "", "~", "²",
                                                           "0022", "１２", "[::1]", "a" * 300]))
_key = st.sampled_from(["user", "ips", "name", "port", "a", ""])
_value = st.one_of(_scalar, st.lists(_scalar, max_size=3), st.dictionaries(_key, _scalar, max_size=3),
                   st.lists(st.dictionaries(_key, _scalar, max_size=2), max_size=2))
_KEYS = {"spec": ["image", "hosts", "ssh", "env", "command", "other"], "host": ["ips", "roles", "env", "ssh", "x"],
         "ssh": ["user", "passwd", "pk", "pkPasswd", "port", "password"],
         "config": ["path", "data", "match", "strategy"]}


def check(text: str) -> None:
    """Load ``text``: a ClusterfileError naming file:line is fine; anything else, or a bad round trip, fails."""
    try:
        cf = parse_clusterfile(text, "fuzz")
    except ClusterfileError as exc:
        assert exc.where is None or _WHERE.match(exc.where), exc.where
        assert exc.message and "\n" not in exc.message.strip(), exc.message
        return
    assert cf.dump() == text
    cluster = cf.cluster
    cluster.machines()
    assert cluster.master0.is_master
    again = parse_clusterfile(Clusterfile.new(cluster, cf.configs).dump(), "rewritten")
    assert again.cluster == cluster and again.configs == cf.configs
    changed = replace(cluster, images=tuple(dict.fromkeys(cluster.images + ("fuzz/extra:1",))), command=("x",),
                      status=Status(phase="ClusterSuccess"))
    assert parse_clusterfile(cf.with_cluster(changed).dump(), "patched").cluster == changed


@st.composite
def edited_corpus(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(_TEXTS)).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "dup", "replace", "insert", "indent", "swap"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = draw(st.sampled_from([" ", "  ", "\t", "- "])) + lines[i]
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            key, _, _ = lines[i].partition(":")
            new = f"{key}: {draw(st.text(max_size=20))}\n" if op == "replace" else draw(st.text(max_size=30)) + "\n"
            lines.insert(i, new) if op == "insert" else lines.__setitem__(i, new)
    return "".join(lines)


def _fields(draw: st.DrawFn, keys: list[str]) -> dict:
    return {k: draw(_value) for k in keys if draw(st.booleans())}


@st.composite
def random_documents(draw: st.DrawFn) -> str:
    spec = _fields(draw, _KEYS["spec"])
    if draw(st.booleans()):
        spec["hosts"] = [{**_fields(draw, _KEYS["host"]), **({"ssh": _fields(draw, _KEYS["ssh"])}
                                                              if draw(st.booleans()) else {})}
                         for _ in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        spec["ssh"] = _fields(draw, _KEYS["ssh"])
    cluster = {"apiVersion": "apps.sealos.io/v1beta1", "kind": "Cluster",
               "metadata": draw(st.one_of(_value, st.fixed_dictionaries({"name": _scalar}))), "spec": spec}
    if draw(st.booleans()):
        cluster["status"] = draw(_value)
    docs = [cluster] + [{"apiVersion": "apps.sealos.io/v1beta1", "kind": "Config",
                         "metadata": {"name": draw(_scalar)}, "spec": _fields(draw, _KEYS["config"])}
                        for _ in range(draw(st.integers(0, 2)))]
    return yaml.safe_dump_all(docs, allow_unicode=True)


def run_fuzz(total: int) -> None:
    """Feed ``total`` inputs to the loader, a third from each generator (the suite: 300, the bench: 10,000)."""
    opts = settings(max_examples=max(1, total // 3), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
    for strategy in (st.text(), edited_corpus(), random_documents()):
        opts(given(strategy)(lambda text: check(text)))()


def test_fuzz_the_loader() -> None:
    run_fuzz(FUZZ_EXAMPLES)
