"""Units: layered trees merged as an overlay would, excluded prefixes left out, swapped into place whole."""

import os

from imgbuild.engine.exec import LocalExecutor
from imgbuild.engine.ship import MARKER, merged_entries, ship_unit
from imgbuild.engine.units import Layer, Unit


def _tree(root, files):
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_later_layers_win_and_exclude_and_prefix(tmp_path):
    a = _tree(tmp_path / "a", {"etc/x.conf": "a", "registry/docker/blob": "r", "bin/tool": "t"})
    b = _tree(tmp_path / "b", {"etc/x.conf": "rendered"})
    c = _tree(tmp_path / "c", {"docker/app-blob": "app"})
    entries = merged_entries((Layer(a, "", ("registry",)), Layer(b), Layer(c, "registry")))
    assert entries["etc/x.conf"] == b / "etc/x.conf"
    assert "registry/docker/blob" not in entries and entries["registry/docker/app-blob"] == c / "docker/app-blob"
    assert entries["bin/tool"] == a / "bin/tool"


def test_ship_swaps_tree_whole_and_keeps_modes(tmp_path):
    a = _tree(tmp_path / "a", {"scripts/init.sh": "echo hi", "etc/old": "x"})
    os.chmod(a / "scripts/init.sh", 0o755)
    os.symlink("scripts/init.sh", a / "link")
    dest = tmp_path / "host" / "rootfs"
    sent = []
    ship_unit(LocalExecutor(), Unit("rootfs", str(dest), (Layer(a),), "k1"), sent.append)
    assert (dest / "scripts/init.sh").read_text() == "echo hi" and os.access(dest / "scripts/init.sh", os.X_OK)
    assert os.readlink(dest / "link") == "scripts/init.sh" and (dest / MARKER).read_text() == "k1\n" and sum(sent) > 0
    (a / "etc/old").unlink()
    ship_unit(LocalExecutor(), Unit("rootfs", str(dest), (Layer(a),), "k2"))
    assert not (dest / "etc/old").exists() and (dest / MARKER).read_text() == "k2\n"
    assert sorted(os.listdir(dest.parent)) == ["rootfs"]
