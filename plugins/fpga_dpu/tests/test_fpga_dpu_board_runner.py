"""The board runner against xir/vart stand-ins with a known per-job latency and core count."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from dpu_testkit import BOARD_SITECUSTOMIZE, FAKES, make_xmodel

from anbench_fpga_dpu import board_runner
from anbench_fpga_dpu.remote import engine_source, stage_runner


def run_mode(xmodel, mode, threads=0, budget_s=1.0):
    return board_runner.run(argparse.Namespace(xmodel=str(xmodel), mode=mode, threads=threads, budget_s=budget_s))


def test_latency_is_the_known_per_job_time(vitis, tmp_path, monkeypatch):
    import vart

    # the simulated DPU's clock: host load cannot add wake-up delays to the 40 ms jobs
    monkeypatch.setenv("FAKE_VART_CLOCK", "virtual")
    monkeypatch.setattr(board_runner, "clock", vart.clock)
    monkeypatch.setenv("FAKE_VART_JOB_MS", "40")
    out = run_mode(make_xmodel(tmp_path), "latency", budget_s=0.5)
    assert out["latency_ms_mean"] == pytest.approx(40.0, rel=0.05)
    assert out["threads"] == 1 and out["jobs_in_flight"] == 1 and out["dpu_batch"] == 1
    assert out["dpu_target"] == "DPUCZDX8G_ISA1_B4096"


@pytest.mark.slow
def test_throughput_rises_with_threads_up_to_the_core_count_and_no_further(vitis, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VART_JOB_MS", "10")
    monkeypatch.setenv("FAKE_VART_CORES", "3")
    xmodel = make_xmodel(tmp_path)
    ips = {n: run_mode(xmodel, "throughput", threads=n, budget_s=0.6)["throughput_ips_mean"] for n in (1, 2, 3, 4, 5)}
    assert ips[1] == pytest.approx(100, rel=0.1)  # one thread keeps one core busy: 1 image / 10 ms
    assert ips[2] > 1.6 * ips[1] and ips[3] > 1.3 * ips[2]
    assert ips[3] == pytest.approx(300, rel=0.1)
    assert ips[4] < 1.1 * ips[3] and ips[5] < 1.1 * ips[3]


@pytest.mark.slow
def test_threads_auto_keeps_the_best_count_and_the_curve(vitis, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VART_JOB_MS", "10")
    monkeypatch.setenv("FAKE_VART_CORES", "2")
    out = run_mode(make_xmodel(tmp_path), "throughput", threads="auto", budget_s=3.0)
    assert out["threads_auto"] is True and out["threads"] == 2
    assert [point["threads"] for point in out["curve"]] == [1, 2, 3, 4]  # two counts without a gain end it
    # the fewest threads that no other count beats by more than 3 %
    assert out["throughput_ips_mean"] * 1.03 >= max(point["throughput_ips_mean"] for point in out["curve"])


def test_default_threads_follow_the_original_per_board(vitis, tmp_path):
    import xir

    for target, threads in (("DPUCZDX8G_ISA1_B4096", 5), ("DPUCVDX8G_ISA3_C32B6", 6)):
        subgraph = board_runner.dpu_subgraph(xir, str(make_xmodel(tmp_path / target, target)))
        assert board_runner.default_threads(subgraph) == threads


def test_inputs_are_rounded_and_saturated_at_the_fix_point():
    out = board_runner.quantize_input(np, np.array([0.3, -0.3, 0.49, 100.0, -100.0]), fix_point=2)
    assert out.dtype == np.int8 and out.flags["C_CONTIGUOUS"]
    assert out.tolist() == [1, -1, 2, 127, -128]


def _board_run(stage, xmodel, *args):
    env = dict(os.environ, PYTHONPATH=f"{stage.parent / 'site'}{os.pathsep}{FAKES}", FAKE_VART_JOB_MS="2")
    return subprocess.run([sys.executable, "-m", "anbench_fpga_dpu.board_runner", "--xmodel", str(xmodel), *args],
                          cwd=stage, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def board_copy(tmp_path):
    """The runner as copied to a board: stub package + runner + engine, where anbench/torch do not import."""
    stage = tmp_path / "stage"
    package = stage_runner(stage)
    # the real engine travels with the runner (no stand-in: the copy itself is under test)
    assert (package / "engine.py").read_bytes() == engine_source().read_bytes()
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BOARD_SITECUSTOMIZE)
    return stage


@pytest.mark.slow
def test_runner_command_line_on_a_board_without_anbench_or_torch(board_copy, tmp_path):
    xmodel = make_xmodel(tmp_path / "m")
    latency = _board_run(board_copy, xmodel, "--mode", "latency", "--budget-s", "0.5")
    assert latency.returncode == 0, latency.stderr
    out = json.loads(latency.stdout)
    assert out["latency_ms_mean"] > 0 and out["engine"] == "sibling" and out["mode"] == "latency"
    throughput = _board_run(board_copy, xmodel, "--mode", "throughput", "--threads", "2", "--budget-s", "0.5")
    out = json.loads(throughput.stdout)
    assert out["throughput_ips_mean"] > 0 and out["threads"] == 2
    assert len(throughput.stdout.strip().splitlines()) == 1  # one JSON object, nothing else on stdout


def test_runner_refuses_an_xmodel_with_two_dpu_subgraphs(board_copy, tmp_path):
    xmodel = make_xmodel(tmp_path / "m", target="DPUCAHX8H_ISA2", hard_sigmoids=1)
    proc = _board_run(board_copy, xmodel, "--mode", "latency")
    assert proc.returncode == 2
    assert "2 DPU subgraphs" in json.loads(proc.stdout)["error"]


def test_runner_says_where_xir_and_vart_come_from(tmp_path):
    stage = tmp_path / "stage"
    stage_runner(stage)
    proc = subprocess.run([sys.executable, "-m", "anbench_fpga_dpu.board_runner", "--xmodel", "x", "--mode", "latency"],
                          cwd=stage, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 2
    assert "Vitis AI board image" in json.loads(proc.stdout)["error"]


@pytest.mark.parametrize("budget", ["0", "-1", "nan", "inf", "soon"])
def test_runner_refuses_a_budget_that_is_not_a_finite_positive_number(vitis, tmp_path, capsys, budget):
    xmodel = make_xmodel(tmp_path / "m")
    with pytest.raises(SystemExit) as exit_info:
        board_runner.main(["--xmodel", str(xmodel), "--mode", "latency", f"--budget-s={budget}"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().out.splitlines()
    assert "--budget-s: must be a positive number of seconds" in json.loads(line)["error"]


def test_runner_reports_an_impossible_engine_policy_as_json(monkeypatch, capsys):
    from anbench.measure.engine import PolicyError

    def impossible(args):
        raise PolicyError("budget_s must be positive")

    monkeypatch.setattr(board_runner, "run", impossible)
    assert board_runner.main(["--xmodel", "x", "--mode", "latency"]) == 2
    assert json.loads(capsys.readouterr().out) == {"error": "budget_s must be positive"}
