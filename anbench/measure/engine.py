"""The statistical measurement engine: times a step function until its mean is known.

Torch-free and stdlib-only on purpose: a DPU board's own Python runs this file as is.

Contract of the step function: ``step(units) -> seconds`` runs ``units`` work units
(batches, jobs) to completion (the caller synchronises its device before returning) and
returns the elapsed seconds. It may also return ``(seconds, discard_reason)``; a non-empty
reason drops that window (e.g. "XLA compiled during the window").

What the engine does (``schedule="adaptive"``):

1. *Calibration*: windows of growing size (the first call, which carries one-off costs,
   aside) until one lasts ``min_window_s``; from then on every window has the same number
   of units, so windows are comparable samples.
2. *Warm-up*: the end of the transient is found by MSER truncation (White 1997; MSER-m with
   ``mser_batch`` windows per batch). Until the optimum lies in the first half of the series
   and the kept part shows no level shift, the rate is not steady and measuring goes on.
3. *Stopping*: the kept windows give the mean seconds per unit and a Student-t confidence
   interval (variance inflated for positive lag-1 autocorrelation). Measuring stops when the
   relative half-width is within ``ci_target`` and at least ``min_windows`` windows and
   ``min_duration_s`` seconds were kept, or when the budget (``budget_s``, ``max_windows``)
   runs out; then the verdict is INVALID with the reasons.

``schedule="fixed"`` reproduces the original fixed procedures: ``fixed_warmup_units`` units,
then ``fixed_windows`` windows of ``fixed_units_per_window`` units, no adaptivity; its verdict
still reports a missed CI target or host noise.

All statistics are in **seconds per unit**; ``rate_*`` give units per second.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol, Sequence

VALID = "VALID"
INVALID = "INVALID"
SCHEDULES = ("adaptive", "fixed")


class PolicyError(ValueError):
    """An impossible engine policy (callers turn it into their user-facing error)."""


@dataclass(frozen=True)
class EnginePolicy:
    """How long and how precisely to measure. Times in seconds; ``ci_target`` relative."""

    schedule: str = "adaptive"
    ci_target: float = 0.01          # 95% CI half-width / mean
    confidence: float = 0.95
    min_window_s: float = 0.05       # a window lasts at least this long (timer and jitter)
    min_windows: int = 10            # kept after warm-up
    min_duration_s: float = 1.0      # kept after warm-up
    budget_s: float = 60.0           # everything: calibration, warm-up, measuring
    max_windows: int = 1000          # sample budget, all windows counted
    mser_batch: int = 1
    max_shift: float = 0.02          # relative level shift inside the kept part that means "not steady"
    max_discard_fraction: float = 0.1
    fixed_warmup_units: int = 2
    fixed_windows: int = 5
    fixed_units_per_window: int = 3

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise PolicyError(f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if not 0 < self.ci_target < 1:
            raise PolicyError(f"ci_target is a fraction of the mean in (0, 1), not {self.ci_target}")
        if not 0.5 <= self.confidence < 1:
            raise PolicyError(f"confidence must be in [0.5, 1), not {self.confidence}")
        if self.min_windows < 3 or self.max_windows < self.min_windows:
            raise PolicyError("need 3 <= min_windows <= max_windows")
        # nan passes every "< 0" test and inf would never end the run: both are refused first
        times = {"budget_s": self.budget_s, "min_window_s": self.min_window_s, "min_duration_s": self.min_duration_s,
                 "max_shift": self.max_shift, "max_discard_fraction": self.max_discard_fraction}
        for name, value in times.items():
            if not math.isfinite(value):
                raise PolicyError(f"{name} must be a finite number, not {value}")
        if self.budget_s <= 0 or self.min_window_s < 0 or self.min_duration_s < 0:
            raise PolicyError("budget_s must be positive; min_window_s and min_duration_s not negative")
        if self.mser_batch < 1:
            raise PolicyError("mser_batch must be >= 1")
        if self.fixed_warmup_units < 0 or self.fixed_windows < 1 or self.fixed_units_per_window < 1:
            raise PolicyError("fixed schedule needs warm-up >= 0, windows >= 1 and units per window >= 1")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.schedule == "adaptive":
            for key in ("fixed_warmup_units", "fixed_windows", "fixed_units_per_window"):
                data.pop(key)
        return data


class HostMonitor(Protocol):
    """Watches the host around a measurement (see :mod:`anbench.measure.host_noise`)."""

    def start(self) -> None: ...

    def finish(self) -> tuple[dict[str, Any], list[str]]:
        """Facts to record and reasons that make the measurement INVALID (empty: quiet)."""


class CombinedMonitor:
    """Several monitors as one: facts merged (later keys win), reasons concatenated."""

    def __init__(self, *monitors: HostMonitor | None) -> None:
        self.monitors = [m for m in monitors if m is not None]

    def start(self) -> None:
        for monitor in self.monitors:
            monitor.start()

    def finish(self) -> tuple[dict[str, Any], list[str]]:
        facts: dict[str, Any] = {}
        reasons: list[str] = []
        for monitor in self.monitors:
            more, why = monitor.finish()
            facts.update(more)
            reasons.extend(why)
        return facts, reasons


@dataclass
class EngineProgress:
    """What a live status line shows after each window."""

    phase: str                 # "calibrating" | "warm-up" | "measuring"
    windows: int
    kept: int
    mean: float | None         # seconds per unit over the kept windows
    rel_halfwidth: float | None
    elapsed_s: float


@dataclass
class EngineResult:
    """Seconds per unit over the kept windows, the raw windows and the verdict."""

    mean: float | None
    std: float | None
    median: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    warmup_discarded: int        # windows before the first kept one (calibration included)
    samples: list[float]         # kept windows, seconds per unit
    verdict: str
    reasons: list[str]
    units_per_window: int
    schedule: str
    confidence: float
    all_samples: list[float] = field(default_factory=list)  # every timed window, seconds per unit
    window_units: list[int] = field(default_factory=list)
    discarded: list[tuple[int, str]] = field(default_factory=list)  # (window index, why)
    units_total: int = 0
    elapsed_s: float = 0.0
    warmup_units: int = 0
    autocorrelation: float | None = None
    host: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.verdict == VALID

    @property
    def rel_halfwidth(self) -> float | None:
        if self.mean is None or self.ci_high is None:
            return None
        return rel_halfwidth(self.mean, self.ci_low, self.ci_high)

    @property
    def rate_mean(self) -> float | None:
        """Units per second (the reciprocal of the mean time per unit)."""
        return 1.0 / self.mean if self.mean else None

    @property
    def rate_ci(self) -> tuple[float, float] | None:
        if not self.ci_low or not self.ci_high or self.ci_low <= 0:
            return None
        return 1.0 / self.ci_high, 1.0 / self.ci_low

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["discarded"] = [list(item) for item in self.discarded]
        data["rel_halfwidth"] = self.rel_halfwidth
        return data


# --- statistics --------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (p >= 0.5) of Student's t with ``df`` degrees of freedom.

    From 20 degrees of freedom on, the Cornish-Fisher expansion around the normal quantile
    (Abramowitz & Stegun 26.7.5; error below 1e-4 there); below, bisection on the exact
    CDF (regularised incomplete beta). Stdlib only, and cheap enough to call per window.
    """
    if df < 1:
        raise ValueError("df must be >= 1")
    if df >= 20:
        z = statistics.NormalDist().inv_cdf(p)
        g1 = (z**3 + z) / 4
        g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
        g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
        g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
        return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(80):
        mid = (lo + hi) / 2
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _t_cdf(t: float, df: int) -> float:
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2, 0.5, x)
    return 1 - tail if t >= 0 else tail


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) (continued fraction, Numerical Recipes 6.4)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-12:
            break
    return h


