"""anbench compile --target zcu102|vck190|... with the faked Vitis AI: the quantizer's order,
the DPU-subgraph verdict, the cache, the SE refusal; then measure on the board and export."""

from __future__ import annotations

import json

import pytest

from anbench.errors import AnbenchError
from anbench.searchspace import named
from anbench.store import Store
from anbench_fpga_dpu import compiler as compiler_module
from anbench_fpga_dpu.compiler import VitisAiCompiler, parse_settings
from anbench_fpga_dpu.quantize import quantizer_kwargs


def compiles(store_path, target):
    with Store.open(store_path) as store:
        return store.results(stage="compile", target=target)


@pytest.mark.slow
def test_compile_then_measure_on_board_then_export(vitis, run_cli, tmp_path, monkeypatch):
    art = tmp_path / "artifacts"
    result = run_cli("compile", "--target", "zcu102", "--arch", "zcu102-a", "--workdir", art,
                     "--setting", "calib_images=3", "--format", "json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)[0]
    assert row["verdict"] == "VALID" and row["artifact"].endswith(f"anb_{named('zcu102-a').id}_zcu102.xmodel")
    (stored,) = compiles(tmp_path / "anbench.db", "zcu102")
    m = stored.metrics
    assert (m["dpu_subgraphs"], m["dpu_target"], m["calib_images"]) == (1, "DPUCZDX8G_ISA1_B4096", 3)
    assert m["quantizer_version"] == "3.0.0+fake" and m["compiler_version"] == "vai_c_xir 3.0.0 (fake)"
    assert m["dpu_fingerprint"] == stored.metrics["fingerprint"]["dpu_fingerprint"]  # read back with xir
    assert m["dpu_fingerprint"].startswith("0x")
    assert stored.settings == {"compiler": "vitis-ai", "calib_images": "3"}

    # cached by (arch, weights, versions, target, settings): another store, same workdir, no quantizer run
    monkeypatch.setattr(compiler_module, "quantize", lambda *a, **k: pytest.fail("rebuilt a cached artifact"))
    again = run_cli("compile", "--target", "zcu102", "--arch", "zcu102-a", "--workdir", art,
                    "--setting", "calib_images=3", "--format", "json", store=tmp_path / "other.db")
    assert json.loads(again.output)[0]["artifact"] == row["artifact"]

    import vart

    from anbench_fpga_dpu import board_runner

    # the simulated DPU's clock (one thread: exact on any host load), 4 ms a job
    monkeypatch.setenv("FAKE_VART_CLOCK", "virtual")
    monkeypatch.setattr(board_runner, "clock", vart.clock)
    monkeypatch.setenv("FAKE_VART_JOB_MS", "4")
    measured = run_cli("measure", "--device", "zcu102", "--arch", "zcu102-a", "--on-board",
                       "--option", "budget_s=0.5", "--option", "threads=1", "--format", "json")
    assert measured.exit_code == 0, measured.output
    out = tmp_path / "anb"
    assert run_cli("export", "--format", "anb-json", "--out", out).exit_code == 0
    perf = json.loads(next(out.glob("result_*.json")).read_text())["platform_perf"]
    assert perf["latency_zcu102"]["latency_mean"] == pytest.approx(4.0, rel=0.05)
    assert perf["throughput_zcu102"]["throughput_mean"] == pytest.approx(1 / 0.004, rel=0.05)
    assert perf["latency_vck190"]["latency_mean"] is None


@pytest.mark.slow
def test_cpu_fallback_is_stored_invalid_and_never_measured(vitis, run_cli, tmp_path):
    result = run_cli("compile", "--target", "zcu102", "--arch", "zcu102-a", "--workdir", tmp_path / "a",
                     "--arch-json", vitis.arch_json("DPUCAHX8H/U50"), "--setting", "calib_images=1")
    assert result.exit_code == 0, result.output
    (stored,) = compiles(tmp_path / "anbench.db", "zcu102")
    # zcu102-a has squeeze-excite in its 3 last-block layers: each gate splits the DPU graph
    assert stored.metrics["verdict"] == "INVALID" and stored.metrics["dpu_subgraphs"] == 4
    assert stored.metrics["reason"] == ("4 DPU subgraphs instead of 1: part of the network runs on the CPU "
                                        "(on the CPU: hard-sigmoid)")
    assert stored.settings["arch_json"] == str(vitis.arch_json("DPUCAHX8H/U50"))
    measured = run_cli("measure", "--device", "zcu102", "--arch", "zcu102-a", "--on-board")
    assert measured.exit_code == 2
    assert "no compiled xmodel" in measured.output and "anbench compile --target zcu102" in measured.output


def test_targets_without_hard_sigmoid_refuse_se_architectures_up_front(vitis, run_cli, tmp_path):
    result = run_cli("compile", "--target", "u280", "--arch", "zcu102-c", "--arch", "zcu102-a", "--workdir", tmp_path)
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "anbench sample --no-se" in result.output and "hard-sigmoid" in result.output
    assert compiles(tmp_path / "anbench.db", "u280") == []  # refused before compiling the SE-free one
    assert VitisAiCompiler().refusal(named("zcu102-c"), "u50") is None
    assert VitisAiCompiler().refusal(named("zcu102-a"), "vck190") is None


def test_quantizer_arguments_follow_the_installed_signature():
    def old(quant_mode, module, input_args=None, state_dict_file=None, output_dir="quantize_result", device=None):
        pass

    def open_ended(quant_mode, module, **kwargs):
        pass

    wanted = {"output_dir": "q", "device": "cpu", "target": "DPUCZDX8G_ISA1_B4096"}
    assert quantizer_kwargs(old, wanted) == {"output_dir": "q", "device": "cpu"}
    assert quantizer_kwargs(open_ended, wanted) == wanted


def test_compile_settings_are_checked():
    arch_json, q = parse_settings({"calib_images": "20", "weights": "random", "deploy_check": "true"})
    assert arch_json is None and (q.calib_images, q.deploy_check, q.eval_images) == (20, True, 100)
    with pytest.raises(AnbenchError, match="unknown vitis-ai compile setting"):
        parse_settings({"calib": "3"})
    with pytest.raises(AnbenchError, match="calib_images='many' must be a positive integer"):
        parse_settings({"calib_images": "many"})


@pytest.mark.slow
def test_weights_and_dataset_settings(vitis, tmp_path):
    import numpy as np
    import torch

    from anbench.models.accelnet import build_model
    from anbench.plugin_types import CompileRequest

    arch = named("zcu102-c")
    ckpt = tmp_path / "f_model.pth"
    torch.save({f"module.{k}": v for k, v in build_model(arch, mode="deploy").state_dict().items()}, ckpt)
    data = tmp_path / "val.npz"
    np.savez(data, images=np.random.default_rng(0).standard_normal((6, 3, 224, 224), dtype=np.float32),
             labels=np.arange(6))
    settings = {"weights": str(ckpt), "dataset": str(data), "calib_images": "2", "eval_images": "3"}
    artifact = VitisAiCompiler().compile(CompileRequest(arch, "vck190", tmp_path / "w", settings))
    assert artifact.metrics["verdict"] == "VALID" and artifact.metrics["eval_images"] == 3
    assert 0 <= artifact.metrics["quant_top1"] <= artifact.metrics["quant_top5"] <= 100
    with pytest.raises(AnbenchError, match="weights file not found"):
        VitisAiCompiler().compile(CompileRequest(arch, "vck190", tmp_path / "w", {"weights": str(tmp_path / "no")}))
