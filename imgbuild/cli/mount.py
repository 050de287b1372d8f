"""``imgbuild mount``, ``umount``, ``mounts``, ``commit`` and ``diff``: look inside images and compare them."""

from __future__ import annotations

from typing import Optional

import typer

from imgbuild.cli import output
from imgbuild.cli.edge import local_executor, local_home, local_store
from imgbuild.cli.app import app

__all__ = ["mount", "umount", "mounts", "commit", "diff"]


@app.command()
def mount(
    ref: str = typer.Argument(..., metavar="REF", help="Image: name[:tag], name@digest, sha256:..., or an ID prefix."),
    rw: bool = typer.Option(False, "--rw", help="Add a writable layer (discarded by umount, or saved by commit)."),
    mechanism: str = typer.Option("auto", "--mechanism", help="auto, overlay, fuse-overlayfs or copy."),
    special_files: bool = typer.Option(False, "--special-files", help="Keep device nodes and setuid/setgid bits "
                                       "(as root, in a private extracted copy): only for images you trust."),
    max_expansion: int = typer.Option(100, "--max-expansion", min=0, help="Refuse a layer that expands past this "
                                      "many times its compressed size (at least 256 MiB; 0: no limit)."),
    json_out: bool = typer.Option(False, "--json", help="Print the mount as JSON."),
) -> None:
    """Mount an image's merged filesystem and print the directory (read-only unless --rw).

    Mounting an image that is already mounted read-only prints the same directory again. Layers are
    unpacked without device nodes and setuid/setgid bits (unless --special-files); overlays are nosuid,nodev.

    Example: imgbuild mount localhost:5000/demo/app:v1
    """
    from imgbuild import api
    from imgbuild.rootfs.policy import UnpackPolicy

    def unpacking(desc) -> None:  # a cold mount of a big image takes a while: say what it is doing
        output.info(f"unpacking layer {desc.digest.hex[:12]} ({output.human_size(desc.size)} compressed)")

    m = api.mount(ref, store=local_store(), executor=local_executor(), rw=rw, mechanism=mechanism, reuse=True,
                  on_unpack=unpacking, policy=UnpackPolicy(special_files=special_files, max_ratio=max_expansion))
    if m.note:
        output.warn(m.note)
    if output.want_json(json_out):
        output.emit_json({"id": m.id, "path": str(m.path), "ref": m.ref, "digest": m.digest,
                          "mechanism": m.mechanism, "rw": m.rw, "type": m.type, "note": m.note})
        return
    output.info(f"mounted {m.ref} ({m.mechanism}, {'read-write' if m.rw else 'read-only'}, id {m.id})")
    output.echo(str(m.path))


@app.command()
def umount(
    target: Optional[str] = typer.Argument(None, metavar="REF|PATH|ID", help="Image, mount path or mount id."),
    all_: bool = typer.Option(False, "--all", "-a", help="Unmount every imgbuild mount."),
) -> None:
    """Unmount an image (its writable layer, if any, is discarded) and remove the mount directory.

    Example: imgbuild umount localhost:5000/demo/app:v1
    """
    from imgbuild import api
    from imgbuild.errors import InputError

    if target is None and not all_:
        raise InputError("name a mount (image, path or mount id) or use --all")
    done = api.umount(target, home=local_home(), executor=local_executor(), all=all_)
    for item in done:
        rec = item.record
        output.info(f"unmounted {rec.ref} ({rec.path})" + (f": {item.note}" if item.note else ""))
    if not done:
        output.info("nothing was mounted")


@app.command()
def mounts(json_out: bool = typer.Option(False, "--json", help="Print the mount records as JSON.")) -> None:
    """List what imgbuild has mounted (stale mounts left by a crash are cleaned first).

    Example: imgbuild mounts --json
    """
    from imgbuild import api

    recs = api.mounts(home=local_home(), executor=local_executor())
    if output.want_json(json_out):
        output.emit_json([r.to_dict() for r in recs])
        return
    output.table(["ID", "IMAGE", "MECHANISM", "MODE", "PATH"],
                 [(r.id, r.ref, r.mechanism, "rw" if r.rw else "ro", r.path) for r in recs])


