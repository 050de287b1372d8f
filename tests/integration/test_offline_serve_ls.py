"""`imgbuild registry serve` runs the stock registry on a directory and stops cleanly; `ls` lists it."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from imgbuild.cli.main import run
from tests.support.local import EXEC
from imgbuild.oci.model import Platform
from imgbuild.oci.regdir import RegistryDir
from tests.support.registry import free_port
from tests.unit.oci.test_regdir import make_image

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise AssertionError("registry did not come up")


def _registry_children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def test_serve_serves_and_stops_cleanly_on_ctrl_c(tmp_path):
    rd = RegistryDir(tmp_path / "registry")
    man, _ = make_image(rd, [os.urandom(5000)])
    rd.put_manifest("library/nginx", "1.25", man.raw)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgbuild", "registry", "serve", str(rd.root), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        _wait_up(f"http://127.0.0.1:{port}/v2/", proc)
        children = _registry_children(proc.pid)
        assert len(children) == 1
        digest = EXEC.run(["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                            f"docker://127.0.0.1:{port}/library/nginx:1.25"]).stdout.strip()
        assert digest == man.digest
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("imgbuild-serve-")]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert b"registry stopped" in err and b"stopping server gracefully" in err
    assert not os.path.exists(f"/proc/{children[0]}")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("imgbuild-serve-")]


def test_serve_reports_a_busy_port(tmp_path, registry, capsys):
    port = int(registry.host.rsplit(":", 1)[1])
    code = run(["registry", "serve", str(tmp_path), "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 1 and "address already in use" in err


def test_serve_refuses_a_missing_directory(tmp_path, capsys):
    assert run(["registry", "serve", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_ls_lists_repositories_tags_and_sizes(tmp_path, capsys):
    rd = RegistryDir(tmp_path / "registry")
    base = os.urandom(3000)
    a, _ = make_image(rd, [base, b"a"])
    b, _ = make_image(rd, [base, b"b"], Platform("linux", "arm64"))
    rd.put_manifest("library/nginx", "1.25", a.raw)
    rd.put_manifest("library/nginx", "latest", a.raw)
    rd.put_manifest("team/app", "v1", b.raw)
    assert run(["registry", "ls", str(rd.root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = [(i["repository"], i["tag"], i["digest"], i["platforms"]) for i in data["images"]]
    assert rows == [("library/nginx", "1.25", a.digest, ["linux/amd64"]),
                    ("library/nginx", "latest", a.digest, ["linux/amd64"]),
                    ("team/app", "v1", b.digest, ["linux/arm64"])]
    assert data["images"][0]["size"] == a.size + sum(d.size for d in a.blobs())
    assert data["totalSize"] == rd.total_size()
    assert run(["registry", "ls", str(rd.root)]) == 0
    out, err = capsys.readouterr()
    assert "library/nginx" in out and a.digest.hex[:12] in out and "2 repositories, 3 tags" in err


def test_ls_refuses_a_directory_that_is_no_registry(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a registry")
    assert run(["registry", "ls", str(tmp_path)]) == 2
    assert "not a registry directory" in capsys.readouterr().err
    empty = tmp_path / "new"
    empty.mkdir()
    assert run(["registry", "ls", str(empty)]) == 0
