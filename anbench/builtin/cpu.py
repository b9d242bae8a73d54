"""The CPU device: PyTorch eager inference on this host's cores."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any

from ..hookspecs import hookimpl
from ..plugin_types import MeasureRequest


@dataclass
class _Prepared:
    model: Any
    inputs: Any
    threads_before: int


class CpuDevice:
    name = "cpu"
    summary = "PyTorch eager inference on the host CPU (fp32, no_grad, eval mode)"

    def availability(self) -> str | None:
        return None

    def describe(self) -> dict[str, Any]:
        import torch

        return {
            "kind": "cpu",
            "processor": _cpu_model(),
            "machine": platform.machine(),
            "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        }

    def prepare(self, request: MeasureRequest) -> _Prepared:
        import torch

        from ..errors import AnbenchError
        from ..models import build_model

        if request.precision != "fp32":
            raise AnbenchError(f"device cpu runs fp32 only, not {request.precision}")
        from ..resources import check_batch_fits

        # refuse before allocating: an impossible batch must not end in the OOM killer
        check_batch_fits(request.arch, request.batch_size, request.input_shape, request.activation, request.precision)
        threads_before = torch.get_num_threads()
        if request.threads:
            torch.set_num_threads(request.threads)
        torch.manual_seed(request.seed)
        model = build_model(request.arch, activation=request.activation, mode="deploy").eval()
        inputs = torch.randn((request.batch_size, *request.input_shape))
        return _Prepared(model, inputs, threads_before)

    def run(self, prepared: _Prepared, batches: int) -> None:
        import torch

        # eager CPU execution is synchronous: returning means the work is done
        with torch.inference_mode():
            for _ in range(batches):
                prepared.model(prepared.inputs)

    def release(self, prepared: _Prepared) -> None:
        import torch

        torch.set_num_threads(prepared.threads_before)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@hookimpl
def register_devices(register):
    register(CpuDevice())