@app.command()
def commit(
    target: str = typer.Argument(..., metavar="MOUNT", help="A writable mount: its path, id, or image."),
    tag: str = typer.Option(..., "--tag", "-t", help="Name of the new image."),
    compression: Optional[str] = typer.Option(None, "--compression", help="zstd (default) or gzip."),
    json_out: bool = typer.Option(False, "--json", help="Print the new image as JSON."),
) -> None:
    """Save the changes made in a writable mount as a new image (one more layer).

    Example: imgbuild commit ~/.imgbuild/mounts/0a1b2c3d4e5f/merged -t localhost:5000/demo/app:v2
    """
    from imgbuild import api

    desc = api.commit(target, tag, store=local_store(), executor=local_executor(), compression=compression)
    if output.want_json(json_out):
        output.emit_json({"reference": tag, "digest": str(desc.digest)})
        return
    output.info(f"committed {tag}")
    output.echo(str(desc.digest))


@app.command()
def diff(
    a: str = typer.Argument(..., metavar="A", help="Image or directory (the old side)."),
    b: str = typer.Argument(..., metavar="B", help="Image or directory (the new side)."),
    no_owners: bool = typer.Option(False, "--ignore-owner", help="Do not report uid/gid differences."),
    json_out: bool = typer.Option(False, "--json", help="Print the full diff as JSON."),
) -> None:
    """Show files added, removed and changed, and config/label/env changes, from A to B.

    Example: imgbuild diff localhost:5000/demo/app:v1 localhost:5000/demo/app:v2
    """
    from imgbuild import api

    d = api.diff(a, b, store=local_store(), owners=not no_owners)
    if output.want_json(json_out):
        output.emit_json(d.to_dict())
        return
    for line in diff_lines(d):
        output.echo(line)


def _describe(info, below: int, size: int) -> str:
    if info.kind == "dir":
        entries = f"{below} {'entry' if below == 1 else 'entries'}"
        return f"{info.path}/" + (f"  ({entries}, {output.human_size(size)})" if below else "")
    if info.kind == "symlink":
        return f"{info.path} -> {info.linkname}"
    return f"{info.path}  ({info.kind}, {output.human_size(info.size)})" if info.kind == "file" else \
        f"{info.path}  ({info.kind})"


def _field(name: str, old, new) -> str:
    if name == "mode":
        return f"mode {old:04o} -> {new:04o}"
    if name == "size":
        return f"size {output.human_size(old)} -> {output.human_size(new)}"
    if name == "sha256":
        return f"sha256 {(old or '-')[:12]} -> {(new or '-')[:12]}"
    return f"{name} {old} -> {new}"


def diff_lines(d) -> list[str]:
    """The human form of an :class:`~imgbuild.rootfs.diff.ImageDiff`: A/D/M lines, then config changes."""
    from imgbuild.rootfs.diff import collapse

    lines = [f"A {_describe(*c)}" for c in collapse(d.files.added)]
    lines += [f"D {_describe(*c)}" for c in collapse(d.files.removed)]
    for ch in d.files.changed:
        parts = ", ".join(_field(f, getattr(ch.old, f), getattr(ch.new, f)) for f in ch.fields)
        lines.append(f"M {ch.path}  {parts}")
    if d.config is not None:
        lines += _config_lines(d.config)
    if not lines:
        lines.append("no differences")
    return lines


def _config_lines(c) -> list[str]:
    out = []
    for title, md in (("label", c.labels), ("env", c.env), ("config", c.other)):
        out += [f"{title} + {k}={v}" for k, v in md.added.items()]
        out += [f"{title} - {k}={v}" for k, v in md.removed.items()]
        out += [f"{title} ~ {k}: {o} -> {n}" for k, (o, n) in md.changed.items()]
    for title, pair in (("cmd", c.cmd), ("entrypoint", c.entrypoint)):
        if pair is not None:
            out.append(f"{title} ~ {pair[0]} -> {pair[1]}")
    return out
