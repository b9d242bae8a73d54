"""The cuda runner's options, timer, training mode and GPU environment block.

On the CPU (same code path, ``CudaDevice(device="cpu")``) for the contract; the real
GPU paths are marked ``cuda`` and run where a GPU exists (``pytest -m cuda``).
"""

from __future__ import annotations

import os
import stat

import pytest
import torch

from anbench.errors import AnbenchError
from anbench.plugin_types import MeasureRequest
from anbench.searchspace import named
from anbench_gpu_cuda import CudaDevice
from anbench_gpu_cuda import environment
from anbench_gpu_cuda.runner import NO_CUDA

needs_cuda = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]


def request(batch_size=2, **changes):
    fields = dict(arch=named("smallest"), batch_size=batch_size, input_shape=(3, 32, 32))
    fields.update(changes)
    return MeasureRequest(**fields)


def test_resolve_request_makes_every_option_explicit():
    resolved = CudaDevice(device="cpu").resolve_request(request(options={"compile": True}))
    assert resolved.options == {"channels_last": True, "cuda_graphs": False, "compile": True, "input": "device"}
    assert resolved.settings()["options"]["compile"] is True


def test_describe_does_not_contradict_the_channels_last_option_used():
    runner = CudaDevice(device="cpu", channels_last=True)
    used = runner.resolve_request(request(options={"channels_last": False}))
    assert used.settings()["options"]["channels_last"] is False
    assert "channels_last" not in runner.describe()


@pytest.mark.parametrize("options, text", [
    ({"graphs": True}, "takes options"),
    ({"compile": "yes"}, "true or false"),
    ({"input": "disk"}, "input is one of"),
])
def test_bad_options_are_user_errors(options, text):
    with pytest.raises(AnbenchError, match=text):
        CudaDevice(device="cpu").prepare(request(options=options))


def test_cuda_graphs_need_a_cuda_device():
    with pytest.raises(AnbenchError, match="cuda_graphs needs a CUDA device"):
        CudaDevice(device="cpu").prepare(request(options={"cuda_graphs": True}))


@pytest.mark.slow
def test_compile_wraps_the_model():
    runner = CudaDevice(device="cpu")
    prepared = runner.prepare(request(options={"compile": True}))
    try:
        assert type(prepared.model).__name__ == "OptimizedModule"  # torch.compile; compiled on first call
    finally:
        runner.release(prepared)


def test_loader_input_copies_a_new_host_batch_every_step():
    runner = CudaDevice(device="cpu")
    prepared = runner.prepare(request(options={"input": "loader"}))
    seen = []
    prepared.model.register_forward_pre_hook(lambda module, args: seen.append(float(args[0].sum())))
    try:
        runner.run(prepared, 3)
    finally:
        runner.release(prepared)
    assert len(seen) == 3 and len(set(seen)) == 3  # three different host batches went through


def test_device_inputs_stay_put():
    runner = CudaDevice(device="cpu")
    prepared = runner.prepare(request())
    seen = []
    prepared.model.register_forward_pre_hook(lambda module, args: seen.append(float(args[0].sum())))
    runner.run(prepared, 2)
    runner.release(prepared)
    assert len(set(seen)) == 1


def test_timed_run_returns_seconds_and_no_monitor_off_cuda():
    runner = CudaDevice(device="cpu")
    prepared = runner.prepare(request())
    try:
        assert runner.timed_run(prepared, 2) > 0
        assert runner.device_monitor(prepared) is None
    finally:
        runner.release(prepared)


@pytest.mark.slow
def test_train_mode_steps_the_optimizer():
    runner = CudaDevice(device="cpu")
    prepared = runner.prepare(request(mode="train"))
    before = prepared.model.classifier[1].weight.detach().clone()
    runner.run(prepared, 2)
    after = prepared.model.classifier[1].weight.detach().clone()
    runner.release(prepared)
    assert not torch.equal(before, after)


def test_fixed_schedule_is_one_warmup_pass_and_three_measured_passes():
    assert CudaDevice().fixed_schedule(128) == {"warmup_batches": 391, "repeats": 3, "batches_per_repeat": 391}


FAKE_SMI = """#!/bin/sh
# answers like nvidia-smi --query-gpu=... --format=csv,noheader,nounits on an A100
echo "$@" > "$(dirname "$0")/args"
echo "NVIDIA A100-SXM4-40GB, 535.104.05, 1410, 1215, 1410, 65.12, 400.00, 34, 0x0000000000000040"
"""


