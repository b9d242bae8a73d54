"""The CUDA device runner. torch is imported inside methods only (cheap plugin import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anbench.errors import AnbenchError
from anbench.plugin_types import MeasureRequest

# precision name -> autocast dtype name (None: plain fp32, no autocast)
PRECISIONS = {"fp32": None, "fp16": "float16", "bf16": "bfloat16"}
NO_CUDA = "no CUDA device visible (torch.cuda.is_available() is False)"


@dataclass
class _Prepared:
    model: Any
    inputs: Any
    autocast_dtype: Any  # torch.dtype or None


class CudaDevice:
    """Device runner ``cuda``.

    :param device: where to run, anything ``torch.device`` accepts (``"cuda"``,
        ``"cuda:1"``, or ``"cpu"`` for tests); default ``"cuda"`` (the current CUDA device).
    :param channels_last: put model and inputs in ``torch.channels_last`` memory format
        (what the original GPU measurements used; faster with tensor cores).
    :param cudnn_benchmark: let cuDNN autotune convolution algorithms on the first
        batches (the warm-up absorbs it).

    Precisions: ``fp32`` (no autocast), ``fp16`` and ``bf16`` (``torch.autocast`` with that
    dtype; weights stay fp32 as in AMP inference). Anything else is an
    :class:`~anbench.errors.AnbenchError`.
    """

    name = "cuda"
    summary = "PyTorch inference on an NVIDIA GPU (fp32 or fp16/bf16 autocast, channels_last, synchronised)"

    def __init__(self, device: Any = "cuda", channels_last: bool = True, cudnn_benchmark: bool = True) -> None:
        self.device_spec = str(device)
        self.channels_last = channels_last
        self.cudnn_benchmark = cudnn_benchmark

    # -- questions --

    def _device(self):
        import torch

        device = torch.device(self.device_spec)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        return device

    def availability(self) -> str | None:
        import torch

        kind = torch.device(self.device_spec).type
        if kind != "cuda":
            return None  # a test construction on another torch device (cpu) is always usable
        if not torch.cuda.is_available():
            return NO_CUDA
        index = torch.device(self.device_spec).index
        if index is not None and index >= torch.cuda.device_count():
            return f"CUDA device {index} does not exist ({torch.cuda.device_count()} visible)"
        return None

    def describe(self) -> dict[str, Any]:
        """Device name, compute capability, memory, driver/CUDA/cuDNN versions, settings.

        Works when no GPU is visible too (then ``available`` is false and the device
        facts are absent).
        """
        import torch

        facts: dict[str, Any] = {
            "kind": "cuda",
            "torch_device": self.device_spec,
            "channels_last": self.channels_last,
            "cudnn_benchmark": self.cudnn_benchmark,
            "torch": torch.__version__,
            "cuda_runtime": torch.version.cuda,
            "available": self.availability() is None,
        }
        device = torch.device(self.device_spec)
        if device.type != "cuda" or not facts["available"]:
            return facts
        device = self._device()
        props = torch.cuda.get_device_properties(device)
        facts.update({
            "device_index": device.index,
            "device_count": torch.cuda.device_count(),
            "device_name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_total_gib": round(props.total_memory / 2**30, 2),
            "multiprocessors": props.multi_processor_count,
            "cudnn": torch.backends.cudnn.version(),
            "driver": _driver_version(),
        })
        return facts

    # -- running --

    def prepare(self, request: MeasureRequest) -> _Prepared:
        import torch

        from anbench.models import build_model

        reason = self.availability()
        if reason is not None:
            raise AnbenchError(f"device cuda is not available: {reason}")
        if request.precision not in PRECISIONS:
            raise AnbenchError(f"device cuda runs {', '.join(PRECISIONS)}, not {request.precision}")
        if len(request.input_shape) != 3:
            raise AnbenchError(f"device cuda runs the 2-D network on (C, H, W) inputs, not {tuple(request.input_shape)}")
        device = self._device()
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
        torch.manual_seed(request.seed)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        model = build_model(request.arch, activation=request.activation, mode="deploy").eval()
        model = model.to(device=device, memory_format=memory_format)
        generator = torch.Generator().manual_seed(request.seed)
        inputs = torch.randn((request.batch_size, *request.input_shape), generator=generator)
        inputs = inputs.to(device=device).contiguous(memory_format=memory_format)
        dtype_name = PRECISIONS[request.precision]
        self._synchronize(device)  # the copies above are done before anyone times anything
        return _Prepared(model, inputs, getattr(torch, dtype_name) if dtype_name else None)

    def run(self, prepared: _Prepared, batches: int) -> None:
        """Run ``batches`` forward passes; return after the device finished all of them."""
        import torch

        device = prepared.inputs.device
        with torch.inference_mode(), torch.autocast(device.type, dtype=prepared.autocast_dtype,
                                                    enabled=prepared.autocast_dtype is not None):
            for _ in range(batches):
                prepared.model(prepared.inputs)
        # kernels are queued asynchronously; without this the caller would time the launches
        self._synchronize(device)

    def release(self, prepared: _Prepared) -> None:
        import torch

        device = prepared.inputs.device
        prepared.model = prepared.inputs = None
        if device.type == "cuda":
            torch.cuda.empty_cache()

    @staticmethod
    def _synchronize(device) -> None:
        import torch

        if device.type == "cuda":
            torch.cuda.synchronize(device)


def _driver_version() -> str | None:
    """The NVIDIA kernel driver version, from /proc or NVML, or None when neither answers."""
    try:
        with open("/proc/driver/nvidia/version") as version_file:
            first = version_file.readline()
        for word in first.split():
            if word[:1].isdigit() and "." in word:
                return word
    except OSError:
        pass
    try:
        import pynvml  # optional; part of nvidia-ml-py

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else version
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVML missing or failing only loses one provenance fact
        return None
