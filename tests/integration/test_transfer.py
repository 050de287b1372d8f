"""Trees to hosts over a real sshd on loopback: full, unchanged, delta, zstd, a host killed mid-stream."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from imgbuild.engine.exec import LocalExecutor
from imgbuild.engine.ssh import SSHPool, SSHTarget
from imgbuild.engine.transfer import MARKER, Job, distribute, raise_failures
from imgbuild.errors import HostUnreachable
from tests.integration.ssh_support import start_sshd

pytestmark = [pytest.mark.ssh, pytest.mark.root]


def make_tree(root: Path) -> Path:
    """A small image-like tree: nested dirs, modes, a symlink, an empty file, fixed mtimes as images have."""
    (root / "etc/kubernetes").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "etc/kubernetes/admin.conf").write_text("apiVersion: v1\n")
    (root / "bin/tool").write_bytes(os.urandom(300_000))
    (root / "bin/tool").chmod(0o755)
    (root / "empty").write_bytes(b"")
    (root / "secret").write_text("s")
    (root / "secret").chmod(0o600)
    os.symlink("bin/tool", root / "tool-link")
    os.chown(root / "secret", 1234, 5678)
    for p in root.rglob("*"):
        os.utime(p, (0, 0), follow_symlinks=False)
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything a transfer must reproduce, per path (the marker left out)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if rel == MARKER:
            continue
        st = p.lstat()
        if p.is_symlink():
            out[rel] = ("l", os.readlink(p))
        elif p.is_dir():
            out[rel] = ("d", st.st_mode, st.st_uid, st.st_gid)
        else:
            out[rel] = ("f", st.st_mode, st.st_uid, st.st_gid, int(st.st_mtime),
                        hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@pytest.fixture
def hosts(tmp_path: Path, request):
    """Two loopback 'hosts' (one sshd, two ports) and a pool; each job gets its own destination dir."""
    server = start_sshd(tmp_path / "sshd", 2)
    try:
        with SSHPool(known_hosts=tmp_path / "known_hosts", openssh=getattr(request, "param", None)) as pool:
            yield server, [pool.executor(SSHTarget("127.0.0.1", p, key_file=str(server.key_file)))
                           for p in server.ports]
    finally:
        server.stop()


@pytest.mark.parametrize("hosts", [True, False], ids=["openssh", "asyncssh"], indirect=True)
def test_full_then_unchanged_then_delta(tmp_path, hosts):
    _, exs = hosts
    src = make_tree(tmp_path / "src")
    jobs = [Job(ex, src, str(tmp_path / f"dest{i}" / "rootfs")) for i, ex in enumerate(exs)]
    first = distribute(jobs)
    raise_failures(first)
    for job, res in zip(jobs, first):
        assert snapshot(Path(job.dest)) == snapshot(src)
        assert res.digest and res.sent_files == len(snapshot(src)) and not res.unchanged
    again = distribute(jobs)
    assert all(r.unchanged and r.bytes == 0 and r.digest == first[0].digest for r in again)

    (src / "bin/tool").write_bytes(os.urandom(300_000))  # same size, mtime reset: only content tells
    os.utime(src / "bin/tool", (0, 0))
    (src / "empty").unlink()
    (src / "etc/kubernetes").rename(src / "etc/k8s")
    (src / "secret").chmod(0o640)
    (src / "new").write_text("new file")
    changed = distribute(jobs)
    raise_failures(changed)
    for job, res in zip(jobs, changed):
        assert snapshot(Path(job.dest)) == snapshot(src)
        assert res.sent_files == 5  # tool, secret, new, etc/k8s and its file
        assert res.removed == 2  # empty, etc/kubernetes (its file goes with it)
        assert res.bytes < 400_000 and res.digest != first[0].digest
    assert not any(p.name.endswith((".imgbuild-new", ".imgbuild-old")) for p in tmp_path.glob("dest*/*"))


def test_unchanged_tree_remounted_is_not_resent(tmp_path, hosts):
    _, exs = hosts
    src = make_tree(tmp_path / "src")
    dest = str(tmp_path / "dest")
    first = distribute([Job(exs[0], src, dest)])[0]
    copy = tmp_path / "remounted"  # same content, new inodes and ctimes: hashed, found equal, not sent
    os.system(f"cp -a {src} {copy}")
    res = distribute([Job(exs[0], copy, dest)])[0]
    assert res.unchanged and res.bytes == 0 and res.digest == first.digest


def test_layers_merge_and_zstd_and_a_local_host(tmp_path, hosts):
    _, exs = hosts
    base = make_tree(tmp_path / "base")
    over = tmp_path / "over"
    (over / "bin").mkdir(parents=True)
    (over / "bin/tool").write_text("replaced")
    (over / "etc").write_text("a file hides the directory")

    class L:
        def __init__(self, path, prefix="", exclude=()):
            self.path, self.prefix, self.exclude = path, prefix, exclude

    layers = [L(base, exclude=("secret",)), L(over), L(base / "bin", "registry/bin")]
    ssh_dest, local_dest = tmp_path / "a", tmp_path / "b"
    res = distribute([Job(exs[0], layers, str(ssh_dest)), Job(LocalExecutor(), layers, str(local_dest))],
                     compress=True)
    raise_failures(res)
    assert res[0].compressed and res[1].compressed
    got = snapshot(ssh_dest)
    assert got == snapshot(local_dest)
    assert (ssh_dest / "bin/tool").read_text() == "replaced" and (ssh_dest / "etc").is_file()
    assert "secret" not in got and "etc/kubernetes" not in got and "registry/bin/tool" in got


def test_host_killed_mid_transfer_is_named_and_a_rerun_completes_it(tmp_path):
    src = tmp_path / "big"
    src.mkdir()
    for i in range(12):
        (src / f"blob{i}").write_bytes(os.urandom(4 << 20))
    servers = [start_sshd(tmp_path / f"h{i}") for i in range(3)]
    try:
        with SSHPool(known_hosts=tmp_path / "kh") as pool:
            exs = [pool.executor(SSHTarget("127.0.0.1", s.port, key_file=str(s.key_file))) for s in servers]
            jobs = [Job(ex, src, str(tmp_path / f"d{i}")) for i, ex in enumerate(exs)]

            class Killer:
                """Kills host 1's connections once it has received 8 MiB."""

                seen = 0

                def started(self, label, total):
                    pass

                def advanced(self, label, n):
                    if label == exs[1].host:
                        Killer.seen += n
                        if Killer.seen >= 8 << 20 and Killer.seen - n < 8 << 20:
                            threading.Thread(target=servers[1].kill_connections).start()
                            time.sleep(0.5)

                def finished(self, label, note):
                    pass

            results = distribute(jobs, progress=Killer())
            assert results[0].ok and results[2].ok and not results[1].ok
            assert isinstance(results[1].error, HostUnreachable)
            assert servers[1].ports[0] and f"127.0.0.1:{servers[1].port}" in str(results[1].error)
            assert not (tmp_path / "d1").exists()  # nothing half-written in place
            rerun = distribute(jobs)
            assert [r.unchanged for r in rerun] == [True, False, True] and all(r.ok for r in rerun)
            assert snapshot(tmp_path / "d1") == snapshot(src)
    finally:
        for s in servers:
            s.stop()


