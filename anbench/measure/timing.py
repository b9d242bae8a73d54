"""A plain timing loop over a :class:`~anbench.plugin_types.DeviceRunner`.

Throughput: after ``warmup_batches``, ``repeats`` windows of ``batches_per_repeat``
batches at ``batch_size``; each window gives images/s = batch_size x batches / seconds.
Latency: the same at batch size 1, each window giving ms per batch. Reported as mean and
sample standard deviation over windows, with the raw window values kept.

The statistical engine (steady-state detection, confidence intervals) replaces the
window policy, not this interface: it takes a runner and a request and returns a
:class:`Measurement`.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import AnbenchError
from ..plugin_types import DeviceRunner, MeasureRequest


@dataclass(frozen=True)
class TimingPolicy:
    warmup_batches: int = 2
    repeats: int = 5
    batches_per_repeat: int = 3

    def __post_init__(self) -> None:
        if self.warmup_batches < 0 or self.repeats < 1 or self.batches_per_repeat < 1:
            raise AnbenchError("timing needs warmup >= 0, repeats >= 1 and batches per repeat >= 1")

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Measurement:
    """Flat metrics with units in the names, plus the raw window values."""

    throughput_ips_mean: float | None = None
    throughput_ips_std: float | None = None
    latency_ms_mean: float | None = None
    latency_ms_std: float | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("throughput_ips", "latency_ms"):
            mean = getattr(self, f"{key}_mean")
            if mean is not None:
                out[f"{key}_mean"] = mean
                out[f"{key}_std"] = getattr(self, f"{key}_std")
        out["samples"] = self.samples
        return out


def _windows(runner: DeviceRunner, request: MeasureRequest, policy: TimingPolicy) -> list[float]:
    """Seconds per window, device-synchronised by the runner's contract."""
    prepared = runner.prepare(request)
    try:
        if policy.warmup_batches:
            runner.run(prepared, policy.warmup_batches)
        seconds = []
        for _ in range(policy.repeats):
            start = time.perf_counter()
            runner.run(prepared, policy.batches_per_repeat)
            seconds.append(time.perf_counter() - start)
        return seconds
    finally:
        runner.release(prepared)


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def measure(runner: DeviceRunner, request: MeasureRequest, policy: TimingPolicy = TimingPolicy(),
            latency: bool = True, throughput: bool = True) -> Measurement:
    """Throughput at ``request.batch_size`` and latency at batch 1, as asked."""
    result = Measurement()
    if throughput:
        seconds = _windows(runner, request, policy)
        ips = [request.batch_size * policy.batches_per_repeat / s for s in seconds]
        result.throughput_ips_mean, result.throughput_ips_std = _mean_std(ips)
        result.samples["throughput_ips"] = ips
    if latency:
        seconds = _windows(runner, replace(request, batch_size=1), policy)
        ms = [1000.0 * s / policy.batches_per_repeat for s in seconds]
        result.latency_ms_mean, result.latency_ms_std = _mean_std(ms)
        result.samples["latency_ms"] = ms
    return result
