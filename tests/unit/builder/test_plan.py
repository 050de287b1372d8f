"""BuildPlan: backend choice, early source checks, config semantics, sealer labels, platform args."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgbuild.builder.plan import build_epoch, detect_type, make_plan, rfc3339, role_of
from imgbuild.errors import ContextError, InputError, KubefileError
from imgbuild.oci.model import Platform

ROOT = Path(__file__).resolve().parents[3]


def _ctx(tmp_path: Path, kubefile: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "Kubefile").write_text(kubefile)
    for rel, content in (files or {}).items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return tmp_path


def _config(tmp_path: Path, body: str) -> dict:
    return make_plan(_ctx(tmp_path, "FROM scratch\n" + body)).stages[-1].config.get("config", {})


def test_steps_are_numbered_across_stages_and_rendered() -> None:
    plan = make_plan(ROOT / "kubefiles" / "multistage")
    assert [s.number for st in plan.stages for s in st.steps] == list(range(1, 7))
    assert plan.stages[1].steps[-1].text == "COPY --from=gather /out /payload"
    assert plan.backend == "native"
    lines = plan.render()
    assert "  STEP 6/6: COPY --from=gather /out /payload" in lines
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["stages"][0]["name"] == "gather" and data["created"] == "1970-01-01T00:00:00Z"


def test_run_selects_buildah_and_native_refuses_it(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM scratch\nCOPY a /a\nRUN echo hi\n", {"a": "x"})
    assert make_plan(ctx).backend == "buildah"
    with pytest.raises(KubefileError) as info:
        make_plan(ctx, backend="native")
    assert info.value.where == "Kubefile:3"
    with pytest.raises(InputError, match="unknown backend"):
        make_plan(ctx, backend="docker")


def test_missing_or_escaping_sources_fail_at_their_line(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM scratch\nCOPY present /p\nCOPY missing /m\n", {"present": ""})
    with pytest.raises(ContextError) as info:
        make_plan(ctx)
    assert info.value.where == "Kubefile:3"
    (tmp_path / "Kubefile").write_text("FROM scratch\n\nCOPY ../x /x\n")
    with pytest.raises(ContextError, match="outside") as info:
        make_plan(ctx)
    assert info.value.where == "Kubefile:3"
    (tmp_path / "Kubefile").write_text("FROM scratch\nAPP a local://nope.yaml\n")
    with pytest.raises(ContextError) as info:
        make_plan(ctx)
    assert info.value.where == "Kubefile:2"


def test_config_semantics_match_docker(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "CMD echo a\nENTRYPOINT [\"/e\"]\nWORKDIR /a\nWORKDIR b/../c\nEXPOSE 80 53/UDP\n"
                  "ENV A=1 B=2\nENV A=3\nUSER app\nVOLUME /v /w\nSTOPSIGNAL 9\n"
                  "HEALTHCHECK --interval=1m30s --retries=3 CMD curl -f http://x/\n")
    assert cfg["Cmd"] == ["/bin/sh", "-c", "echo a"]  # set in this stage: ENTRYPOINT keeps it
    assert cfg["Entrypoint"] == ["/e"]
    assert cfg["WorkingDir"] == "/a/c"
    assert cfg["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}}
    assert cfg["Env"] == ["B=2", "A=3"]
    assert cfg["User"] == "app" and cfg["Volumes"] == {"/v": {}, "/w": {}} and cfg["StopSignal"] == "9"
    assert cfg["Healthcheck"]["Interval"] == 90 * 10**9 and cfg["Healthcheck"]["Retries"] == 3
    assert cfg["Healthcheck"]["Test"][0] == "CMD-SHELL"


def test_cmd_after_entrypoint_is_kept_and_shell_form_uses_shell(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "ENTRYPOINT [\"/e\"]\nSHELL [\"/bin/bash\", \"-c\"]\nCMD run $(X)\n")
    assert cfg["Cmd"] == ["/bin/bash", "-c", "run $(X)"]


def test_sealer_instructions_become_io_imgbuild_labels() -> None:
    plan = make_plan(ROOT / "kubefiles" / "sealer-app")
    labels = plan.stages[-1].config["config"]["Labels"]
    assert json.loads(labels["io.imgbuild.apps"]) == ["greeting"]
    assert json.loads(labels["io.imgbuild.launch"]) == ["greeting"]
    assert json.loads(labels["io.imgbuild.app.greeting.cmds"]) == ["sh install.sh"]
    assert json.loads(labels["io.imgbuild.app.greeting.env"]) == {"GREETING_NS": "default"}
    assert labels["io.imgbuild.kubeversion"] == ">=v1.20.0"


def test_cni_csi_cmds_labels(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("")
    (tmp_path / "o.yaml").write_text("")
    labels = _config(tmp_path, "CNI calico local://c.yaml\nCSI openebs local://o.yaml\nCMDS [\"kubectl get po\"]\n")
    labels = labels["Labels"]
    assert labels["io.imgbuild.cni"] == "calico" and labels["io.imgbuild.csi"] == "openebs"
    assert json.loads(labels["io.imgbuild.apps"]) == ["calico", "openebs"]
    assert json.loads(labels["io.imgbuild.cmds"]) == ["kubectl get po"]


def test_platform_substitutes_arch_in_copy_sources(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM scratch\nCOPY bin/${ARCH}/tool /bin/\nCOPY bin/$TARGETARCH/tool /t/\n",
               {"bin/arm64/tool": "a", "bin/amd64/tool": "b"})
    plan = make_plan(ctx, platform=Platform.parse("linux/arm64"))
    copies = [s.instruction for s in plan.stages[0].steps[1:]]
    assert [c.sources for c in copies] == [("bin/arm64/tool",), ("bin/arm64/tool",)]


def test_target_stops_at_the_named_stage() -> None:
    plan = make_plan(ROOT / "kubefiles" / "multistage", target="gather")
    assert len(plan.stages) == 1


def test_type_role_and_epoch_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert detect_type({}, True, False) == "rootfs"
    assert detect_type({"init": "init.sh"}, False, False) == "rootfs"
    assert detect_type({"init": "init.sh"}, True, True) == "application"
    assert detect_type({"sealos.io.type": "patch"}, True, False) == "patch"
    assert detect_type({}, False, False) == "application"
    assert [role_of(p) for p in ("registry/docker", "scripts/init.sh", "application/apps/a", "bin/x", "etc")] == [
        "registry", "scripts", "application", "rootfs", "rootfs"]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert build_epoch() == 86400 and build_epoch(5) == 5
    assert rfc3339(86400) == "1970-01-02T00:00:00Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "soon")
    with pytest.raises(InputError):
        build_epoch()


def test_copy_bar_total_estimates_the_tar_size(tmp_path):
    """The build's copy bar total is the tar size the layer writer will report through on_progress."""
    import io

    from imgbuild.builder.native import _tar_size
    from imgbuild.oci.layer import Entry, write_layer

    class _P:  # the two fields _tar_size reads from a planned copy
        def __init__(self, entry, size):
            self.entry, self.stamp = entry, (0, 0, 0, 0, 0, 0, size)

    (tmp_path / "f").write_bytes(b"a" * 1000)
    planned = [_P(Entry("f", "file", source=tmp_path / "f"), 1000), _P(Entry("d", "dir", mode=0o755), 0)]
    seen: list[int] = []
    write_layer([p.entry for p in planned], io.BytesIO(), on_progress=seen.append)
    assert _tar_size(planned) == sum(seen)
