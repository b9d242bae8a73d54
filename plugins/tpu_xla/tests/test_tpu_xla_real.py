"""The tpu runner on real torch_xla, PJRT CPU (``make test-xla`` runs this in .venv-xla).

Skipped in the main environment, whose torch cannot host torch_xla; `make test-xla`
creates the environment that runs it, and .ci/run calls that target.
"""

from __future__ import annotations

import json
import os

import pytest

torch_xla = pytest.importorskip("torch_xla", reason="torch_xla lives in its own environment: run `make test-xla`")

import torch  # noqa: E402
import torch_xla.core.xla_model as xm  # noqa: E402

from anbench.measure.engine import EnginePolicy  # noqa: E402
from anbench.measure.timing import measure  # noqa: E402
from anbench.plugin_types import MeasureRequest  # noqa: E402
from anbench.searchspace import named  # noqa: E402
from anbench_tpu_xla import TpuDevice  # noqa: E402
from anbench_tpu_xla import runner as tpu_runner  # noqa: E402

pytestmark = [pytest.mark.xla, pytest.mark.slow]


def request(batch_size=2, **changes):
    fields = dict(arch=named("smallest"), batch_size=batch_size, input_shape=(3, 32, 32), precision="bf16")
    fields.update(changes)
    return MeasureRequest(**fields)


@pytest.fixture(scope="module")
def runner():
    assert os.environ.get("PJRT_DEVICE") == "CPU", "make test-xla sets PJRT_DEVICE=CPU"
    device = TpuDevice()
    assert device.availability() is None
    return device


def test_describe_after_prepare_names_the_xla_device(runner):
    prepared = runner.prepare(request())
    try:
        facts = runner.describe()
    finally:
        runner.release(prepared)
    assert facts["torch_xla"] == torch_xla.__version__.split("+")[0]
    assert facts["device_hw"] == "CPU" and facts["xla_device"].startswith("xla")
    json.dumps(facts)


def test_each_step_is_synced_and_the_window_waits_for_the_device(runner, monkeypatch):
    prepared = runner.prepare(request())
    calls = []
    real_sync, real_wait = torch_xla.sync, xm.wait_device_ops
    monkeypatch.setattr(torch_xla, "sync", lambda *a, **k: (calls.append("sync"), real_sync(*a, **k))[1])
    monkeypatch.setattr(xm, "wait_device_ops", lambda *a, **k: (calls.append("wait"), real_wait(*a, **k))[1])
    try:
        runner.run(prepared, 3)
    finally:
        monkeypatch.undo()
        runner.release(prepared)
    assert calls == ["sync", "sync", "sync", "wait"]


def execute_count():
    import torch_xla.debug.metrics as met

    data = met.metric_data("ExecuteTime")
    return int(data[0]) if data else 0


def test_each_batch_executes_the_model_on_the_device(runner):
    prepared = runner.prepare(request())
    try:
        runner.run(prepared, 1)  # compile outside the counted runs
        before = execute_count()
        runner.run(prepared, 3)
        middle = execute_count()
        runner.run(prepared, 4)
        after = execute_count()
    finally:
        runner.release(prepared)
    assert (middle - before, after - middle) == (3, 4)


def test_bf16_weights_and_outputs(runner):
    prepared = runner.prepare(request())
    try:
        out = prepared.workload.step()
        assert out.dtype == torch.bfloat16 and out.device.type == "xla"
        assert next(prepared.workload.model.parameters()).dtype == torch.bfloat16
    finally:
        runner.release(prepared)


def test_a_window_that_compiled_is_marked_for_discarding(runner):
    prepared = runner.prepare(request(batch_size=3))
    try:
        first = runner.timed_run(prepared, 1)     # the graph for this shape compiles here
        second = runner.timed_run(prepared, 2)    # same shapes: cached
        prepared.workload.inputs = prepared.workload.inputs[:2]  # a ragged batch recompiles
        third = runner.timed_run(prepared, 1)
    finally:
        runner.release(prepared)
    assert first[1].startswith("XLA compiled during the window") and first[0] > 0
    assert second[1] == "" and second[0] > 0
    assert "UncachedCompile +1" in third[1]


def test_engine_measures_and_keeps_compiles_out_of_the_statistics(runner):
    policy = EnginePolicy(min_window_s=0.02, min_windows=5, min_duration_s=0.1, ci_target=0.5, budget_s=20)
    result = measure(runner, request(), policy, latency=False)
    timed = result.results["throughput_ips"]
    assert timed.n >= 5 and result.throughput_ips_mean > 0
    assert not any("recompilation" in r for r in timed.reasons), timed.reasons
    # the compile happened in the first (calibration) window, which is warm-up
    assert timed.warmup_discarded >= 1
    assert result.device["device_hw"] == "CPU"


def test_training_steps_run_on_xla(runner):
    prepared = runner.prepare(request(mode="train", precision="fp32"))
    try:
        before = [p.detach().cpu().clone() for p in prepared.workload.model.parameters()][-1]
        runner.run(prepared, 2)
        after = [p.detach().cpu() for p in prepared.workload.model.parameters()][-1]
    finally:
        runner.release(prepared)
    assert not torch.equal(before, after)  # the optimizer stepped


def test_measure_command_on_tpu_stores_a_verdict(tmp_path):
    from click.testing import CliRunner

    from anbench.cli import cli

    store_path = tmp_path / "anbench.db"
    out = CliRunner().invoke(cli, ["--store", str(store_path), "measure", "--device", "tpu", "--arch", "smallest",
                                   "--resolution", "32", "--batch-size", "2", "--no-latency", "--ci-target", "50",
                                   "--budget-s", "20", "--format", "json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)
    assert row["status"] == "measured" and row["throughput_ips_mean"] > 0 and row["verdict"] in ("VALID", "INVALID")
    from anbench.store import Store

    with Store.open(store_path) as store:
        (result,) = store.results(stage="measure", target="tpu")
    assert result.settings["precision"] == "bf16"  # the device's default
    assert result.provenance["device"]["device_hw"] == "CPU"


def test_compile_counters_are_read_from_torch_xla():
    counts = tpu_runner.compile_counts()
    assert set(counts) == {"UncachedCompile", "CompileTime"} and all(v >= 0 for v in counts.values())
