"""The CUDA trainer: anbench's proxified loop on one GPU per process (DDP over NCCL).

AMP (fp16 with a gradient scaler, or bf16), channels_last and cuDNN autotuning, as the
Accel-NASBench collection trained. Under torchrun each process takes the GPU of its
``LOCAL_RANK``. Like the device runner, ``CudaTrainer(device="cpu")`` runs the same code
path on the CPU (AMP then off unless bf16), which is how it is tested without a GPU.
Importing this module does not import torch.
"""

from __future__ import annotations

import os
from typing import Any

from anbench.errors import AnbenchError
from anbench.plugin_types import TrainRequest, TrainResult

from .runner import NO_CUDA, _driver_version


class CudaTrainer:
    name = "cuda"
    summary = "the proxified training loop on NVIDIA GPUs (AMP fp16/bf16, channels_last, DDP over NCCL)"

    def __init__(self, device: str = "cuda", cudnn_benchmark: bool = True) -> None:
        self.device_spec = device
        self.cudnn_benchmark = cudnn_benchmark

    @property
    def on_cuda(self) -> bool:
        return self.device_spec.startswith("cuda")

    @property
    def backend(self) -> str:
        """The torch.distributed backend torchrun's processes join."""
        return "nccl" if self.on_cuda else "gloo"

    def availability(self) -> str | None:
        import torch

        if not self.on_cuda:
            return None
        if not torch.cuda.is_available():
            return NO_CUDA
        return None

    def device(self) -> str:
        """This process's GPU: ``cuda:<LOCAL_RANK>`` under torchrun, else the given device."""
        if self.on_cuda and self.device_spec == "cuda":
            return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        return self.device_spec

    def describe(self) -> dict[str, Any]:
        import torch

        facts: dict[str, Any] = {"kind": "cuda", "torch_device": self.device(), "torch": torch.__version__,
                                 "cuda_runtime": torch.version.cuda, "cudnn_benchmark": self.cudnn_benchmark}
        if self.on_cuda and torch.cuda.is_available():
            props = torch.cuda.get_device_properties(torch.device(self.device()))
            facts.update({"device_name": props.name, "capability": f"{props.major}.{props.minor}",
                          "memory_total_gib": round(props.total_memory / 2**30, 2),
                          "cudnn": torch.backends.cudnn.version(), "driver": _driver_version()})
        return facts

    def resolve(self, recipe: dict[str, Any]) -> dict[str, Any]:
        """``auto`` becomes fp16 AMP and channels_last on a GPU (the original recipe), fp32 on the CPU."""
        out = dict(recipe)
        if out["precision"] == "auto":
            out["precision"] = "fp16" if self.on_cuda else "fp32"
        if out["channels_last"] == "auto":
            out["channels_last"] = self.on_cuda
        if out["precision"] == "fp16" and not self.on_cuda:
            raise AnbenchError("trainer cuda on the CPU trains fp32 or bf16, not fp16")
        return out

    def train(self, request: TrainRequest) -> TrainResult:
        import torch

        from anbench.train.loop import Engine, train

        reason = self.availability()
        if reason is not None:
            raise AnbenchError(f"trainer cuda is not available: {reason}")
        recipe = self.resolve(request.recipe)
        device = self.device()
        if self.on_cuda:
            torch.cuda.set_device(torch.device(device))
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
            torch.cuda.reset_peak_memory_stats()  # the peak reported is this model's (spec weakness 2)
        dataset = request.data
        if dataset is None:
            from anbench.plugins import get_host

            dataset = get_host().registry.dataset(request.dataset)
        result = train(request, Engine(device, recipe["precision"], bool(recipe["channels_last"])), dataset)
        if self.on_cuda:
            result.extra["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
        return result
