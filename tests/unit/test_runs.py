"""The run side's one-call verbs (imgbuild.runs): options from flag-like values, errors before any host is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild import runs
from imgbuild.errors import InputError
from imgbuild.home import Home


def test_options_parse_env_items_or_a_mapping_and_check_distribute():
    opts = runs.options(env=["A=1", "B=x y=z"], distribute="registry", dry_run=True)
    assert dict(opts.cli_env) == {"A": "1", "B": "x y=z"} and opts.distribute == "registry" and opts.dry_run
    assert dict(runs.options(env={"C": "3"}).cli_env) == {"C": "3"}
    assert runs.options().data_dir == "/var/lib/sealos/data" and runs.options().distribute is None
    with pytest.raises(InputError, match="not KEY=VALUE") as info:
        runs.options(env=["novalue"])
    assert info.value.where == "-e"
    with pytest.raises(InputError, match="ssh or registry"):
        runs.options(distribute="rsync")


def test_verbs_on_a_cluster_that_does_not_exist_say_so(tmp_path: Path):
    home = Home(tmp_path / "home").ensure()
    assert runs.clusters(home=home) == []
    for call in (lambda: runs.status("nope", home=home),
                 lambda: runs.add(home=home, nodes="127.0.2.9", cluster="nope"),
                 lambda: runs.delete(home=home, nodes="127.0.2.9", cluster="nope"),
                 lambda: runs.hosts("nope", home=home),
                 lambda: runs.execute("true", home=home, cluster="nope"),
                 lambda: runs.scp(tmp_path, "/tmp/x", home=home, cluster="nope")):
        with pytest.raises(InputError, match="no cluster named 'nope'"):
            call()


def test_scp_checks_its_paths_before_the_cluster(tmp_path: Path):
    home = Home(tmp_path / "home").ensure()
    with pytest.raises(InputError, match="does not exist"):
        runs.scp(tmp_path / "missing", "/tmp/x", home=home, cluster="nope")
    with pytest.raises(InputError, match="absolute path"):
        runs.scp(tmp_path, "relative/dir", home=home, cluster="nope")


def test_a_command_refused_before_any_step_leaves_no_log_behind(imgbuild_home, capsys):
    from imgbuild.cli.main import run as cli

    assert cli(["add", "--nodes", "127.0.2.9", "--cluster", "nope"]) == 2
    assert cli(["run", "localhost/x:v1", "--masters", "not-an-address", "--cluster", "bad"]) == 2
    err = capsys.readouterr().err
    assert "no cluster named 'nope'" in err and "Traceback" not in err
    assert not (imgbuild_home / "clusters" / "nope").exists() and not (imgbuild_home / "clusters" / "bad").exists()
