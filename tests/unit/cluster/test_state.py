"""Cluster state: saved 0600 and atomically, comments of the applied Clusterfile kept, readable after kill -9."""

from __future__ import annotations

import os
import random
import signal
import stat
import time
from pathlib import Path

import pytest

from imgbuild.cluster import ClusterState, load_clusterfile
from imgbuild.cluster.state import PHASE_SUCCESS, ImageRecord
from imgbuild.home import Home

CORPUS = Path(__file__).resolve().parents[2] / "data" / "clusterfiles" / "valid"


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home").ensure()


def _state() -> ClusterState:
    state = ClusterState.new(load_clusterfile(CORPUS / "apply-doc.yaml"))
    state.created = "2024-05-01T12:00:00Z"
    state.phase = PHASE_SUCCESS
    state.cli_env = {"registryPassword": "cli-secret", "a": "b"}
    state.distribute = "registry"
    state.images["labring/kubernetes:v1.25.0"] = ImageRecord("sha256:" + "a" * 64, "rootfs")
    host = state.host("127.0.2.2")
    host.arch, host.hostname = "amd64", "m0"
    host.holds["labring/kubernetes:v1.25.0"] = {"manifest": "sha256:" + "a" * 64, "transfer": "sha256:" + "b" * 64}
    host.rendered["etc/kubeadm.yaml"] = "c" * 64
    state.mark_done("127.0.2.2", "init@sha256:" + "a" * 64)
    state.set_condition("ApplyClusterSuccess", "True", "Ready", "Applied to cluster successfully")
    return state


def test_save_and_load_round_trip(home: Home) -> None:
    state = _state()
    path = state.save(home)
    assert path == home.cluster_dir("default") / "Clusterfile"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    back = ClusterState.load(home, "default")
    assert back.dump() == state.dump()
    assert (back.phase, back.conditions, back.created, back.cli_env, back.images, back.hosts, back.distribute) == \
        (state.phase, state.conditions, state.created, state.cli_env, state.images, state.hosts, "registry")
    assert back.is_done("127.0.2.2", "init@sha256:" + "a" * 64) and not back.is_done("127.0.2.3", "init@x")
    assert back.cluster.ssh.passwd == "xxx"  # secrets stay in the 0600 file


def test_the_state_file_keeps_the_users_comments(home: Home) -> None:
    path = _state().save(home)
    text = path.read_text()
    assert text.startswith((CORPUS / "apply-doc.yaml").read_text())
    assert "# 服务器 IP 地址列表和角色" in text


def test_save_removes_temp_files_a_killed_save_left(home: Home) -> None:
    path = _state().save(home)
    stale, fresh = path.parent / ".Clusterfile.abc.tmp", path.parent / ".Clusterfile.def.tmp"
    stale.write_text("half")
    fresh.write_text("being written")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    _state().save(home)
    assert not stale.exists() and fresh.exists()


def test_load_of_a_missing_state_is_none(home: Home) -> None:
    assert ClusterState.load(home, "nothing") is None


def test_sealos_written_state_counts_as_created() -> None:
    state = ClusterState.from_text((CORPUS / "status-by-sealos.yaml").read_text())
    assert state.created == "2023-03-14T08:21:37Z" and state.phase == PHASE_SUCCESS
    assert state.cluster.status.extra["mounts"][0]["type"] == "rootfs"
    assert "mounts:" in state.dump()


def test_condition_update_replaces_the_same_type() -> None:
    state = _state()
    state.set_condition("ApplyClusterSuccess", "False", "Apply Cluster", "boom")
    assert [(c.type, c.status, c.message) for c in state.conditions] == [("ApplyClusterSuccess", "False", "boom")]
    assert state.conditions[0].time.endswith("Z")


def test_masked_view_hides_every_secret() -> None:
    shown = str(_state().masked())
    assert "xxx" not in shown and "cli-secret" not in shown and "******" in shown


def test_copy_is_independent() -> None:
    state = _state()
    other = state.copy()
    other.mark_done("127.0.2.2", "new")
    other.forget_host("127.0.2.2")
    assert state.is_done("127.0.2.2", "init@sha256:" + "a" * 64) and not state.is_done("127.0.2.2", "new")


def test_malformed_facts_are_a_clusterfile_error() -> None:
    from imgbuild.errors import ClusterfileError

    text = (CORPUS / "apply-doc.yaml").read_text() + "status:\n  imgbuild:\n    hosts: [1, 2]\n"
    with pytest.raises(ClusterfileError, match="hosts must be a mapping"):
        ClusterState.from_text(text)


def _save_forever(home: Home, ready: int) -> None:
    """The child: save ever-growing state as fast as possible (it only ends by SIGKILL)."""
    try:
        state = ClusterState.new(load_clusterfile(CORPUS / "apply-doc.yaml"))
        for i in range(1, 1 << 30):
            state.mark_done("127.0.2.2", f"step-{i}")
            state.host(f"127.0.3.{i % 250}").rendered[f"f{i}"] = "0" * 64
            state.save(home)
            if i == 1:
                os.write(ready, b"x")
    finally:
        os._exit(1)


def test_readable_after_kill_9_at_any_point(home: Home) -> None:
    """A writer saving as fast as it can is killed 25 times at random moments; the file always loads."""
    for _ in range(25):
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            _save_forever(home, ready_w)
        try:
            assert os.read(ready_r, 1) == b"x"
            time.sleep(random.uniform(0, 0.05))
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(ready_r)
            os.close(ready_w)
        state = ClusterState.load(home, "default")
        assert state is not None and state.hosts["127.0.2.2"].done
        leftovers = [p.name for p in home.cluster_dir("default").iterdir() if p.name != "Clusterfile"]
        assert all(name.startswith(".Clusterfile.") for name in leftovers)  # only a temp file may be left
