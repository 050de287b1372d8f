"""Unit tests of mount records (atomic JSON files) and mountinfo parsing / staleness rules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imgbuild.errors import MountError
from imgbuild.rootfs.records import (
    MountInfoEntry, MountRecord, load_records, mounted_points, new_mount_id, parse_mountinfo, pid_alive,
    read_record, remove_record, staleness, write_record,
)

SAMPLE = (
    "22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "44 22 0:39 / /tmp/with\\040space/merged rw,relatime - overlay overlay ro,lowerdir=1:0,redirect_dir=on\n"
    "45 22 0:40 / /run/user rw master:3 shared:9 - tmpfs tmpfs rw,size=10k\n"
    "garbage line\n"
)


def test_parse_mountinfo_decodes_escapes_and_optional_fields():
    entries = parse_mountinfo(SAMPLE)
    assert [e.mountpoint for e in entries] == ["/", "/tmp/with space/merged", "/run/user"]
    ov = entries[1]
    assert ov.fstype == "overlay" and ov.source == "overlay" and "ro" in ov.super_options
    assert entries[2].fstype == "tmpfs" and entries[2].parent_id == 22


def test_real_mountinfo_has_root():
    assert "/" in mounted_points()


def record(tmp_path: Path, **kw) -> MountRecord:
    merged = tmp_path / "m" / "merged"
    merged.mkdir(parents=True, exist_ok=True)
    base = dict(id=new_mount_id(), ref="x:1", digest="sha256:" + "a" * 64, path=str(merged), mechanism="overlay",
                state="mounted", pid=os.getpid(), created="2024-01-01T00:00:00Z")
    base.update(kw)
    return MountRecord(**base)


def test_write_read_roundtrip_and_listing(tmp_path: Path):
    d = tmp_path / "mounts"
    rec = record(tmp_path, lowers=("/a", "/b"), unpacked=("sha256:" + "b" * 64,))
    write_record(d, rec)
    assert read_record(d, rec.id) == rec
    (d / "0123456789ab.json").write_text("{not json")
    good, bad = load_records(d)
    assert good == [rec] and [p.name for p in bad] == ["0123456789ab.json"]
    assert not list(d.glob("*.tmp"))
    remove_record(d, rec.id)
    with pytest.raises(MountError):
        read_record(d, rec.id)


def test_bad_ids_and_mechanisms_are_refused(tmp_path: Path):
    with pytest.raises(MountError):
        read_record(tmp_path, "../../etc/passwd")
    with pytest.raises(MountError):
        MountRecord.from_dict({**record(tmp_path).to_dict(), "mechanism": "magic"})


def test_staleness_rules(tmp_path: Path):
    rec = record(tmp_path)
    table = {rec.path: MountInfoEntry(1, 0, rec.path, "overlay", "overlay")}
    assert staleness(rec, table) is None
    assert staleness(rec, {}) == "no longer mounted"
    assert staleness(rec.with_(mechanism="copy"), {}) is None
    assert staleness(rec.with_(path=str(tmp_path / "gone")), table) == "mount point was removed"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    assert not pid_alive(pid)
    assert "died while mounting" in staleness(rec.with_(state="pending", pid=pid), {})
    assert staleness(rec.with_(state="pending"), {}) is None
