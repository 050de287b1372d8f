"""``imgbuild gen``: the Clusterfile ``run`` would apply, secrets masked on the terminal, complete in -o FILE."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import yaml

from imgbuild.cli.main import run
from imgbuild.cluster import load_clusterfile

ARGS = ["gen", "labring/kubernetes:v1.25.0", "labring/helm:v3.8.2", "--masters", "127.0.0.2,127.0.0.3:2222",
        "--nodes", "127.0.0.4-127.0.0.6", "-p", "pw-123", "-e", "registryPassword=rp", "-e", "a=b"]


def test_gen_prints_a_masked_clusterfile(capsys) -> None:
    assert run(ARGS) == 0
    out, err = capsys.readouterr()
    assert "pw-123" not in out and "rp" not in out.replace("registryPassword", "")
    assert "secrets are shown as ******" in err
    data = yaml.safe_load(out)
    assert data["spec"]["hosts"][2]["ips"] == ["127.0.0.4:22", "127.0.0.5:22", "127.0.0.6:22"]
    assert data["spec"]["ssh"] == {"passwd": "******", "port": 22, "user": "root"}


def test_gen_show_secrets_and_json(capsys) -> None:
    assert run(ARGS + ["--show-secrets"]) == 0
    out, err = capsys.readouterr()
    assert "passwd: pw-123" in out and not err
    assert run(ARGS + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "Cluster" and data["spec"]["ssh"]["passwd"] == "******"


def test_gen_output_file_is_0600_and_applies(tmp_path: Path, capsys) -> None:
    target = tmp_path / "Clusterfile"
    assert run(ARGS + ["-o", str(target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    c = load_clusterfile(target).cluster
    assert c.ssh.passwd == "pw-123" and c.env == {"registryPassword": "rp", "a": "b"}
    assert [m.endpoint for m in c.machines()][:2] == ["127.0.0.2:22", "127.0.0.3:2222"]
    assert "pw-123" not in capsys.readouterr().err


def test_gen_bad_input_exits_2(capsys) -> None:
    assert run(["gen", "labring/kubernetes:v1.25.0"]) == 2
    assert "no master given" in capsys.readouterr().err
    assert run(["gen", "x:1", "--masters", "127.0.0.2,127.0.0.999"]) == 2
    assert "'127.0.0.999' is not an IP address (--masters)" in capsys.readouterr().err
    assert run(["gen", "x:1", "--single"]) == 0
    assert "127.0.0.1:22" in capsys.readouterr().out
