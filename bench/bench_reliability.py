"""Reliability: kill -9 trials, hostile layers and archives, misbehaving registries, bad inputs.

One command, ``python -m bench reliability`` (as root: mounts), repeats the figures of
RELIABILITY.md. Everything runs the CLI in child processes with its own Home under
/tmp/imgbuild-bench-reliability, against a local docker-registry and fake registries on
127.0.0.1 only.

* kills: ``pull``, ``push``, ``load``, ``build`` and ``save`` of a 48 MiB image, each
  killed with SIGKILL at a random moment of its run (``RELIABILITY_KILLS`` trials per
  command, default 4, seeded by ``RELIABILITY_SEED``). After every kill: ``store verify``
  is clean, ``store gc`` leaves no temp bytes, the re-run succeeds with the reference
  digest (or identical archive), nothing is left beside a saved archive or in TMPDIR.
* hostile layers and archives, misbehaving registries, bad inputs and secrets: see
  :mod:`bench.reliability_cases`.

It prints one line per check and returns the held/total figures per section.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["main"]

WORK = Path("/tmp/imgbuild-bench-reliability")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass
class _Op:
    """One command under test: how to run it, undo it before a trial, and what a good run produces."""

    name: str
    kit: object
    argv: Callable[[int], tuple[str, ...]]
    reset: Callable[[], None]
    result: Callable[[object], str]


def _digest_of(out) -> str:
    found = _DIGEST.findall(out.out + out.err)
    return found[-1] if found else f"exit {out.code}: {out.err.strip()[-200:]}"


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _setup(reg_host: str):
    """Seed image pushed and saved once; a build context; one Kit per command."""
    from bench.reliability_kit import Kit
    from imgbuild.home import Home
    from imgbuild.oci.store import open_store
    from tests.support.images import make_random_image

    seed = Kit(WORK / "seed")
    make_random_image(open_store(Home(seed.home).ensure()), "rel/app:1", [40 << 20, 8 << 20], workdir=WORK)
    archive = WORK / "app.tar"
    for argv in (("push", "rel/app:1", f"{reg_host}/rel/app:1"), ("save", "-o", str(archive), "rel/app:1")):
        out = seed.run(*argv)
        assert out.code == 0, out.err
    ctx = WORK / "ctx"
    ctx.mkdir()
    (ctx / "payload").write_bytes(random.Random(7).randbytes(32 << 20))
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY payload /payload\nLABEL kind=reliability\n")
    kits = {name: Kit(WORK / name) for name in ("pull", "push", "load", "build", "save")}
    for name in ("push", "save"):
        assert kits[name].run("load", "-i", str(archive)).code == 0
    return kits, archive, ctx


def _ops(kits, reg_host: str, archive: Path, ctx: Path) -> list[_Op]:
    out_tar = WORK / "save" / "out.tar"

    def drop(kit, ref: str) -> Callable[[], None]:
        return lambda: (kit.run("rmi", ref), kit.run("store", "gc"))

    return [
        _Op("pull", kits["pull"], lambda i: ("pull", f"{reg_host}/rel/app:1"),
            drop(kits["pull"], f"{reg_host}/rel/app:1"), _digest_of),
        _Op("push", kits["push"], lambda i: ("push", "rel/app:1", f"{reg_host}/rel/push{i}:1"), lambda: None,
            _digest_of),
        _Op("load", kits["load"], lambda i: ("load", "-i", str(archive)), drop(kits["load"], "rel/app:1"), _digest_of),
        _Op("build", kits["build"], lambda i: ("build", "-q", "-t", "rel/built:1", str(ctx)),
            drop(kits["build"], "rel/built:1"), _digest_of),
        _Op("save", kits["save"], lambda i: ("save", "-o", str(out_tar), "rel/app:1"),
            lambda: out_tar.unlink(missing_ok=True),
            lambda out: _file_sha(out_tar) if out.code == 0 and out_tar.exists() else f"exit {out.code}: {out.err}"),
    ]


def _trial(op: _Op, i: int, delay: float, expected: str, tally) -> None:
    kit = op.kit
    op.reset()
    ran = kit.kill_after(delay, *op.argv(i))
    what = f"{op.name} #{i + 1} killed at {ran:.2f} s"
    verify = kit.run("store", "verify")
    tally.check("kills", f"{what}: store verify clean", verify.code == 0, verify.out + verify.err)
    gc = kit.run("store", "gc")
    tally.check("kills", f"{what}: gc leaves no temp bytes", gc.code == 0 and kit.temp_bytes() == 0,
                f"{kit.temp_bytes()} bytes")
    again = kit.run(*op.argv(i))
    tally.check("kills", f"{what}: re-run succeeds, same result", again.code == 0 and op.result(again) == expected,
                op.result(again))
    debris = [p.name for p in (WORK / "save").glob(".out.tar.tmp-*")] if op.name == "save" else []
    left = kit.systmp_entries()
    tally.check("kills", f"{what}: no debris beside outputs or in TMPDIR", not debris and not left, str(debris + left))


def kills(kits, reg_host: str, archive: Path, ctx: Path, tally) -> None:
    """SIGKILL each command at random moments and check what a re-run and the store see."""
    trials = int(os.environ.get("RELIABILITY_KILLS", "4"))
    rng = random.Random(int(os.environ.get("RELIABILITY_SEED", "20")))
    for op in _ops(kits, reg_host, archive, ctx):
        op.reset()
        ref = op.kit.run(*op.argv(99))
        expected = op.result(ref)
        print(f"  {op.name}: reference run {ref.seconds:.2f} s -> {expected[:19]}", flush=True)
        for i in range(trials):
            _trial(op, i, rng.uniform(0.1, 0.9) * ref.seconds, expected, tally)


def main() -> dict:
    """Run every section and return held/total per section (and the total)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import reliability_cases as cases
    from bench.reliability_kit import Kit, Tally
    from imgbuild.engine.exec import require_tool
    from tests.support.registry import start_registry

    if os.geteuid() != 0:
        print("the reliability run mounts images: run it as root", file=sys.stderr)
        return {}
    require_tool("docker-registry")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    tally = Tally()
    reg = start_registry(WORK / "registry")
    try:
        print("== kill -9 trials", flush=True)
        kits, archive, ctx = _setup(reg.host)
        kills(kits, reg.host, archive, ctx, tally)
    finally:
        reg.stop()
    print("== hostile layers and archives", flush=True)
    cases.hostile_layers(Kit(WORK / "hostile"), tally)
    cases.hostile_archives(Kit(WORK / "archives"), tally)
    print("== misbehaving registries", flush=True)
    cases.bad_registries(WORK, tally)
    print("== bad inputs", flush=True)
    cases.bad_inputs(Kit(WORK / "inputs"), tally)
    print("== secrets", flush=True)
    cases.secrets(WORK, tally)
    Kit(WORK / "hostile").run("umount", "--all")
    print("== broken" if tally.broken else "== every check held")
    for line in tally.broken:
        print(f"  {line}")
    figures = {sec: f"{tally.held[sec]}/{tally.total[sec]}" for sec in tally.total}
    figures["all"] = f"{sum(tally.held.values())}/{sum(tally.total.values())}"
    return figures


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
