"""The cuda trainer: its recipe resolution and the shared loop on the CPU (same code path,
channels_last and bf16 autocast included); fp16 AMP on a real GPU under ``pytest -m cuda``."""

from __future__ import annotations

import pytest
import torch

import anbench_gpu_cuda
from anbench.builtin.synthetic import SyntheticDataset
from anbench.errors import AnbenchError
from anbench.plugin_types import TrainRequest
from anbench.searchspace import named
from anbench.testing import register_test_plugin
from anbench.train import recipe as recipes
from anbench_gpu_cuda import CudaTrainer
from anbench_gpu_cuda.runner import NO_CUDA


def tiny_request(tmp_path, trainer, **knobs):
    data = SyntheticDataset()
    eff = recipes.effective("proxified", data.recipe_defaults, {},
                            dict({"epochs": 1, "batch_size": 16, "max_train_samples": 64, "max_val_samples": 32}, **knobs))
    return TrainRequest(named("smallest"), "synthetic", trainer.resolve(eff), tmp_path / "run", seed=1, data=data)


def test_registers_the_cuda_trainer(anbench_host):
    register_test_plugin(anbench_host, anbench_gpu_cuda, name="gpu_cuda")
    assert not anbench_host.errors
    assert isinstance(anbench_host.registry.trainer("cuda"), CudaTrainer)


def test_unavailable_without_cuda_says_why_and_refuses_to_train(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    trainer = CudaTrainer()
    assert trainer.availability() == NO_CUDA
    with pytest.raises(AnbenchError, match="trainer cuda is not available"):
        trainer.train(tiny_request(tmp_path, CudaTrainer(device="cpu")))


def test_the_recipe_gets_amp_and_channels_last_on_a_gpu(monkeypatch):
    auto = recipes.base_recipe("proxified")
    on_gpu = CudaTrainer().resolve(auto)
    assert (on_gpu["precision"], on_gpu["channels_last"]) == ("fp16", True)
    assert CudaTrainer().resolve(dict(auto, precision="bf16"))["precision"] == "bf16"
    on_cpu = CudaTrainer(device="cpu").resolve(auto)
    assert (on_cpu["precision"], on_cpu["channels_last"]) == ("fp32", False)
    with pytest.raises(AnbenchError, match="not fp16"):
        CudaTrainer(device="cpu").resolve(dict(auto, precision="fp16"))
    assert (CudaTrainer().backend, CudaTrainer(device="cpu").backend) == ("nccl", "gloo")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert CudaTrainer().device() == "cuda:3"  # one GPU per torchrun process


@pytest.mark.slow
def test_trains_on_the_cpu_with_bf16_autocast_and_channels_last(tmp_path):
    trainer = CudaTrainer(device="cpu")
    result = trainer.train(tiny_request(tmp_path, trainer, precision="bf16", channels_last=True))
    assert result.verdict == "VALID" and result.extra["engine"] == {"device": "cpu", "precision": "bf16",
                                                                     "channels_last": True}
    assert result.train_time_s > 0 and result.checkpoint.is_file()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_gpu_fp16_amp_training(tmp_path):
    trainer = CudaTrainer()
    result = trainer.train(tiny_request(tmp_path, trainer))
    assert result.verdict == "VALID" and result.extra["engine"]["precision"] == "fp16"
    assert result.extra["peak_memory_gb"] > 0
