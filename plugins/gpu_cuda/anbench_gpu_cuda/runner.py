"""The CUDA device runner. torch is imported inside methods only (cheap plugin import)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from anbench.errors import AnbenchError
from anbench.plugin_types import MeasureRequest

from .environment import GpuMonitor, cuda_gpu_id, gpu_environment

# precision name -> autocast dtype name (None: plain fp32, no autocast)
PRECISIONS = {"fp32": None, "fp16": "float16", "bf16": "bfloat16"}
NO_CUDA = "no CUDA device visible (torch.cuda.is_available() is False)"


OPTIONS = ("channels_last", "cuda_graphs", "compile", "input")
INPUTS = ("device", "loader")
# the original's pass: the 50,000-image validation set (spec section 6)
VAL_IMAGES = 50_000
LOADER_BATCHES = 4  # distinct host batches the loader cycles through


@dataclass
class _Prepared:
    workload: Any
    autocast_dtype: Any  # torch.dtype or None
    device: Any
    options: dict
    graph: Any = None          # torch.cuda.CUDAGraph when cuda_graphs
    host_batches: list = field(default_factory=list)  # pinned host inputs when input=loader
    next_batch: int = 0

    @property
    def inputs(self):
        return self.workload.inputs

    @property
    def model(self):
        return self.workload.model


class CudaDevice:
    """Device runner ``cuda``.

    :param device: where to run, anything ``torch.device`` accepts (``"cuda"``,
        ``"cuda:1"``, or ``"cpu"`` for tests); default ``"cuda"`` (the current CUDA device).
    :param channels_last: default of the ``channels_last`` option: model and inputs in
        ``torch.channels_last`` memory format (what the original GPU measurements used).
    :param cudnn_benchmark: let cuDNN autotune convolution algorithms on the first
        batches (the warm-up absorbs it).

    Precisions: ``fp32`` (no autocast), ``fp16`` and ``bf16`` (``torch.autocast`` with that
    dtype; weights stay fp32 as in AMP inference). Anything else is an
    :class:`~anbench.errors.AnbenchError`.

    Options (``MeasureRequest.options``, ``anbench measure --option KEY=VALUE``), all
    recorded in the settings: ``channels_last`` (bool), ``cuda_graphs`` (bool: one batch
    captured once and replayed; inference on CUDA only), ``compile`` (bool:
    ``torch.compile``), ``input``: ``"device"`` (inputs staged on the GPU: device
    throughput) or ``"loader"`` (every batch copied from pinned host memory, as a data
    loader delivers it: end to end).

    Timing: ``timed_run`` records CUDA events around a whole window and synchronises only
    on the end event, so there is no host synchronisation inside a timed window.
    """

    name = "cuda"
    summary = "PyTorch on an NVIDIA GPU (fp32/fp16/bf16, channels_last, CUDA events, optional graphs/compile)"

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

    def fixed_schedule(self, batch_size: int) -> dict[str, int]:
        """The original procedure: 1 warm-up pass and 3 measured passes over the 50k validation images."""
        per_pass = -(-VAL_IMAGES // batch_size)
        return {"warmup_batches": per_pass, "repeats": 3, "batches_per_repeat": per_pass}

    def resolve_request(self, request: MeasureRequest) -> MeasureRequest:
        """Every option made explicit, so the stored settings say how it ran."""
        unknown = sorted(set(request.options) - set(OPTIONS))
        if unknown:
            raise AnbenchError(f"device cuda takes options {', '.join(OPTIONS)}, not {', '.join(unknown)}")
        options = {"channels_last": self.channels_last, "cuda_graphs": False, "compile": False, "input": "device"}
        options.update(request.options)
        for key in ("channels_last", "cuda_graphs", "compile"):
            if not isinstance(options[key], bool):
                raise AnbenchError(f"device cuda option {key} is true or false, not {options[key]!r}")
        if options["input"] not in INPUTS:
            raise AnbenchError(f"device cuda option input is one of {', '.join(INPUTS)}, not {options['input']!r}")
        return replace(request, options=options)

    def describe(self) -> dict[str, Any]:
        """Device name, capability, memory, driver/CUDA/cuDNN versions, settings, and the
        environment block (clocks, power, temperature) when NVML or nvidia-smi answers.

        Works when no GPU is visible too (then ``available`` is false and the device
        facts are absent).
        """
        import torch

        facts: dict[str, Any] = {
            "kind": "cuda",
            "torch_device": self.device_spec,
            # channels_last is left out: it is a per-request option, and the one used is in the
            # settings (resolve_request); the constructor's default would contradict them
            "cudnn_benchmark": self.cudnn_benchmark,
            "torch": torch.__version__,
            "cuda_runtime": torch.version.cuda,
            "available": self.availability() is None,
            "timer": "cuda events" if torch.device(self.device_spec).type == "cuda" else "wall clock",
        }
        device = torch.device(self.device_spec)
        if device.type != "cuda" or not facts["available"]:
            return facts
        device = self._device()
        props = torch.cuda.get_device_properties(device)
        gpu_id = cuda_gpu_id(device.index)
        facts.update({
            "device_index": device.index,
            "gpu_uuid": gpu_id,
            "device_count": torch.cuda.device_count(),
            "device_name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_total_gib": round(props.total_memory / 2**30, 2),
            "multiprocessors": props.multi_processor_count,
            "cudnn": torch.backends.cudnn.version(),
            "driver": _driver_version(),
            "environment": gpu_environment(gpu_id),
        })
        return facts

    # -- running --

    def prepare(self, request: MeasureRequest) -> _Prepared:
        import torch

        from anbench.measure.workloads import build_workload

        reason = self.availability()
        if reason is not None:
            raise AnbenchError(f"device cuda is not available: {reason}")
        if request.precision not in PRECISIONS:
            raise AnbenchError(f"device cuda runs {', '.join(PRECISIONS)}, not {request.precision}")
        if len(request.input_shape) != 3:
            raise AnbenchError(f"device cuda runs the 2-D network on (C, H, W) inputs, not {tuple(request.input_shape)}")
        request = self.resolve_request(request)
        options = request.options
        device = self._device()
        if options["cuda_graphs"] and (device.type != "cuda" or request.mode != "inference"):
            raise AnbenchError("device cuda option cuda_graphs needs a CUDA device and --mode inference")
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
        memory_format = torch.channels_last if options["channels_last"] else torch.contiguous_format
        workload = build_workload(request, device, memory_format)
        if options["compile"]:
            workload.model = torch.compile(workload.model)
        dtype_name = PRECISIONS[request.precision]
        prepared = _Prepared(workload, getattr(torch, dtype_name) if dtype_name else None, device, options)
        if options["input"] == "loader":
            pin = device.type == "cuda"
            generator = torch.Generator().manual_seed(request.seed + 1)
            prepared.host_batches = [
                torch.randn(tuple(workload.inputs.shape), generator=generator).contiguous(memory_format=memory_format)
                for _ in range(LOADER_BATCHES)]
            if pin:
                prepared.host_batches = [b.pin_memory() for b in prepared.host_batches]
        if options["cuda_graphs"]:
            prepared.graph = self._capture(prepared)
        self._synchronize(device)  # the copies above are done before anyone times anything
        return prepared

    def _capture(self, prepared: _Prepared):
        """Capture one inference batch into a CUDA graph (after warm-up on a side stream, as PyTorch asks)."""
        import torch

        stream = torch.cuda.Stream(prepared.device)
        stream.wait_stream(torch.cuda.current_stream(prepared.device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                self._forward(prepared)
        torch.cuda.current_stream(prepared.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._forward(prepared)
        return graph

    def _forward(self, prepared: _Prepared) -> None:
        import torch

        with torch.autocast(prepared.device.type, dtype=prepared.autocast_dtype,
                            enabled=prepared.autocast_dtype is not None):
            prepared.workload.step()

    def _batches(self, prepared: _Prepared, batches: int) -> None:
        """Queue ``batches`` batches; never waits for the device."""
        for _ in range(batches):
            if prepared.host_batches:
                host = prepared.host_batches[prepared.next_batch % len(prepared.host_batches)]
                prepared.next_batch += 1
                prepared.workload.inputs.copy_(host, non_blocking=True)
            if prepared.graph is not None:
                prepared.graph.replay()
            else:
                self._forward(prepared)

    def run(self, prepared: _Prepared, batches: int) -> None:
        """Run ``batches`` batches; return after the device finished all of them."""
        self._batches(prepared, batches)
        # kernels are queued asynchronously; without this the caller would time the launches
        self._synchronize(prepared.device)

    def timed_run(self, prepared: _Prepared, batches: int) -> float:
        """Seconds the device took for ``batches`` batches, from CUDA events around the window.

        The only host synchronisation is on the end event, after the last batch. On a
        non-CUDA torch device (tests) the wall clock around :meth:`run` is used.
        """
        import time

        import torch

        if prepared.device.type != "cuda":
            start = time.perf_counter()
            self.run(prepared, batches)
            return time.perf_counter() - start
        begin = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        begin.record()
        self._batches(prepared, batches)
        end.record()
        end.synchronize()
        return begin.elapsed_time(end) / 1000.0

    def device_monitor(self, prepared: _Prepared):
        """GPU clocks, power and temperature before and after each measurement (CUDA only)."""
        if prepared.device.type != "cuda":
            return None
        return GpuMonitor(cuda_gpu_id(prepared.device.index or 0))

    def release(self, prepared: _Prepared) -> None:
        import torch

        device = prepared.device
        prepared.workload = prepared.graph = None
        prepared.host_batches = []
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
