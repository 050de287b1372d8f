"""The hostile-input, misbehaving-registry and bad-input sections of the reliability run.

Each case runs the CLI against something crafted to hurt it and checks what a user is
promised (RELIABILITY.md): a clear error (never "internal error"), a bounded time, no
privilege handed out, nothing written outside the store or a mount, no debris.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.reliability_kit import Kit, Outcome, Tally
from imgbuild.home import Home
from imgbuild.oci.store import open_store
from tests.support.badregistry import MODES, BadRegistry
from tests.support.hostile import bomb_image, deep_members, junk_archive, member, raw_image
from tests.support.oci_images import make_image

__all__ = ["hostile_layers", "hostile_archives", "bad_registries", "bad_inputs", "secrets", "DEADLINE_S"]

DEADLINE_S = 120.0  # a failing transfer gives up by then: 30 s stall windows, a 60 s retry budget, slack for load
_BOMB = 300 << 20  # past the default 256 MiB allowance of one layer


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _user_error(out: Outcome) -> bool:
    return out.code == 2 and not out.internal


def hostile_layers(kit: Kit, tally: Tally) -> None:
    """Crafted layers mounted as a user would: no device, no setuid, no escape, bombs and deep trees refused."""
    sec = "hostile-layers"
    store = open_store(Home(kit.home).ensure())
    kit.home.chmod(0o755)  # a Home that already existed, readable by others
    outside = kit.work / "outside"
    raw_image(store, "evil/special:1", [
        member("dev", "dir", mode=0o755), member("dev/vda", "blk", mode=0o666, dev=(254, 0)),
        member("dev/mem", "chr", mode=0o666, dev=(1, 1)), member("bin", "dir", mode=0o755),
        member("bin/su", data=b"#!/bin/sh\nid -u\n", mode=0o4755), member("bin/wall", data=b"w", mode=0o2755),
        member("/abs/file", data=b"inside")])
    out = kit.run("mount", "--mechanism", "overlay", "evil/special:1")
    merged = Path(out.out.strip().splitlines()[-1]) if out.code == 0 and out.out.strip() else None
    tally.check(sec, "setuid/device layer mounts", merged is not None, out.err)
    if merged is not None:
        tally.check(sec, "no device nodes", os.listdir(merged / "dev") == [])
        tally.check(sec, "no setuid or setgid bits", _mode(merged / "bin/su") & 0o6000 == 0
                    and _mode(merged / "bin/wall") & 0o6000 == 0)
        tally.check(sec, "absolute names land inside", (merged / "abs/file").read_bytes() == b"inside")
        tally.check(sec, "cache and mounts 0700 in a 0755 Home",
                    _mode(kit.home / "cache") == 0o700 and _mode(kit.home / "mounts") == 0o700)
        opts = next((ln.split()[5] for ln in Path("/proc/self/mountinfo").read_text().splitlines()
                     if ln.split()[4] == str(merged)), "")
        tally.check(sec, "mounted nosuid,nodev", {"nosuid", "nodev"} <= set(opts.split(",")), opts)
    escapes = {
        "entry with ..": [member("../../escaped", data=b"x")],
        "write through a symlink": [member("link", "sym", link=str(outside)), member("link/pwned", data=b"x")],
        "hardlink to a host file": [member("passwd", "hard", link="/etc/passwd")],
        "1,500 nested directories": deep_members(1500),
    }
    outside.mkdir()
    for n, (name, members) in enumerate(escapes.items()):
        raw_image(store, f"evil/escape{n}:1", members)
        out = kit.run("mount", "--mechanism", "copy", f"evil/escape{n}:1")
        tally.check(sec, f"{name}: refused as bad input", _user_error(out), out.err)
    escaped = os.listdir(outside) + [p.name for p in kit.work.parent.glob("escaped")]
    tally.check(sec, "nothing written outside", escaped == [], str(escaped))
    for kind in ("gzip", "zstd"):
        _desc, blob = bomb_image(store, f"evil/bomb-{kind}:1", _BOMB, kind)
        out = kit.run("mount", "--mechanism", "copy", f"evil/bomb-{kind}:1")
        tally.check(sec, f"{kind} bomb ({_BOMB // blob:,}:1) refused", _user_error(out), out.err)
    out = kit.run("umount", "--all")
    gc = kit.run("store", "gc")
    tally.check(sec, "umount --all and gc still work", out.code == 0 and gc.code == 0, out.err + gc.err)


def hostile_archives(kit: Kit, tally: Tally) -> None:
    """Archives that are empty, escape, or carry a junk bomb: a clear error, bounded time, nothing kept."""
    sec = "hostile-archives"
    out = kit.run("load", "-i", "/dev/null")
    tally.check(sec, "load -i /dev/null: says it is empty, not missing",
                _user_error(out) and "no such archive file" not in out.err, out.err)
    evil = kit.work / "escape.tar"
    with tarfile.open(evil, "w") as tf:
        info = tarfile.TarInfo("../evil")
        tf.addfile(info, io.BytesIO(b""))
    out = kit.run("load", "-i", str(evil))
    tally.check(sec, "member with ..: refused", _user_error(out), out.err)
    make_image(open_store(Home(kit.home).ensure()), "small:1", {"etc/small": b"small\n"})
    plain = kit.work / "small.tar"
    assert kit.run("save", "-o", str(plain), "small:1").code == 0 and kit.run("rmi", "small:1").code == 0
    for junk_mb, expect_ok in ((64, True), (1536, False)):
        junk = junk_archive(plain, kit.work / f"junk{junk_mb}.tar.gz", junk_mb << 20)
        before = _blob_bytes(kit)
        out = kit.run("load", "-i", str(junk), timeout=300)
        ratio = f"{junk.stat().st_size:,} B gz -> {junk_mb} MiB"
        if expect_ok:
            tally.check(sec, f"junk member ({ratio}): loads in {out.seconds:.1f} s, junk skipped",
                        out.code == 0 and _blob_bytes(kit) - before < 1 << 20, out.err)
        else:
            tally.check(sec, f"junk bomb ({ratio}): refused in {out.seconds:.1f} s, nothing kept",
                        _user_error(out) and out.seconds < 60 and _blob_bytes(kit) == before, out.err)
    tally.check(sec, "no temp files left", kit.temp_bytes() == 0, f"{kit.temp_bytes()} bytes")


def _blob_bytes(kit: Kit) -> int:
    return sum(p.stat().st_size for p in (kit.home / "store" / "blobs").rglob("*") if p.is_file())


def _one_registry(kit: Kit, mode: str) -> tuple[str, Outcome, int]:
    with BadRegistry(mode) as reg:
        out = kit.run("pull", reg.ref, timeout=DEADLINE_S * 2)
    return mode, out, kit.temp_bytes()


def bad_registries(work: Path, tally: Tally) -> None:
    """Pull from registries that misbehave (in parallel, each with its own Home): fail clearly and in time."""
    sec = "registry"
    modes = [m for m in MODES if m != "ok"]
    kits = {m: Kit(work / f"reg-{m}") for m in modes}
    with ThreadPoolExecutor(len(modes)) as pool:
        results = list(pool.map(lambda m: _one_registry(kits[m], m), modes))
    for mode, out, debris in results:
        in_time = out.code is not None and out.code != 0 and out.seconds < DEADLINE_S
        tally.check(sec, f"{mode}: fails within {DEADLINE_S:.0f} s ({out.seconds:.0f} s)", in_time,
                    f"exit {out.code} after {out.seconds:.0f} s")
        tally.check(sec, f"{mode}: says what happened (no internal error)", out.code is not None and not out.internal,
                    out.err)
        tally.check(sec, f"{mode}: leaves no temp files", debris == 0, f"{debris} bytes")


BAD_INPUTS: tuple[tuple[str, ...], ...] = (
    ("load", "-i", "/nonexistent.tar"),
    ("tag", "no-such:1", "x:1"),
    ("tag", "busybox:1", "x@sha256:" + "0" * 64),
    ("pull", "Bad/UPPER:case"),
    ("push", "no-such:1", "127.0.0.1:1/x:1"),
    ("inspect", "no-such:1"),
    ("rmi", "no-such:1"),
    ("mount", "no-such:1"),
    ("mount", "--mechanism", "bogus", "no-such:1"),
    ("save", "-o", "/nonexistent-dir/out.tar", "no-such:1"),
    ("save", "--format", "zip", "-o", "out.tar", "no-such:1"),
    ("build", "/nonexistent-context"),
    ("build", "--backend", "bogus", "{ctx}"),
    ("build", "--platform", "not/a/valid/platform/x", "{ctx}"),
    ("lint", "/nonexistent/Kubefile"),
    ("images", "--bogus-flag"),
    ("store", "gc", "--bogus-flag"),
    ("registry", "ls", "/nonexistent-dir"),
)


def bad_inputs(kit: Kit, tally: Tally) -> None:
    """Wrong arguments and inputs: exit 2 with one line saying what is wrong, never an internal error."""
    sec = "bad-input"
    latin1, ok_ctx = kit.work / "latin1", kit.work / "ctx"
    for ctx, text in ((latin1, b"FROM scratch\nLABEL a=\xe9t\xe9\n"), (ok_ctx, b"FROM scratch\n")):
        ctx.mkdir()
        (ctx / "Kubefile").write_bytes(text)
    for argv in (*BAD_INPUTS, ("build", str(latin1))):
        argv = tuple(a.replace("{ctx}", str(ok_ctx)) for a in argv)
        out = kit.run(*argv)
        ok = out.code == 2 and not out.internal and out.err.strip().startswith(("error:", "Usage:"))
        tally.check(sec, " ".join(argv)[:70], ok, f"exit {out.code}: {out.err.strip()[-200:]}")


_PASSWORD = "rel-s3cret-Pw9"


def secrets(work: Path, tally: Tally) -> None:
    """Log in, push and pull with a password (--debug too), kill a pull: the password is only in a 0600 auth.json."""
    import base64

    from tests.support.registry import start_registry

    sec = "secrets"
    kit = Kit(work / "secrets")
    reg = start_registry(work / "auth-registry", auth=("alice", _PASSWORD))
    outs = []
    try:
        make_image(open_store(Home(kit.home).ensure()), "sec/app:1", {"etc/app": b"app\n" * 4096})
        outs.append(kit.run("--debug", "login", reg.host, "-u", "alice", "--password-stdin", input=_PASSWORD))
        outs.append(kit.run("--debug", "push", "sec/app:1", f"{reg.host}/sec/app:1"))
        outs.append(kit.run("--debug", "pull", f"{reg.host}/sec/app:1"))
        kit.kill_after(0.4, "--debug", "pull", f"{reg.host}/sec/app:1")
        outs.append(kit.run("login", reg.host, "-u", "alice", "--password-stdin", input="wrong-" + _PASSWORD))
    finally:
        reg.stop()
    tally.check(sec, "login, push and pull with the password work", all(o.code == 0 for o in outs[:3]),
                " | ".join(o.err.strip()[-120:] for o in outs[:3]))
    forms = [_PASSWORD.encode(), base64.b64encode(f"alice:{_PASSWORD}".encode())]
    said = [o.out + o.err for o in outs]
    tally.check(sec, "never printed (--debug and a refused login included)",
                not any(f.decode() in text for f in forms for text in said))
    auth = kit.home / "auth.json"
    holders = [str(p.relative_to(kit.work)) for p in kit.work.rglob("*") if p.is_file() and not p.is_symlink()
               and any(f in p.read_bytes() for f in forms)]
    tally.check(sec, "only auth.json holds it", holders == ["home/auth.json"], str(holders))
    mode = oct(_mode(auth)) if auth.exists() else "missing"
    tally.check(sec, "auth.json is 0600", mode == "0o600", mode)
