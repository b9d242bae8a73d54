"""The ``tpu`` device runner: torch_xla on one PJRT device (a TPU core, or the CPU in tests).

Timing rules that the peers' and users' reports show are easy to get wrong (see the
package docstring): every batch ends with ``torch_xla.sync()`` so the graph is cut and
executed, and every window ends with ``xm.wait_device_ops()`` so the clock measures
execution, never only tracing; shapes never change (one input tensor reused), so there is
one compilation; and a window during which XLA compiled (``UncachedCompile`` or the
``CompileTime`` sample count grew) is discarded by the engine.

torch_xla is imported only inside ``prepare``/``run`` and friends.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Any

from anbench.errors import AnbenchError
from anbench.plugin_types import MeasureRequest

PRECISIONS = ("bf16", "fp32")
# the original measured 300 warm-up steps, then rates every 50 steps (spec section 7)
FIXED_WARMUP_STEPS = 300
FIXED_STEPS_PER_RATE = 50
FIXED_RATES = 4


def _installed_version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def tpu_generation(env: dict | None = None) -> int | None:
    """The TPU generation from the TPU VM's environment (``v3-8`` -> 3), None when unknown.

    Read from the environment only: asking torch_xla may call the GCP metadata server.
    """
    env = os.environ if env is None else env
    for var in ("TPU_ACCELERATOR_TYPE", "ACCELERATOR_TYPE"):
        match = re.match(r"v(\d+)", env.get(var, "").strip().lower())
        if match:
            return int(match.group(1))
    return None


@dataclass
class _Prepared:
    workload: Any
    device: Any


class TpuDevice:
    """Device runner ``tpu``: one XLA device through PJRT, bf16 by default, one core.

    Default batch: 64 on TPUv2, 128 on TPUv3 and later (the original's choice; bigger did
    not help). ``PJRT_DEVICE=CPU`` runs the same code on the host CPU, which is how it is
    tested (``make test-xla``).
    """

    name = "tpu"
    summary = "PyTorch/XLA on one TPU core through PJRT (bf16, sync per step, compile-aware windows)"
    default_precision = "bf16"

    def availability(self) -> str | None:
        if importlib.util.find_spec("torch_xla") is None:
            return "torch_xla is not installed"
        return None

    @property
    def default_batch_size(self) -> int:
        return 64 if tpu_generation() == 2 else 128

    def fixed_schedule(self, batch_size: int) -> dict[str, int]:
        """The original procedure: rates after step 300, every 50 steps."""
        return {"warmup_batches": FIXED_WARMUP_STEPS, "repeats": FIXED_RATES, "batches_per_repeat": FIXED_STEPS_PER_RATE}

    def describe(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "kind": "tpu",
            "torch_xla": _installed_version("torch-xla"),
            "pjrt_device": os.environ.get("PJRT_DEVICE"),
            "tpu_generation": tpu_generation(),
            "cores_used": 1,
        }
        if "torch_xla" in sys.modules:  # after prepare: the device is up, asking is cheap
            import torch_xla
            import torch_xla.core.xla_model as xm

            device = torch_xla.device()
            facts.update({"xla_device": str(device), "device_hw": xm.xla_device_hw(device)})
        return facts

    def prepare(self, request: MeasureRequest) -> _Prepared:
        reason = self.availability()
        if reason:
            raise AnbenchError(f"device tpu is not available: {reason}")
        if request.precision not in PRECISIONS:
            raise AnbenchError(f"device tpu runs {', '.join(PRECISIONS)}, not {request.precision}")
        if request.options:
            raise AnbenchError(f"device tpu takes no options, not {', '.join(sorted(request.options))}")
        import torch
        import torch_xla

        from anbench.measure.workloads import build_workload

        device = torch_xla.device()
        dtype = torch.bfloat16 if request.precision == "bf16" else None
        workload = build_workload(request, device, dtype=dtype)
        workload.no_grad_only = True
        # materialise the moved and cast weights and inputs now: left pending they would join
        # the first step's graph, and the second step would compile again
        torch_xla.sync()
        self._wait()
        return _Prepared(workload, device)

    def run(self, prepared: _Prepared, batches: int) -> None:
        """``batches`` steps, each cut by ``torch_xla.sync()``; returns after the device drained."""
        import torch_xla

        for _ in range(batches):
            # sync() executes only graphs whose results are still referenced: a discarded
            # output leaves nothing to run and the clock would time tracing alone
            out = prepared.workload.step()
            torch_xla.sync()
            del out
        self._wait()

    def timed_run(self, prepared: _Prepared, batches: int) -> tuple[float, str]:
        """Seconds for ``run``; a window in which XLA compiled comes back with a discard reason."""
        before = compile_counts()
        start = time.perf_counter()
        self.run(prepared, batches)
        seconds = time.perf_counter() - start
        after = compile_counts()
        grew = [f"{name} +{after[name] - before[name]}" for name in after if after[name] > before[name]]
        return seconds, (f"XLA compiled during the window ({', '.join(grew)})" if grew else "")

    def release(self, prepared: _Prepared) -> None:
        prepared.workload = None
        self._wait()

    @staticmethod
    def _wait() -> None:
        import torch_xla.core.xla_model as xm

        xm.wait_device_ops()


def compile_counts() -> dict[str, int]:
    """XLA's compile counters: uncached compilations and the number of CompileTime samples."""
    import torch_xla.debug.metrics as met

    data = met.metric_data("CompileTime")
    return {"UncachedCompile": int(met.counter_value("UncachedCompile") or 0),
            "CompileTime": int(data[0]) if data else 0}
