"""Lifecycle shell text: labels as sealos runs them, CMDs, the /etc/hosts block kept apart from the rest."""

import subprocess

from imgbuild.engine.lifecycle import (cmd_command, hosts_block_command, hosts_unblock_command, lifecycle_command,
                                       remove_paths_command)


def _expand(env):
    def expand(text):
        for k, v in env.items():
            text = text.replace(f"$({k})", v)
        return text
    return expand


def test_label_runs_with_bash_in_scripts_dir_expanded():
    cmd = lifecycle_command({"init": "init.sh $(registryDomain)"}, "init", "/r", [], _expand({"registryDomain": "hub"}))
    assert cmd == "cd /r/scripts && bash init.sh hub"


def test_script_without_label_falls_back_and_absent_is_none():
    assert lifecycle_command({}, "clean", "/r", ["clean.sh"], str) == "cd /r/scripts && bash clean.sh"
    assert lifecycle_command({}, "join-node", "/r", ["clean.sh"], str) is None


def test_cmd_shell_form_and_argv_form():
    assert cmd_command(["kubectl apply -f $(dir)"], [], "/w", _expand({"dir": "m"})) == "cd /w && kubectl apply -f m"
    assert cmd_command(["a b", "c"], ["sh"], "/w", str) == "cd /w && sh 'a b' c"
    assert cmd_command([], [], "/w", str) is None


def _apply(script, path):
    subprocess.run(["sh", "-c", script.replace("/etc/hosts", str(path))], check=True)


def test_hosts_block_replaced_then_removed_leaving_file_as_before(tmp_path):
    hosts = tmp_path / "hosts"
    original = "127.0.0.1 localhost\n10.9.9.9 keep-me\n"
    hosts.write_text(original)
    _apply(hosts_block_command("c1", [("10.0.0.2", "sealos.hub")]), hosts)
    _apply(hosts_block_command("c1", [("10.0.0.3", "sealos.hub")]), hosts)
    _apply(hosts_block_command("c2", [("10.0.0.4", "other.hub")]), hosts)
    text = hosts.read_text()
    assert "10.0.0.2" not in text and text.count("10.0.0.3 sealos.hub") == 1 and "keep-me" in text
    _apply(hosts_unblock_command("c1"), hosts)
    _apply(hosts_unblock_command("c2"), hosts)
    _apply(hosts_unblock_command("c2"), hosts)
    assert hosts.read_text() == original


def test_remove_paths_removes_empty_parents_only(tmp_path):
    (tmp_path / "data" / "c1" / "rootfs").mkdir(parents=True)
    (tmp_path / "data" / "c2").mkdir(parents=True)
    subprocess.run(["sh", "-c", remove_paths_command([str(tmp_path / "data" / "c1")])], check=True)
    assert not (tmp_path / "data" / "c1").exists() and (tmp_path / "data" / "c2").exists()
