"""Phases over fake hosts: order, keys that make a re-run a no-op, dry-run touching nothing, typed failures."""

import pytest

from imgbuild.engine.context import HostRun, ImageRun, Ledger, Options, PhaseFailed, RunContext
from imgbuild.engine import phases
from imgbuild.engine.exec import FakeExecutor, Result
from imgbuild.engine.report import RecordingReporter


class MemState:
    def __init__(self):
        self.done = {}
        self.saves = 0

    def is_done(self, host, key):
        return key in self.done.get(host, set())

    def mark_done(self, host, key):
        self.done.setdefault(host, set()).add(key)


def _ctx(state, dry_run=False, fail_on=None):
    hosts = []
    for i, roles in enumerate([("master",), ("master",), ("node",)]):
        ex = FakeExecutor(host=f"10.0.0.{i + 2}", default=Result((), "", "", 0))
        if fail_on == i:
            ex.expect("*init.sh*", stderr="boom", exit_code=3)
        hosts.append(HostRun(f"10.0.0.{i + 2}", 22, roles, {"registryDomain": "sealos.hub"}, ex))
    image = ImageRun("etcd:v1", "sha256:aa", "id1", "rootfs", {"init": "init.sh", "join-master": "join.sh"},
                     {}, ("echo hi",), (), "/", "amd64", "etcd", scripts=("check.sh", "clean.sh"))
    app = ImageRun("app:v1", "sha256:bb", "id2", "application", {}, {}, ("run.sh",), (), "/", "amd64", "app")

    def save():
        state.saves += 1

    ctx = RunContext("c1", hosts, [image, app], Ledger(state, save), Options(dry_run=dry_run),
                     RecordingReporter())
    ctx.extra["expander"] = lambda env: (lambda text: text)
    return ctx


def _run(ctx):
    for ph in (phases.registry, phases.init, phases.join, phases.guest):
        ph(ctx)


def test_order_and_rerun_is_a_noop():
    state = MemState()
    ctx = _ctx(state)
    _run(ctx)
    m0, m1, n1 = (h.executor for h in ctx.hosts)
    m0_cmds = [c[-1] for c in m0.calls]
    assert any("bash check.sh" in c for c in m0_cmds) and any("bash init.sh" in c for c in m0_cmds)
    assert any("bash join.sh" in c[-1] for c in m1.calls) and not any("join.sh" in c for c in m0_cmds)
    assert any("run.sh" in c for c in m0_cmds) and not any("run.sh" in c[-1] for c in n1.calls)
    assert m0_cmds.index(next(c for c in m0_cmds if "check.sh" in c)) < m0_cmds.index(
        next(c for c in m0_cmds if "init.sh" in c))
    assert state.saves >= 8
    again = _ctx(state)
    _run(again)
    assert all(not h.executor.calls for h in again.hosts)


def test_changed_env_reruns_only_that_hosts_env_steps():
    state = MemState()
    _run(_ctx(state))
    ctx = _ctx(state)
    ctx.hosts[2].env["x"] = "changed"
    _run(ctx)
    assert not ctx.hosts[0].executor.calls and not ctx.hosts[1].executor.calls
    assert any("init.sh" in c[-1] for c in ctx.hosts[2].executor.calls)


def test_dry_run_lists_steps_and_touches_nothing():
    state = MemState()
    ctx = _ctx(state, dry_run=True)
    _run(ctx)
    assert all(not h.executor.calls for h in ctx.hosts) and state.saves == 0
    whats = [(p.phase, p.host, p.what) for p in ctx.planned]
    assert ("Init", "10.0.0.2", "init of etcd:v1") in whats
    assert ("Join", "10.0.0.3", "join-master of etcd:v1") in whats
    assert ("Guest", "10.0.0.2", "CMD of app:v1") in whats


def test_failure_names_phase_and_host_and_others_finish():
    state = MemState()
    ctx = _ctx(state, fail_on=2)
    with pytest.raises(PhaseFailed) as info:
        _run(ctx)
    assert info.value.phase == "Init" and "10.0.0.4" in str(info.value) and info.value.exit_code == 1
    assert state.is_done("10.0.0.3", "init@sha256:aa@" + next(
        k.split("@")[2] for k in state.done["10.0.0.3"] if k.startswith("init@")))


def test_sealer_cmds_and_launch_run_on_master0_in_their_dirs():
    state = MemState()
    ctx = _ctx(state)
    sealer = ImageRun("sealer:v1", "sha256:cc", "id3", "application",
                      {"io.imgbuild.cmds": '["kubectl get nodes"]', "io.imgbuild.launch": '["redis", "web"]',
                       "io.imgbuild.app.redis.cmds": '["helm install redis ."]'}, {}, (), (), "/", "amd64", "sealer")
    ctx.images = [ctx.images[0], sealer]
    phases.guest(ctx)
    m0 = [c[-1] for c in ctx.hosts[0].executor.calls]
    app = "/var/lib/sealos/data/c1/applications/sealer/workdir"
    assert f"cd {app} && kubectl get nodes" in m0
    assert f"cd {app}/application/apps/redis && helm install redis ." in m0
    assert any(c.startswith(f"cd {app}/application/apps/web && if [ -e Chart.yaml ]") for c in m0)
    assert not any("kubectl" in c[-1] for c in ctx.hosts[1].executor.calls)