def test_a_single_file_and_a_foreign_destination(tmp_path, hosts):
    _, exs = hosts
    f = tmp_path / "kubeadm.yaml"
    f.write_text("kind: InitConfiguration\n")
    f.chmod(0o640)
    dest = tmp_path / "etc" / "kubeadm.yaml"
    first = distribute([Job(exs[0], f, str(dest))])[0]
    assert first.ok and first.sent_files == 1 and dest.read_text() == f.read_text()
    assert oct(dest.stat().st_mode & 0o777) == "0o640"
    again = distribute([Job(exs[0], f, str(dest))])[0]
    assert again.unchanged and again.bytes == 0 and again.digest == first.digest

    src = make_tree(tmp_path / "src")
    users = tmp_path / "users-dir"
    users.mkdir()
    (users / "keep-me").write_text("not imgbuild's")
    refused = distribute([Job(exs[0], src, str(users))], replace=False)[0]
    assert not refused.ok and "not written by imgbuild" in str(refused.error)
    assert (users / "keep-me").exists()


@pytest.mark.parametrize("hosts", [True, False], ids=["openssh", "asyncssh"], indirect=True)
def test_a_tree_changing_while_sent_fails_with_that_error(tmp_path, hosts, monkeypatch):
    _, exs = hosts
    src = make_tree(tmp_path / "src")
    from imgbuild.engine import _tarsend

    real = _tarsend._content

    def grows(rel, e, cache):
        if rel == "bin/tool":
            (src / "bin/tool").write_bytes(os.urandom(400_000))
        yield from real(rel, e, cache)

    monkeypatch.setattr(_tarsend, "_content", grows)
    res = distribute([Job(exs[0], src, str(tmp_path / "dest"))])[0]
    assert not res.ok and "changed size while it was being sent" in str(res.error)
    assert not (tmp_path / "dest").exists()


def test_ctrl_c_stops_every_stream_and_leaves_the_old_trees(tmp_path, hosts):
    import signal

    _, exs = hosts
    src = tmp_path / "big"
    src.mkdir()
    for i in range(40):
        (src / f"blob{i}").write_bytes(os.urandom(4 << 20))

    class Slow:
        def started(self, label, total):
            pass

        def advanced(self, label, n):
            time.sleep(0.05 * max(1.0, n / (1 << 20)))  # 20 MB/s whatever the chunk size: the send takes ~8 s

        def finished(self, label, note):
            pass

    threading.Timer(1.5, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)).start()
    begin = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        distribute([Job(ex, src, str(tmp_path / f"d{i}")) for i, ex in enumerate(exs)], progress=Slow())
    assert time.monotonic() - begin < 6
    time.sleep(1)
    assert not (tmp_path / "d0").exists() and not (tmp_path / "d1").exists()