def lag1_autocorrelation(values: Sequence[float]) -> float | None:
    n = len(values)
    if n < 4:
        return None
    mean = statistics.fmean(values)
    var = sum((v - mean) ** 2 for v in values)
    if var == 0:
        return 0.0
    return sum((values[i] - mean) * (values[i + 1] - mean) for i in range(n - 1)) / var


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float, float | None]:
    """(mean, ci_low, ci_high, lag-1 autocorrelation) of ``values``.

    Positive lag-1 autocorrelation r shrinks the effective sample size by (1 - r)/(1 + r)
    (AR(1) approximation); ignoring it would make the interval too narrow on drifting hosts.
    """
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, mean, mean, None
    sd = statistics.stdev(values)
    r1 = lag1_autocorrelation(values)
    inflation = (1 + r1) / (1 - r1) if r1 is not None and 0 < r1 < 0.95 else (39.0 if r1 and r1 >= 0.95 else 1.0)
    half = t_quantile((1 + confidence) / 2, n - 1) * sd * math.sqrt(inflation / n)
    return mean, mean - half, mean + half, r1


def rel_halfwidth(mean: float, low: float, high: float) -> float | None:
    """The CI's half-width as a fraction of the mean; None when the mean is not positive."""
    return (high - low) / 2 / mean if mean > 0 else None


