"""The cuda device runner: its contract on the CPU (same code path), and on a real GPU
under ``pytest -m cuda``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import anbench_gpu_cuda
from anbench.errors import AnbenchError
from anbench.plugin_types import MeasureRequest
from anbench.searchspace import named
from anbench.testing import DeviceContract, register_test_plugin
from anbench_gpu_cuda import CudaDevice
from anbench_gpu_cuda.runner import NO_CUDA

needs_cuda = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]


def request(batch_size=2, **changes):
    fields = dict(arch=named("smallest"), batch_size=batch_size, input_shape=(3, 32, 32))
    fields.update(changes)
    return MeasureRequest(**fields)


def test_registers_cuda_device(anbench_host):
    register_test_plugin(anbench_host, anbench_gpu_cuda, name="gpu_cuda")
    assert not anbench_host.errors
    runner = anbench_host.registry.device("cuda")
    assert isinstance(runner, CudaDevice) and runner.device_spec == "cuda"


def test_import_does_not_import_torch():
    code = "import sys, anbench_gpu_cuda; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_unavailable_without_cuda_says_why(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    runner = CudaDevice()
    assert runner.availability() == NO_CUDA
    assert runner.describe()["available"] is False
    with pytest.raises(AnbenchError, match="no CUDA device visible"):
        runner.prepare(request())


def test_cpu_construction_is_available_and_channels_last():
    runner = CudaDevice(device="cpu")
    assert runner.availability() is None
    prepared = runner.prepare(request())
    try:
        assert prepared.inputs.is_contiguous(memory_format=torch.channels_last)
        assert prepared.model.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
        assert prepared.model.mode == "deploy" and not prepared.model.training
    finally:
        runner.release(prepared)


def test_channels_last_can_be_turned_off():
    runner = CudaDevice(device="cpu", channels_last=False)
    prepared = runner.prepare(request())
    assert not prepared.inputs.is_contiguous(memory_format=torch.channels_last)
    runner.release(prepared)


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_precision_sets_the_compute_dtype(precision, dtype):
    runner = CudaDevice(device="cpu")
    prepared = runner.prepare(request(precision=precision))
    seen = []
    prepared.model.classifier.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    runner.run(prepared, 2)
    runner.release(prepared)
    assert seen == [dtype, dtype]


def test_rejects_unknown_precision_and_1d_inputs():
    runner = CudaDevice(device="cpu")
    with pytest.raises(AnbenchError, match="not int4"):
        runner.prepare(request(precision="int4"))
    with pytest.raises(AnbenchError, match="2-D network"):
        runner.prepare(request(input_shape=(1, 1000)))


def test_run_synchronises_after_the_last_batch(monkeypatch):
    runner = CudaDevice(device="cpu")
    prepared = runner.prepare(request())
    events = []
    prepared.model.register_forward_hook(lambda *_: events.append("forward"))
    monkeypatch.setattr(CudaDevice, "_synchronize", staticmethod(lambda device: events.append("sync")))
    runner.run(prepared, 3)
    runner.release(prepared)
    assert events == ["forward", "forward", "forward", "sync"]


def test_runs_under_inference_mode():
    runner = CudaDevice(device="cpu")
    prepared = runner.prepare(request())
    flags = []
    prepared.model.register_forward_hook(lambda *_: flags.append(torch.is_inference_mode_enabled()))
    runner.run(prepared, 1)
    runner.release(prepared)
    assert flags == [True]


class TestCudaRunnerOnCpuContract(DeviceContract):
    @pytest.fixture
    def device_runner(self):
        return CudaDevice(device="cpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
class TestCudaRunnerOnGpuContract(DeviceContract):
    # a GPU runs the 32x32 smallest net in microseconds: a bigger input keeps the
    # synchronisation check about device work rather than launch overhead
    contract_input_shape = (3, 224, 224)

    @pytest.fixture
    def device_runner(self):
        return CudaDevice()

    def contract_pending_work(self, runner, prepared):
        return not torch.cuda.current_stream(prepared.inputs.device).query()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_gpu_describe_has_device_facts():
    facts = CudaDevice().describe()
    assert facts["available"] is True
    assert facts["device_name"] and facts["capability"].count(".") == 1
    assert facts["memory_total_gib"] > 0 and facts["cuda_runtime"]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_gpu_fp16_autocast_and_sync():
    runner = CudaDevice()
    prepared = runner.prepare(request(batch_size=8, input_shape=(3, 224, 224), precision="fp16"))
    seen = []
    prepared.model.classifier.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    runner.run(prepared, 2)
    # run() returned, so nothing may still be queued on the device
    assert torch.cuda.current_stream().query()
    runner.release(prepared)
    assert seen == [torch.float16, torch.float16]
