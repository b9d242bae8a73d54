"""Measuring a :class:`~anbench.plugin_types.DeviceRunner` with the statistical engine.

:func:`measure` prepares the runner, lets :func:`anbench.measure.engine.run_engine` time
windows of batches, and turns seconds per batch into the stored metrics:

* throughput (``throughput_ips_*``, images/s at ``request.batch_size``; with
  ``request.mode == "train"``: ``train_throughput_ips_*``, forward + backward + optimizer
  step);
* latency (``latency_ms_*``, ms per batch at the device's smallest batch, 1 unless the
  runner says ``min_batch_size``; ``latency_ms_per_image_mean`` divides by that batch).

Each metric stores mean, std (over windows), median, the confidence interval, n, the
warm-up discarded, its raw window samples, and the verdict with reasons; the measurement's
verdict is INVALID when any metric's is.

A window is timed by the runner's optional ``timed_run(prepared, batches) -> seconds``
(device timers, e.g. CUDA events; it may return ``(seconds, discard_reason)``), else by
the wall clock around ``run()``, which synchronises by contract.

:class:`TimingPolicy` (warm-up batches, repeats, batches per repeat) is the original fixed
procedure; it runs as the engine's ``fixed`` schedule.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..errors import AnbenchError
from ..plugin_types import DeviceRunner, MeasureRequest
from .engine import INVALID, VALID, CombinedMonitor, EnginePolicy, EngineProgress, EngineResult, HostMonitor, PolicyError, run_engine


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

    def to_engine(self, **changes: Any) -> EnginePolicy:
        return engine_policy(schedule="fixed", fixed_warmup_units=self.warmup_batches, fixed_windows=self.repeats,
                             fixed_units_per_window=self.batches_per_repeat, **changes)


def engine_policy(**fields: Any) -> EnginePolicy:
    """An :class:`EnginePolicy`, its errors as :class:`AnbenchError` (they come from user options)."""
    try:
        return EnginePolicy(**fields)
    except PolicyError as exc:
        raise AnbenchError(str(exc)) from None


@dataclass
class Measurement:
    """Flat metrics with units in the names, the engine results behind them and the device facts."""

    throughput_ips_mean: float | None = None
    throughput_ips_std: float | None = None
    latency_ms_mean: float | None = None
    latency_ms_std: float | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    results: dict[str, EngineResult] = field(default_factory=dict)  # metric prefix -> engine result
    flat: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict)  # runner.describe() taken while prepared

    @property
    def verdict(self) -> str:
        return INVALID if any(not r.valid for r in self.results.values()) else VALID

    @property
    def reasons(self) -> list[str]:
        return [f"{name}: {reason}" for name, r in self.results.items() for reason in r.reasons]

    def metrics(self) -> dict[str, Any]:
        out = dict(self.flat)
        out["samples"] = self.samples
        out["verdict"] = self.verdict
        out["reasons"] = self.reasons
        out["engine"] = {name: _engine_facts(r) for name, r in self.results.items()}
        hosts = {name: r.host for name, r in self.results.items() if r.host}
        if hosts:
            out["host_noise"] = hosts
        return out


def _engine_facts(result: EngineResult) -> dict[str, Any]:
    return {"schedule": result.schedule, "units_per_window": result.units_per_window,
            "warmup_units": result.warmup_units, "units_total": result.units_total,
            "elapsed_s": round(result.elapsed_s, 3), "autocorrelation": result.autocorrelation,
            "discarded": [list(d) for d in result.discarded], "confidence": result.confidence,
            "seconds_per_batch": result.samples}


def _rate_stats(prefix: str, result: EngineResult, batch: int) -> dict[str, Any]:
    """Images/s from seconds per batch: the mean rate is batch / mean time (total images / total time)."""
    rates = [batch / s for s in result.samples if s > 0]
    out: dict[str, Any] = {f"{prefix}_mean": batch / result.mean if result.mean else None,
                           f"{prefix}_std": statistics.stdev(rates) if len(rates) > 1 else None,
                           f"{prefix}_median": batch / result.median if result.median else None}
    ci = result.rate_ci
    out[f"{prefix}_ci_low"], out[f"{prefix}_ci_high"] = (batch * ci[0], batch * ci[1]) if ci else (None, None)
    return out


def _ms_stats(prefix: str, result: EngineResult) -> dict[str, Any]:
    def ms(value):
        return None if value is None else 1000.0 * value

    return {f"{prefix}_mean": ms(result.mean), f"{prefix}_std": ms(result.std), f"{prefix}_median": ms(result.median),
            f"{prefix}_ci_low": ms(result.ci_low), f"{prefix}_ci_high": ms(result.ci_high)}


def _common(prefix: str, result: EngineResult) -> dict[str, Any]:
    return {f"{prefix}_n": result.n, f"{prefix}_warmup_discarded": result.warmup_discarded,
            f"{prefix}_verdict": result.verdict}


def _step(runner: DeviceRunner, prepared: Any) -> Callable[[int], Any]:
    timed = getattr(runner, "timed_run", None)
    if timed is not None:
        return lambda units: timed(prepared, units)

    def step(units: int) -> float:
        start = time.perf_counter()
        runner.run(prepared, units)
        return time.perf_counter() - start

    return step


MonitorFactory = Callable[[dict], "HostMonitor | None"]


def _timed(runner: DeviceRunner, request: MeasureRequest, policy: EnginePolicy, monitor: MonitorFactory | None,
           on_window: Callable[[EngineProgress], None] | None, facts_out: dict) -> EngineResult:
    prepared = runner.prepare(request)
    try:
        if not facts_out:
            # after prepare: thread counts, affinity and compile settings are the ones in force
            facts_out.update(runner.describe())
        watcher = monitor(facts_out) if monitor is not None else None
        device_monitor = getattr(runner, "device_monitor", None)
        if device_monitor is not None:
            watcher = CombinedMonitor(watcher, device_monitor(prepared))
        return run_engine(_step(runner, prepared), policy, monitor=watcher, on_window=on_window)
    finally:
        runner.release(prepared)


def measure(runner: DeviceRunner, request: MeasureRequest, policy: TimingPolicy | EnginePolicy = EnginePolicy(),
            latency: bool = True, throughput: bool = True, *, monitor: MonitorFactory | None = None,
            on_status: Callable[[str], None] | None = None) -> Measurement:
    """Throughput at ``request.batch_size`` and latency at the smallest batch, as asked.

    :param monitor: called with the device facts once prepared; returns the host monitor
        for each timed run (or None).
    :param on_status: receives a short live line after each window.
    """
    engine = policy.to_engine() if isinstance(policy, TimingPolicy) else policy
    result = Measurement()
    train = request.mode == "train"

    def watcher(name: str) -> Callable[[EngineProgress], None] | None:
        if on_status is None:
            return None

        def show(p: EngineProgress) -> None:
            mean = f"{1000 * p.mean:.2f} ms/batch" if p.mean else "-"
            ci = f" ±{p.rel_halfwidth:.1%}" if p.rel_halfwidth is not None else ""
            on_status(f"{name} {p.phase}: {p.kept} windows kept, {mean}{ci}, {p.elapsed_s:.0f} s")

        return show

    if throughput:
        prefix = "train_throughput_ips" if train else "throughput_ips"
        timed = _timed(runner, request, engine, monitor, watcher(prefix), result.device)
        result.results[prefix] = timed
        result.flat.update(_rate_stats(prefix, timed, request.batch_size))
        result.flat.update(_common(prefix, timed))
        result.samples[prefix] = [request.batch_size / s for s in timed.samples if s > 0]
        if not train:
            result.throughput_ips_mean = result.flat[f"{prefix}_mean"]
            result.throughput_ips_std = result.flat[f"{prefix}_std"]
    if latency and not train:
        batch = int(getattr(runner, "min_batch_size", 1) or 1)
        timed = _timed(runner, replace(request, batch_size=batch), engine, monitor, watcher("latency_ms"),
                       result.device)
        result.results["latency_ms"] = timed
        result.flat.update(_ms_stats("latency_ms", timed))
        result.flat.update(_common("latency_ms", timed))
        result.flat["latency_batch_size"] = batch
        if timed.mean:
            result.flat["latency_ms_per_image_mean"] = 1000.0 * timed.mean / batch
        result.samples["latency_ms"] = [1000.0 * s for s in timed.samples]
        result.latency_ms_mean = result.flat["latency_ms_mean"]
        result.latency_ms_std = result.flat["latency_ms_std"]
    return result
