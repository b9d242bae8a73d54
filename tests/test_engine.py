"""The measurement engine on synthetic timing streams with known warm-up and noise.

The streams report device seconds without sleeping and the engine runs on a frozen
clock, so every test is deterministic and instantaneous.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from anbench.measure.engine import (INVALID, VALID, EnginePolicy, PolicyError, level_shift, mean_ci,
                                    mser_truncation, run_engine, t_quantile)


class Stream:
    """Seconds per unit: ``base`` x (1 + warm-up excess) x (1 + noise); units count from 0."""

    def __init__(self, base=0.01, cv=0.03, warmup_units=0, warmup_excess=0.5, seed=0, shift_at=None, shift=0.0):
        self.base, self.cv, self.rng = base, cv, random.Random(seed)
        self.warmup_units, self.warmup_excess = warmup_units, warmup_excess
        self.shift_at, self.shift = shift_at, shift
        self.units = 0
        self.calls: list[int] = []

    def per_unit(self, index: int) -> float:
        factor = 1.0
        if index < self.warmup_units:
            factor += self.warmup_excess * (1 - index / self.warmup_units)
        if self.shift_at is not None and index >= self.shift_at:
            factor += self.shift
        return self.base * factor

    def __call__(self, units: int) -> float:
        self.calls.append(units)
        mean = sum(self.per_unit(self.units + i) for i in range(units))
        self.units += units
        # per-unit noise adds up: a window of k units has k**0.5 times one unit's spread
        return mean + self.rng.gauss(0, self.cv * self.base * units ** 0.5)


FROZEN = dict(clock=lambda: 0.0)


def test_t_quantiles_match_tables():
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.975, 9) == pytest.approx(2.262, abs=1e-3)
    assert t_quantile(0.975, 100) == pytest.approx(1.984, abs=1e-3)
    assert t_quantile(0.995, 20) == pytest.approx(2.845, abs=1e-3)
    assert t_quantile(0.975, 30) == pytest.approx(2.042, abs=1e-3)
    assert t_quantile(0.975, 19) == pytest.approx(2.093, abs=1e-3)  # the exact branch


def test_mser_finds_the_end_of_a_known_warmup():
    rng = random.Random(1)
    values = [2.0 - i / 30 + rng.gauss(0, 0.02) for i in range(30)] + [1.0 + rng.gauss(0, 0.02) for _ in range(70)]
    assert 26 <= mser_truncation(values) <= 34
    assert mser_truncation([1.0 + rng.gauss(0, 0.02) for _ in range(100)]) < 10


def test_mser_batches_of_five():
    rng = random.Random(2)
    values = [1.5] * 40 + [1.0 + rng.gauss(0, 0.01) for _ in range(160)]
    assert 40 <= mser_truncation(values, batch=5) <= 60  # all of the transient, little more


def test_level_shift_seen_only_when_present():
    rng = random.Random(3)
    steady = [1 + rng.gauss(0, 0.01) for _ in range(60)]
    assert level_shift(steady) is None
    jumped = steady[:40] + [v + 0.2 for v in steady[40:]]
    assert level_shift(jumped) == pytest.approx(0.2 / (1 + 0.2 / 3), rel=0.1)


def test_engine_discards_a_known_warmup_and_finds_the_mean():
    stream = Stream(base=0.01, cv=0.03, warmup_units=300, warmup_excess=0.5, seed=4)
    result = run_engine(stream, EnginePolicy(min_window_s=0.05, budget_s=600), **FROZEN)
    assert result.verdict == VALID, result.reasons
    assert result.units_per_window * 0.01 >= 0.03  # sized while still slow, never tiny
    # the transient (first 300 units, up to 50% slower) is dropped, not averaged in
    assert 250 <= result.warmup_units <= 600
    assert result.ci_low <= 0.01 <= result.ci_high
    assert result.rel_halfwidth <= 0.01
    assert result.rate_mean == pytest.approx(100, rel=0.02)
    assert len(result.samples) == result.n and result.n >= 10


def test_a_slow_first_call_does_not_size_the_windows():
    stream = Stream(base=0.001, cv=0.02, seed=17)

    def step(units):
        seconds = stream(units)
        return seconds + (3.0 if len(stream.calls) == 1 else 0.0)  # one-off compile in the first call

    result = run_engine(step, EnginePolicy(min_window_s=0.05, budget_s=600), **FROZEN)
    assert result.units_per_window * 0.001 >= 0.05
    assert result.verdict == VALID, result.reasons


def test_without_truncation_the_warmup_would_bias_the_mean():
    stream = Stream(base=0.01, cv=0.03, warmup_units=300, warmup_excess=0.5, seed=4)
    result = run_engine(stream, EnginePolicy(min_window_s=0.05, budget_s=600), **FROZEN)
    naive = sum(result.all_samples) / len(result.all_samples)
    assert naive > result.ci_high  # averaging everything lies outside the engine's CI


def test_ci_covers_the_true_mean_at_about_the_nominal_rate():
    covered = 0
    trials = 200
    for seed in range(trials):
        stream = Stream(base=0.02, cv=0.05, warmup_units=20, warmup_excess=0.3, seed=100 + seed)
        result = run_engine(stream, EnginePolicy(min_window_s=0.04, ci_target=0.02, budget_s=600), **FROZEN)
        assert result.verdict == VALID, result.reasons
        covered += result.ci_low <= 0.02 <= result.ci_high
    assert 0.88 * trials <= covered <= 0.995 * trials


def test_budget_too_small_is_invalid_with_the_reason():
    stream = Stream(base=0.01, cv=0.2, seed=5)
    result = run_engine(stream, EnginePolicy(min_window_s=0.01, ci_target=0.001, budget_s=2.0), **FROZEN)
    assert result.verdict == INVALID
    assert any(r.startswith("CI target not reached within budget") for r in result.reasons)
    assert result.elapsed_s == pytest.approx(2.0, abs=0.1)


def test_sample_budget_is_respected():
    stream = Stream(base=0.01, cv=0.2, seed=6)
    result = run_engine(stream, EnginePolicy(min_window_s=0.01, ci_target=0.001, max_windows=40, budget_s=1e6),
                        **FROZEN)
    assert result.verdict == INVALID
    assert len(stream.calls) == 40


def test_a_jump_late_in_the_stream_is_invalid():
    stream = Stream(base=0.01, cv=0.01, seed=7, shift_at=1500, shift=0.3)
    result = run_engine(stream, EnginePolicy(min_window_s=0.05, ci_target=0.0005, budget_s=20), **FROZEN)
    assert result.verdict == INVALID
    assert any("not steady" in r or "warm-up did not end" in r for r in result.reasons), result.reasons


def test_a_permanent_shift_early_enough_is_treated_as_warmup():
    stream = Stream(base=0.01, cv=0.02, seed=8, shift_at=100, shift=-0.3)
    result = run_engine(stream, EnginePolicy(min_window_s=0.05, budget_s=600), **FROZEN)
    assert result.verdict == VALID, result.reasons
    assert result.ci_low <= 0.007 <= result.ci_high


def test_windows_with_a_discard_reason_are_dropped_and_counted():
    stream = Stream(base=0.01, cv=0.02, seed=9)

    def step(units):
        seconds = stream(units)
        # every third timed window "recompiled" and ran 10x slower
        if len(stream.calls) > 3 and len(stream.calls) % 3 == 0:
            return seconds * 10, "XLA compiled during the window"
        return seconds

    result = run_engine(step, EnginePolicy(min_window_s=0.05, budget_s=30), **FROZEN)
    assert result.verdict == INVALID
    assert any(r.startswith("recompilation during a timed window") for r in result.reasons)
    assert max(result.samples) < 2 * 0.01  # the slow windows never entered the statistics
    assert result.discarded and result.discarded[0][1] == "XLA compiled during the window"


def test_a_discard_during_warmup_only_is_fine():
    stream = Stream(base=0.01, cv=0.02, seed=10)

    def step(units):
        seconds = stream(units)
        return (seconds * 5, "compiled") if len(stream.calls) <= 4 else seconds

    result = run_engine(step, EnginePolicy(min_window_s=0.05, budget_s=600), **FROZEN)
    assert result.verdict == VALID, result.reasons
    # the first timed window compiled: dropped and recorded, yet no reason (it was warm-up)
    assert result.discarded == [(0, "compiled")]


def test_fixed_schedule_runs_exactly_the_original_procedure():
    stream = Stream(base=0.01, cv=0.02, seed=11)
    policy = EnginePolicy(schedule="fixed", fixed_warmup_units=2, fixed_windows=5, fixed_units_per_window=3)
    result = run_engine(stream, policy, **FROZEN)
    assert stream.calls == [2, 3, 3, 3, 3, 3]
    assert result.n == 5 and result.units_per_window == 3 and result.warmup_discarded == 1
    assert result.units_total == 17
    assert result.schedule == "fixed"


def test_fixed_schedule_reports_a_missed_ci_target():
    stream = Stream(base=0.01, cv=0.3, seed=12)
    policy = EnginePolicy(schedule="fixed", fixed_warmup_units=1, fixed_windows=3, fixed_units_per_window=1)
    result = run_engine(stream, policy, **FROZEN)
    assert result.verdict == INVALID and "CI target not reached" in result.reasons[0]


class FakeMonitor:
    def __init__(self, reasons):
        self.reasons, self.events = reasons, []

    def start(self):
        self.events.append("start")

    def finish(self):
        self.events.append("finish")
        return {"load_1m": 3.0}, list(self.reasons)


def test_host_monitor_reasons_make_it_invalid():
    monitor = FakeMonitor(["host busy: load 3.0 on 2 cores"])
    result = run_engine(Stream(seed=13), EnginePolicy(min_window_s=0.05), monitor=monitor, **FROZEN)
    assert monitor.events == ["start", "finish"]
    assert result.verdict == INVALID and result.reasons == ["host busy: load 3.0 on 2 cores"]
    assert result.host == {"load_1m": 3.0}


def test_quiet_monitor_keeps_it_valid_and_progress_is_reported():
    progress = []
    result = run_engine(Stream(seed=14), EnginePolicy(min_window_s=0.05), monitor=FakeMonitor([]),
                        on_window=progress.append, **FROZEN)
    assert result.verdict == VALID
    assert progress[0].phase == "calibrating" and progress[-1].phase == "measuring"
    assert progress[-1].rel_halfwidth is not None


def test_result_serialises_to_json():
    result = run_engine(Stream(seed=15), EnginePolicy(min_window_s=0.05), **FROZEN)
    data = json.loads(json.dumps(result.to_dict()))
    for key in ("mean", "std", "median", "ci_low", "ci_high", "n", "warmup_discarded", "samples", "verdict",
                "reasons", "rel_halfwidth"):
        assert key in data
    assert data["verdict"] == VALID and len(data["samples"]) == data["n"]


@pytest.mark.parametrize("changes, text", [
    (dict(schedule="random"), "schedule must be"),
    (dict(ci_target=0), "ci_target"),
    (dict(min_windows=2), "min_windows"),
    (dict(budget_s=0), "budget_s"),
    (dict(budget_s=float("nan")), "budget_s must be a finite number"),
    (dict(budget_s=float("inf")), "budget_s must be a finite number"),
    (dict(min_window_s=float("nan")), "min_window_s must be a finite number"),
    (dict(ci_target=float("nan")), "ci_target"),
    (dict(fixed_windows=0), "fixed schedule"),
])
def test_impossible_policies_are_refused(changes, text):
    with pytest.raises(PolicyError, match=text):
        EnginePolicy(**changes)


def test_mean_ci_widens_for_autocorrelated_windows():
    rng = random.Random(16)
    values, x = [], 0.0
    for _ in range(200):
        x = 0.8 * x + rng.gauss(0, 0.01)
        values.append(1 + x)
    mean, low, high, r1 = mean_ci(values)
    shuffled = values[:]
    rng.shuffle(shuffled)
    _, slow, shigh, _ = mean_ci(shuffled)
    assert r1 > 0.5 and (high - low) > 2 * (shigh - slow)


def test_engine_module_needs_neither_torch_nor_numpy():
    code = ("import sys; sys.modules['numpy'] = None; sys.modules['torch'] = None\n"
            "import importlib.util, pathlib\n"
            "spec = importlib.util.spec_from_file_location('engine', sys.argv[1])\n"
            "m = importlib.util.module_from_spec(spec); sys.modules['engine'] = m; spec.loader.exec_module(m)\n"
            "r = m.run_engine(lambda u: 0.01 * u, m.EnginePolicy(min_window_s=0.01), clock=lambda: 0.0)\n"
            "print(r.verdict)")
    import anbench.measure.engine as engine

    out = subprocess.run([sys.executable, "-c", code, engine.__file__], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "VALID"