def mser_truncation(values: Sequence[float], batch: int = 1) -> int:
    """The number of leading values to drop (MSER-``batch``).

    MSER picks d minimising the variance of the mean of the remaining values,
    sum((x_i - mean_d)^2) / (n - d)^2, computed on batch means, searched over the first half
    only (over the last batches the statistic is noise). An answer at that bound means the
    transient may not have ended yet.
    """
    nb = len(values) // batch
    if nb < 6:
        return 0
    means = [statistics.fmean(values[i * batch:(i + 1) * batch]) for i in range(nb)]
    suffix_sum = [0.0] * (nb + 1)
    suffix_sq = [0.0] * (nb + 1)
    for i in range(nb - 1, -1, -1):
        suffix_sum[i] = suffix_sum[i + 1] + means[i]
        suffix_sq[i] = suffix_sq[i + 1] + means[i] * means[i]
    best_d, best = 0, math.inf
    for d in range(0, nb // 2 + 1):
        k = nb - d
        sse = suffix_sq[d] - suffix_sum[d] ** 2 / k
        stat = max(sse, 0.0) / (k * k)
        if stat < best:
            best_d, best = d, stat
    return best_d * batch


def level_shift(values: Sequence[float], confidence: float = 0.99) -> float | None:
    """Relative difference of the first and last thirds' means when significant (Welch), else None."""
    n = len(values)
    if n < 9:
        return None
    third = n // 3
    first, last = values[:third], values[-third:]
    m1, m2 = statistics.fmean(first), statistics.fmean(last)
    se = math.sqrt(statistics.variance(first) / third + statistics.variance(last) / third)
    overall = statistics.fmean(values)
    if overall <= 0:
        return None
    if se == 0:
        return (m2 - m1) / overall if m1 != m2 else None
    if abs(m2 - m1) / se < t_quantile((1 + confidence) / 2, 2 * third - 2):
        return None
    return (m2 - m1) / overall


# --- the loop ---------------------------------------------------------------------------


def _call(step: Callable[[int], Any], units: int) -> tuple[float, str]:
    out = step(units)
    if isinstance(out, tuple):
        seconds, reason = out
        return float(seconds), reason or ""
    return float(out), ""


class _Run:
    def __init__(self, step, policy: EnginePolicy, on_window, clock) -> None:
        self.step, self.policy, self.on_window, self.clock = step, policy, on_window, clock
        self.t0 = clock()
        self.device_s = 0.0
        self.windows: list[float] = []     # seconds per unit, timed windows of the fixed size
        self.window_units: list[int] = []
        self.window_index: list[int] = []  # each kept-able window's index among all timed windows
        self.discarded: list[tuple[int, str]] = []
        self.calibration = 0                # leading windows that were calibration/fixed warm-up
        self.units_total = 0
        self.warmup_units = 0

    def elapsed(self) -> float:
        # synthetic steps report device time faster than the wall clock moves
        return max(self.device_s, self.clock() - self.t0)

    def window(self, units: int) -> tuple[float, str]:
        seconds, reason = _call(self.step, units)
        self.device_s += seconds
        self.units_total += units
        return seconds, reason

    def record(self, units: int, seconds: float, reason: str) -> None:
        index = len(self.windows) + len(self.discarded)  # among the timed windows, discarded ones included
        if reason:
            self.discarded.append((index, reason))
        else:
            self.windows.append(seconds / units)
            self.window_units.append(units)
            self.window_index.append(index)

    def progress(self, phase: str, kept: list[float]) -> None:
        if self.on_window is None:
            return
        mean = rel = None
        if len(kept) >= 2:
            mean, low, high, _ = mean_ci(kept, self.policy.confidence)
            rel = rel_halfwidth(mean, low, high)
        self.on_window(EngineProgress(phase, len(self.windows), len(kept), mean, rel, self.elapsed()))


def _calibrate(run: _Run) -> int:
    """Units per window so that one window lasts ``min_window_s``; calibration windows are warm-up."""
    policy, units = run.policy, 1
    while True:
        seconds, _ = run.window(units)
        run.calibration += 1
        run.warmup_units += units
        run.progress("calibrating", [])
        # the first call is never trusted for sizing: it carries lazy init, autotuning or an XLA compile
        if (seconds >= policy.min_window_s and run.calibration > 1) or run.elapsed() >= policy.budget_s:
            return units
        if run.calibration == 1:
            continue
        per_unit = max(seconds / units, 1e-9)
        wanted = math.ceil(policy.min_window_s * 1.2 / per_unit)
        units = max(units + 1, min(wanted, units * 8))


def _assess(run: _Run) -> tuple[int, list[float], list[str]]:
    """(warm-up windows to drop, kept windows, reasons the rate is not steady yet)."""
    values = run.windows
    drop = mser_truncation(values, run.policy.mser_batch)
    kept = values[drop:]
    unsteady = []
    if len(values) >= 8 and drop >= (len(values) // run.policy.mser_batch // 2) * run.policy.mser_batch:
        unsteady.append("warm-up did not end: the rate was still changing")
    shift = level_shift(kept)
    if shift is not None and abs(shift) > run.policy.max_shift:
        unsteady.append(f"rate not steady: it moved {shift:+.1%} within the measurement")
    return drop, kept, unsteady


def _summarise(run: _Run, drop: int, kept: list[float], reasons: list[str], units_per_window: int) -> EngineResult:
    policy = run.policy
    mean = std = median = low = high = r1 = None
    if kept:
        mean, low, high, r1 = mean_ci(kept, policy.confidence)
        std = statistics.stdev(kept) if len(kept) > 1 else None
        median = statistics.median(kept)
        rel = rel_halfwidth(mean, low, high)
        if len(kept) < 2 or rel is None or rel > policy.ci_target:
            shown = f"{rel:.2%}" if len(kept) > 1 and rel is not None else "undefined"
            reasons.append(f"CI target not reached within budget: ±{shown} > ±{policy.ci_target:.2%} "
                           f"after {len(kept)} windows, {run.elapsed():.1f} s")
    else:
        reasons.append("no window could be kept")
    # discards before the first kept window are warm-up; after it, they cut into the measurement
    first_kept = run.window_index[drop] if drop < len(run.window_index) else math.inf
    late = [reason for i, reason in run.discarded if i > first_kept]
    if kept and len(late) > policy.max_discard_fraction * (len(kept) + len(late)):
        why = sorted(set(late))
        reasons.append(f"recompilation during a timed window: {len(late)} of {len(kept) + len(late)} "
                       f"windows discarded ({'; '.join(why)})")
    return EngineResult(
        mean=mean, std=std, median=median, ci_low=low, ci_high=high, n=len(kept),
        warmup_discarded=run.calibration + drop, samples=list(kept), verdict=INVALID if reasons else VALID,
        reasons=reasons, units_per_window=units_per_window, schedule=policy.schedule,
        confidence=policy.confidence, all_samples=list(run.windows), window_units=list(run.window_units),
        discarded=list(run.discarded), units_total=run.units_total, elapsed_s=run.elapsed(),
        warmup_units=run.warmup_units + units_per_window * drop, autocorrelation=r1,
    )


def _adaptive(run: _Run) -> EngineResult:
    policy = run.policy
    units = _calibrate(run)
    drop, kept, unsteady = 0, [], []
    next_check = 0
    while True:
        seconds, reason = run.window(units)
        run.record(units, seconds, reason)
        attempts = len(run.windows) + len(run.discarded)
        if len(run.windows) >= next_check:
            # re-assessing after every window is O(n^2); every ~5% keeps it O(n) amortised
            drop, kept, unsteady = _assess(run)
            next_check = len(run.windows) + max(1, len(run.windows) // 20)
            run.progress("warm-up" if unsteady or len(kept) < policy.min_windows else "measuring", kept)
            if not unsteady and len(kept) >= policy.min_windows and sum(kept) * units >= policy.min_duration_s:
                rel = rel_halfwidth(*mean_ci(kept, policy.confidence)[:3])
                if rel is not None and rel <= policy.ci_target:
                    return _summarise(run, drop, kept, [], units)
        if run.elapsed() >= policy.budget_s or attempts + run.calibration >= policy.max_windows:
            drop, kept, unsteady = _assess(run)
            reasons = list(unsteady)
            if len(kept) < policy.min_windows:
                reasons.append(f"too few windows: {len(kept)} kept, {policy.min_windows} needed")
            return _summarise(run, drop, kept, reasons, units)


def _fixed(run: _Run) -> EngineResult:
    policy = run.policy
    if policy.fixed_warmup_units:
        run.window(policy.fixed_warmup_units)
        run.calibration += 1
        run.warmup_units += policy.fixed_warmup_units
        run.progress("warm-up", [])
    for _ in range(policy.fixed_windows):
        seconds, reason = run.window(policy.fixed_units_per_window)
        run.record(policy.fixed_units_per_window, seconds, reason)
        run.progress("measuring", run.windows)
    return _summarise(run, 0, list(run.windows), [], policy.fixed_units_per_window)


def run_engine(step: Callable[[int], Any], policy: EnginePolicy = EnginePolicy(), *,
               monitor: HostMonitor | None = None, on_window: Callable[[EngineProgress], None] | None = None,
               clock: Callable[[], float] = time.perf_counter) -> EngineResult:
    """Measure ``step`` under ``policy``; see the module docstring for the procedure.

    :param monitor: watches the host from before the first window to after the last; its
        reasons make the verdict INVALID and its facts land in ``result.host``.
    :param on_window: called after each window (and each assessment) for a live status line.
    """
    if monitor is not None:
        monitor.start()
    run = _Run(step, policy, on_window, clock)
    result = _fixed(run) if policy.schedule == "fixed" else _adaptive(run)
    if monitor is not None:
        facts, host_reasons = monitor.finish()
        result.host = facts
        if host_reasons:
            result.reasons.extend(host_reasons)
            result.verdict = INVALID
    return result