def test_nvidia_smi_block_is_parsed(tmp_path, monkeypatch):
    exe = tmp_path / "nvidia-smi"
    exe.write_text(FAKE_SMI)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    block = environment.query_nvidia_smi("GPU-5e2a3f1c-0000-4000-8000-000000000001")
    assert block["gpu_name"] == "NVIDIA A100-SXM4-40GB" and block["driver"] == "535.104.05"
    assert block["sm_clock_mhz"] == 1410 and block["power_w"] == 65.12 and block["temperature_c"] == 34
    assert environment.throttling(block) == ["hardware thermal slowdown"]
    args = (tmp_path / "args").read_text()
    assert "--id=GPU-5e2a3f1c-0000-4000-8000-000000000001" in args and "--format=csv,noheader,nounits" in args and "temperature.gpu" in args


def test_no_nvidia_smi_means_an_empty_block(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert environment.query_nvidia_smi("GPU-5e2a3f1c-0000-4000-8000-000000000001") == {}


def test_gpu_monitor_reports_throttling_and_records_before_after():
    blocks = iter([{"sm_clock_mhz": 1410, "throttle_reasons": 0}, {"sm_clock_mhz": 900, "throttle_reasons": 0x20}])
    monitor = environment.GpuMonitor("GPU-5e2a3f1c-0000-4000-8000-000000000001", query=lambda gpu_id: next(blocks))
    monitor.start()
    facts, reasons = monitor.finish()
    assert facts["gpu_before"]["sm_clock_mhz"] == 1410 and facts["gpu_after"]["sm_clock_mhz"] == 900
    assert reasons and reasons[0].startswith("clock throttling: the GPU reports software thermal slowdown")


class FakeNvml:
    """pynvml's calls used by query_nvml, on a host whose NVML numbers GPUs by PCI bus."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 0, 2, 0

    def __init__(self, gpus):  # [(uuid, name)] in NVML (PCI bus) order
        self.gpus = gpus

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid):
        for gpu in self.gpus:
            if gpu[0] == uuid:
                return gpu
        raise RuntimeError("NVML_ERROR_NOT_FOUND")

    def nvmlDeviceGetName(self, handle):
        return handle[1]

    def nvmlSystemGetDriverVersion(self):
        return "535.104.05"

    def __getattr__(self, name):  # clocks, power, temperature: one number each
        return lambda handle, *args: 1000


def test_the_gpu_block_follows_the_cuda_device_under_cuda_visible_devices(monkeypatch, tmp_path):
    # CUDA_VISIBLE_DEVICES=2: torch's cuda:0 is the third GPU on the bus, NVML index 0 the first
    uuids = [f"5e2a3f1c-0000-4000-8000-00000000000{i}" for i in range(3)]
    nvml = FakeNvml([(f"GPU-{u}", f"gpu on bus {i}") for i, u in enumerate(uuids)])
    visible = {0: uuids[2]}
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: type("Props", (), {"uuid": visible[index]})())
    monkeypatch.setitem(__import__("sys").modules, "pynvml", nvml)
    assert environment.cuda_gpu_id(0) == f"GPU-{uuids[2]}"
    assert environment.gpu_environment(environment.cuda_gpu_id(0))["gpu_name"] == "gpu on bus 2"
    monitor = CudaDevice().device_monitor(type("Prepared", (), {"device": torch.device("cuda", 0)})())
    monitor.start()
    assert monitor.before["gpu_name"] == "gpu on bus 2"
    # nvidia-smi (no NVML) is asked for the same GPU by its UUID
    monkeypatch.setitem(__import__("sys").modules, "pynvml", None)
    exe = tmp_path / "nvidia-smi"
    exe.write_text(FAKE_SMI)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert environment.gpu_environment(environment.cuda_gpu_id(0))["source"] == "nvidia-smi"
    assert f"--id=GPU-{uuids[2]}" in (tmp_path / "args").read_text()


def test_power_cap_alone_is_not_throttling():
    assert environment.throttling({"throttle_reasons": 0x4 | 0x1}) == []


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_gpu_timed_window_has_no_host_sync_inside(monkeypatch):
    runner = CudaDevice()
    prepared = runner.prepare(request(batch_size=8, input_shape=(3, 224, 224), precision="fp16"))
    runner.run(prepared, 2)
    syncs = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: syncs.append(a))
    seconds = runner.timed_run(prepared, 5)
    monkeypatch.undo()
    runner.release(prepared)
    assert syncs == [] and seconds > 0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
@pytest.mark.parametrize("options", [{"cuda_graphs": True}, {"input": "loader"}, {"compile": True}])
def test_gpu_options_measure(options):
    from anbench.measure.engine import EnginePolicy
    from anbench.measure.timing import measure

    runner = CudaDevice()
    policy = EnginePolicy(min_window_s=0.02, ci_target=0.05, budget_s=60)
    result = measure(runner, runner.resolve_request(request(batch_size=16, input_shape=(3, 224, 224),
                                                            precision="fp16", options=options)), policy)
    assert result.throughput_ips_mean > 0 and result.latency_ms_mean > 0
    assert result.device["timer"] == "cuda events" and "environment" in result.device
