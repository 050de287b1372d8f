"""Two writer processes (tag/untag/load/rmi loops) and a reader at once leave a valid store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from imgbuild import api
from imgbuild.home import home
from imgbuild.oci.store import open_store
from tests.support.oci_images import make_image

REPO = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent("""
    import sys, time
    from imgbuild import api
    from imgbuild.home import home
    from imgbuild.oci.store import open_store
    from tests.support.oci_images import make_image
    who, archive, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    store, n, end = open_store(home()), 0, time.time() + seconds
    while time.time() < end:
        n += 1
        api.load(archive, store=store)                      # re-tags base:1 (same content)
        api.tag("base:1", f"{who}/copy:{n % 5}", store)
        make_image(store, f"{who}/own:{n % 3}", {"n": f"{who}{n}".encode()})
        if n % 4 == 0:
            api.rmi([f"{who}/own:{(n + 1) % 3}"], store=store)  # untag + gc while the other writes
    print(n)
""")

READER = textwrap.dedent("""
    import json, sys, time
    from imgbuild.home import home
    from imgbuild.oci.store import open_store
    store, end, reads = open_store(home()), time.time() + float(sys.argv[1]), 0
    while time.time() < end:
        try:
            raw = (store.root / "index.json").read_bytes()
        except FileNotFoundError:
            continue
        json.loads(raw)                                     # never partial
        for ref, desc in store.tags():
            pass
        reads += 1
    print(reads)
""")


def _spawn(script: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_writers_and_a_reader(tmp_path):
    store = open_store(home())
    make_image(store, "base:1", {"etc/base": b"base" * 1000})
    archive = tmp_path / "base.tar"
    api.save(["base:1"], archive, store=store)
    procs = [_spawn(WRITER, "alpha", str(archive), "4"), _spawn(WRITER, "beta", str(archive), "4"),
             _spawn(READER, "4")]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    loops = [int(out) for out, _ in outs]
    assert min(loops[:2]) > 3 and loops[2] > 10, loops
    json.loads((store.root / "index.json").read_text())
    assert store.verify() == []
    names = {ref.normalized for ref, _ in store.tags()}
    assert "docker.io/library/base:1" in names
    assert any(n.startswith("docker.io/alpha/") for n in names) and any(n.startswith("docker.io/beta/") for n in names)
    store.gc()
    assert store.verify() == []
    assert list(store.tmp_dir.iterdir()) == []
