"""The CPU device: PyTorch eager inference (or training steps) on this host's cores."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, replace
from typing import Any

from ..errors import AnbenchError
from ..hookspecs import hookimpl
from ..measure.host_noise import affinity
from ..measure.workloads import TRAIN_OPTIMIZER, Workload, build_workload
from ..plugin_types import MeasureRequest
from ..resources import check_batch_fits

# Measured on the 2-core development host (benchmarks/cpu_channels_last.py, batch 8 at 224):
# channels_last / NCHW = 1.44 for EfficientNet-B0 and 1.92 for the smallest network, so it is
# the default; --no-channels-last turns it off. Either way it is recorded in the settings.
CHANNELS_LAST_DEFAULT = True
OPTIONS = ("channels_last",)


@dataclass
class _Prepared:
    workload: Workload
    threads_before: int


def default_threads() -> int:
    """What ``threads=0`` means: torch's default (which honours OMP_NUM_THREADS), at most one
    thread per core this process may run on (its affinity, e.g. after ``--isolate``)."""
    import torch

    return max(1, min(torch.get_num_threads(), len(affinity())))


class CpuDevice:
    name = "cpu"
    summary = "PyTorch eager inference (or --mode train steps) on the host CPU (fp32)"

    def availability(self) -> str | None:
        return None

    def resolve_request(self, request: MeasureRequest) -> MeasureRequest:
        """Threads 0 -> the cores this process may use; the channels_last default made explicit."""
        unknown = sorted(set(request.options) - set(OPTIONS))
        if unknown:
            raise AnbenchError(f"device cpu takes options {', '.join(OPTIONS)}, not {', '.join(unknown)}")
        options = {"channels_last": bool(request.options.get("channels_last", CHANNELS_LAST_DEFAULT))}
        return replace(request, threads=request.threads or default_threads(), options=options)

    def describe(self) -> dict[str, Any]:
        """Host facts; called after ``prepare`` they show the threads and affinity in force."""
        import torch

        threads = torch.get_num_threads()
        return {
            "kind": "cpu",
            "processor": _cpu_model(),
            "machine": platform.machine(),
            "logical_cpus": os.cpu_count(),
            "affinity": affinity(),
            "torch_threads": threads,
            "host_threads": threads,  # the host monitor expects this many busy threads
            "torch": torch.__version__,
            "train_optimizer": TRAIN_OPTIMIZER,
        }

    def prepare(self, request: MeasureRequest) -> _Prepared:
        import torch

        if request.precision != "fp32":
            raise AnbenchError(f"device cpu runs fp32 only, not {request.precision}")
        request = self.resolve_request(request)
        # refuse before allocating: an impossible batch must not end in the OOM killer
        check_batch_fits(request.arch, request.batch_size, request.input_shape, request.activation, request.precision,
                         mode=request.mode)
        threads_before = torch.get_num_threads()
        torch.set_num_threads(request.threads)
        memory_format = torch.channels_last if request.options["channels_last"] else None
        try:
            workload = build_workload(request, "cpu", memory_format)
        except BaseException:
            torch.set_num_threads(threads_before)
            raise
        return _Prepared(workload, threads_before)

    def run(self, prepared: _Prepared, batches: int) -> None:
        # eager CPU execution is synchronous: returning means the work is done
        for _ in range(batches):
            prepared.workload.step()

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


@hookimpl
def register_trainers(register):
    from ..train.cpu_trainer import CpuTrainer

    register(CpuTrainer())
