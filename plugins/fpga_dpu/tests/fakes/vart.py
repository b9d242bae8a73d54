"""Fake of the VART Python binding (module ``vart``) with a simulated DPU (see README.md).

Timing model: the board has ``FAKE_VART_CORES`` DPU cores (default 3, the stock ZCU102
image); a job takes ``FAKE_VART_JOB_MS`` milliseconds (default 2) on one core. Runners
are bound to cores round-robin as they are created and a core runs its jobs in
submission order, one at a time, so one thread with any number of jobs in flight uses
one core and throughput grows with threads up to the core count, and no further. The
schedule is computed at submission; ``wait`` sleeps until the job's finish time, so
wake-up jitter never delays the simulated DPU.

``FAKE_VART_CLOCK=virtual`` simulates time instead: nothing sleeps, ``wait`` advances the
virtual :func:`clock` to the job's finish (a test hands that clock to the code it times,
so a per-job latency comes out exact on any host load; one waiting thread only).
"""

from __future__ import annotations

import itertools
import os
import threading
import time

import numpy as np

import xir

_lock = threading.Lock()
_core_free_at: list[float] = []
_job_ids = itertools.count(1)
_runner_ids = itertools.count(0)


def _board() -> tuple[int, float]:
    cores = int(os.environ.get("FAKE_VART_CORES", "3"))
    job_s = float(os.environ.get("FAKE_VART_JOB_MS", "2")) / 1000.0
    return cores, job_s


_virtual_now = [0.0]


def _virtual() -> bool:
    return os.environ.get("FAKE_VART_CLOCK") == "virtual"


def clock() -> float:
    """Seconds on the simulated DPU's clock (fake-only; the real time when not virtual)."""
    return _virtual_now[0] if _virtual() else time.monotonic()


def _schedule(runner_index: int) -> float:
    cores, job_s = _board()
    with _lock:
        while len(_core_free_at) < cores:
            _core_free_at.append(0.0)
        del _core_free_at[cores:]
        core = runner_index % cores
        start = max(clock(), _core_free_at[core])
        finish = start + job_s
        _core_free_at[core] = finish
        return finish


class Runner:
    """``vart.Runner``: create it with :meth:`create_runner`, never directly."""

    def __init__(self, subgraph: "xir.Subgraph", mode: str) -> None:
        self._subgraph = subgraph
        self._mode = mode
        self._index = next(_runner_ids)
        self._jobs: dict[int, float] = {}
        self._jobs_lock = threading.Lock()

    @staticmethod
    def create_runner(subgraph, mode: str = "") -> "Runner":
        if not isinstance(subgraph, xir.Subgraph):
            raise TypeError("create_runner(): incompatible function arguments. The following argument types are "
                            "supported:\n    1. (subgraph: xir::Subgraph, mode: str = '') -> vart::Runner")
        if not (subgraph.has_attr("device") and subgraph.get_attr("device").upper() == "DPU"):
            raise RuntimeError(f"[VART_NOT_DPU_SUBGRAPH] cannot create a DPU runner for subgraph {subgraph.get_name()}")
        return Runner(subgraph, mode)

    def get_input_tensors(self) -> list:
        return self._subgraph.get_input_tensors()

    def get_output_tensors(self) -> list:
        return self._subgraph.get_output_tensors()

    @staticmethod
    def _check(buffers, tensors, what: str) -> None:
        if not isinstance(buffers, list) or len(buffers) != len(tensors):
            raise ValueError(f"execute_async: expected a list of {len(tensors)} {what} buffers")
        for buf, tensor in zip(buffers, tensors):
            if not isinstance(buf, np.ndarray):
                raise TypeError(f"execute_async: {what} buffer for {tensor.name} is not a numpy array")
            if list(buf.shape) != tensor.dims:
                raise ValueError(f"execute_async: {what} buffer shape {list(buf.shape)} != tensor dims {tensor.dims}")
            if buf.dtype != np.int8:
                raise ValueError(f"execute_async: {what} buffer dtype {buf.dtype} is not int8")
            if not buf.flags["C_CONTIGUOUS"]:
                raise ValueError(f"execute_async: {what} buffer for {tensor.name} is not C-contiguous")

    def execute_async(self, inputs, outputs, enable_dynamic_array: bool = False):
        self._check(inputs, self.get_input_tensors(), "input")
        self._check(outputs, self.get_output_tensors(), "output")
        if not outputs[0].flags["WRITEABLE"]:
            raise ValueError("execute_async: output buffer is read-only")
        # deterministic outputs: class = (sum of the image's int8 values) mod classes
        batch = inputs[0].shape[0]
        sums = inputs[0].reshape(batch, -1)[:, :64].sum(axis=1, dtype=np.int64)
        for out in outputs:
            flat = out.reshape(batch, -1)
            flat[:] = -128
            flat[np.arange(batch), sums % flat.shape[1]] = 127
        finish = _schedule(self._index)
        job_id = next(_job_ids)
        with self._jobs_lock:
            self._jobs[job_id] = finish
        return (job_id, 0)

    def wait(self, job, timeout: int = -1) -> int:
        if not (isinstance(job, tuple) and len(job) == 2):
            raise TypeError("wait(): incompatible function arguments. The following argument types are supported:\n"
                            "    1. (self: vart.Runner, jobid: Tuple[int, int], timeout: int = -1) -> int")
        with self._jobs_lock:
            finish = self._jobs.pop(job[0], None)
        if finish is None:
            raise RuntimeError(f"[VART_INVALID_JOB_ID] job {job[0]} is unknown or was waited for already")
        if _virtual():
            with _lock:
                _virtual_now[0] = max(_virtual_now[0], finish)
            return 0
        while (left := finish - time.monotonic()) > 0:
            time.sleep(left)
        return 0
