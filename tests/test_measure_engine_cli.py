"""``anbench measure`` on the engine: verdicts, CIs, host noise, schedules, options, and the
CPU device's recorded threads; ``results`` and ``export`` showing and filtering verdicts.

A registered test device reports synthetic device seconds (no sleeping), and the host
monitor is replaced by a fake whose verdict the test chooses, so nothing depends on how
busy the machine running the tests is.
"""

from __future__ import annotations

import csv
import json
import random

import pytest

from anbench import hookimpl
from anbench.measure import watched
from anbench.measure.engine import EnginePolicy
from anbench.plugins import get_host, reset_host
from anbench.searchspace import named
from anbench.store import Store
from anbench.testing import register_test_plugin


class TimerDevice:
    """Seconds per batch = 0.01 x batch/8 with 2% noise; the first 20 batches are slower."""

    name = "timer"
    summary = "synthetic device timer for tests"

    def __init__(self):
        self.rng = random.Random(0)
        self.done = 0
        self.requests = []

    def availability(self):
        return None

    def describe(self):
        return {"kind": "timer"}

    def fixed_schedule(self, batch_size):
        return {"warmup_batches": 4, "repeats": 3, "batches_per_repeat": 2}

    def prepare(self, request):
        self.requests.append(request)
        return request

    def timed_run(self, prepared, batches):
        seconds = 0.0
        for _ in range(batches):
            slow = 1.5 if self.done < 20 else 1.0
            seconds += 0.01 * prepared.batch_size / 8 * slow * (1 + self.rng.gauss(0, 0.02))
            self.done += 1
        return seconds

    def run(self, prepared, batches):
        self.timed_run(prepared, batches)

    def release(self, prepared):
        pass


class FakeMonitor:
    """Stands in for HostNoiseMonitor; ``FakeMonitor.verdicts`` pops one list of reasons per measurement."""

    verdicts: list = []
    created: list = []

    def __init__(self, threads=None, cores=None, limits=None, **kw):
        self.threads = threads
        self.cores = [0, 1]
        self.limits = limits
        FakeMonitor.created.append(self)

    def start(self):
        pass

    def finish(self):
        reasons = FakeMonitor.verdicts.pop(0) if FakeMonitor.verdicts else []
        return {"other_cores": 1.2 if reasons else 0.0}, list(reasons)

    def other_cores_threshold(self):
        return 0.25


@pytest.fixture
def timer(monkeypatch):
    reset_host()
    device = TimerDevice()

    class Plugin:
        @hookimpl
        def register_devices(self, register):
            register(device)

    register_test_plugin(get_host(), Plugin(), name="timer-test")
    FakeMonitor.verdicts, FakeMonitor.created = [], []
    monkeypatch.setattr(watched, "HostNoiseMonitor", FakeMonitor)
    yield device
    reset_host()


def results(store_path, target):
    with Store.open(store_path) as store:
        return store.results(stage="measure", target=target)


def test_measurement_stores_ci_verdict_and_raw_windows(run_cli, store_path, timer):
    out = run_cli("measure", "--device", "timer", "--arch", "smallest", "--batch-size", "8", "--format", "json")
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)
    assert row["verdict"] == "VALID" and row["reasons"] == []
    assert row["throughput_ips_ci_low"] < row["throughput_ips_mean"] < row["throughput_ips_ci_high"]
    # the true steady rate is 8 / 0.01 = 800 img/s; the slow first batches are warm-up
    assert row["throughput_ips_ci_low"] <= 800 * 1.005 and row["throughput_ips_ci_high"] >= 800 * 0.995
    (result,) = results(store_path, "timer")
    m = result.metrics
    assert m["throughput_ips_n"] == len(m["samples"]["throughput_ips"]) >= 10
    assert m["throughput_ips_warmup_discarded"] >= 1 and m["throughput_ips_median"] > 0
    assert (m["throughput_ips_ci_high"] - m["throughput_ips_ci_low"]) / 2 <= 0.01 * m["throughput_ips_mean"] * 1.01
    assert m["latency_batch_size"] == 1 and m["latency_ms_per_image_mean"] == m["latency_ms_mean"]
    assert m["engine"]["throughput_ips"]["schedule"] == "adaptive"
    assert result.settings["timing"] == {"schedule": "adaptive", "ci_target": 0.01}
    assert [r.batch_size for r in timer.requests] == [8, 1]


def test_busy_host_is_invalid_with_the_reason_and_export_can_leave_it_out(run_cli, store_path, timer, tmp_path):
    FakeMonitor.verdicts = [["host busy: load 3.10 on 2 cores; other processes used 1.20 cores (limit 0.25)"]]
    out = run_cli("measure", "--device", "timer", "--arch", "smallest", "--batch-size", "8", "--no-latency")
    assert out.exit_code == 0, out.output
    assert "INVALID (host busy: load 3.10 on 2 cores" in out.output
    assert "1 measured on timer, 0 already stored (1 INVALID" in out.output
    (result,) = results(store_path, "timer")
    assert result.metrics["verdict"] == "INVALID" and result.metrics["host_noise"]["throughput_ips"]["other_cores"] == 1.2

    table = run_cli("results", "--stage", "measure").output
    assert "verdict=INVALID" in table

    assert run_cli("export", "--format", "csv", "--out", tmp_path / "all").exit_code == 0
    (row,) = csv.DictReader((tmp_path / "all" / "results.csv").open())
    assert row["verdict_timer"] == "INVALID" and float(row["throughput_ips_timer_mean"]) > 0
    assert run_cli("export", "--format", "anb-json", "--out", tmp_path / "anb").exit_code == 0
    record = json.loads(next((tmp_path / "anb").glob("result_*.json")).read_text())
    assert record["anbench"]["results"][0]["verdict"] == "INVALID"
    assert record["anbench"]["results"][0]["reasons"][0].startswith("throughput_ips: host busy")

    assert run_cli("export", "--format", "anb-json", "--out", tmp_path / "valid", "--valid-only").exit_code == 0
    record = json.loads(next((tmp_path / "valid").glob("result_*.json")).read_text())
    assert "throughput_timer" not in record["platform_perf"]


def test_valid_only_exports_the_newest_valid_run(run_cli, store_path, timer, tmp_path):
    args = ("measure", "--device", "timer", "--arch", "smallest", "--batch-size", "8", "--no-latency")
    assert run_cli(*args).exit_code == 0                         # VALID
    FakeMonitor.verdicts = [["host busy: load 4.00 on 2 cores"]]
    assert run_cli(*args, "--force").exit_code == 0              # a second run, INVALID
    runs = results(store_path, "timer")
    assert sorted(r.metrics["verdict"] for r in runs) == ["INVALID", "VALID"]
    assert run_cli("export", "--format", "csv", "--out", tmp_path / "v", "--valid-only").exit_code == 0
    (row,) = csv.DictReader((tmp_path / "v" / "results.csv").open())
    assert row["verdict_timer"] == "VALID"


def test_measure_watched_waits_for_a_quiet_host_and_measures_again():
    now = [0.0]
    waits = []

    def fake_wait(timeout_s, monitor, on_wait=None):
        waits.append(timeout_s)
        now[0] += 5
        return True, 5.0, []

    FakeMonitor.verdicts = [["host busy: load 3.00 on 2 cores"], []]
    device = TimerDevice()
    from anbench.plugin_types import MeasureRequest

    result = watched.measure_watched(device, MeasureRequest(named("smallest"), 8), EnginePolicy(), latency=False,
                                     wait_quiet_s=60, monitor_factory=lambda facts: FakeMonitor(),
                                     clock=lambda: now[0], wait=fake_wait)
    assert result.verdict == "VALID" and result.flat["attempts"] == 2 and result.flat["host_wait_s"] == 10
    assert waits == [60, 55]


def test_without_wait_quiet_a_busy_host_is_measured_once():
    FakeMonitor.verdicts = [["host busy: load 3.00 on 2 cores"], []]
    from anbench.plugin_types import MeasureRequest

    result = watched.measure_watched(TimerDevice(), MeasureRequest(named("smallest"), 8), EnginePolicy(),
                                     latency=False, monitor_factory=lambda facts: FakeMonitor())
    assert result.verdict == "INVALID" and result.flat["attempts"] == 1


def test_fixed_schedule_uses_the_devices_original_procedure(run_cli, store_path, timer):
    out = run_cli("measure", "--device", "timer", "--arch", "smallest", "--schedule", "fixed", "--no-latency")
    assert out.exit_code == 0, out.output
    (result,) = results(store_path, "timer")
    assert result.settings["timing"] == {"warmup_batches": 4, "repeats": 3, "batches_per_repeat": 2}
    assert result.metrics["throughput_ips_n"] == 3 and timer.done == 4 + 3 * 2
    # giving a count alone means the fixed schedule too
    assert run_cli("measure", "--device", "timer", "--arch", "efficientnet-b0", "--repeats", "2", "--no-latency").exit_code == 0
    assert {r.settings["timing"]["repeats"] for r in results(store_path, "timer")} == {3, 2}


@pytest.mark.parametrize("args, text", [
    (("--schedule", "adaptive", "--repeats", "3"), "belong to --schedule fixed"),
    (("--isolate", "0-x"), "--isolate: cores are numbers"),
    (("--isolate", "4096"), "not available to this process"),
    (("--option", "cuda_graphs"), "must be KEY=VALUE"),
])
def test_bad_measure_options_are_one_line_errors(run_cli, timer, args, text):
    out = run_cli("measure", "--device", "timer", "--arch", "smallest", *args)
    assert out.exit_code == 2
    assert out.output.strip().splitlines()[-1].startswith("error:") and text in out.output


CPU_SMALL = ("--arch", "smallest", "--batch-size", "2", "--resolution", "32", "--repeats", "2", "--batches", "1",
             "--warmup", "0")


def test_cpu_records_the_threads_it_used_and_channels_last(run_cli, store_path):
    first = run_cli("measure", "--device", "cpu", *CPU_SMALL, "--isolate", "0")
    assert first.exit_code == 0, first.output
    (result,) = results(store_path, "cpu")
    # threads=0 means "one per core we may use": stored as that count, never as 0
    assert result.settings["threads"] == 1 and result.settings["cores"] == [0]
    assert result.settings["options"] == {"channels_last": True}
    device = result.provenance["device"]
    assert device["torch_threads"] == 1 and device["affinity"] == [0]  # described after prepare


def test_cpu_explicit_threads_are_what_provenance_says(run_cli, store_path):
    out = run_cli("measure", "--device", "cpu", *CPU_SMALL, "--threads", "1", "--no-channels-last", "--no-latency")
    assert out.exit_code == 0, out.output
    (result,) = results(store_path, "cpu")
    assert result.settings["threads"] == 1 and result.provenance["device"]["torch_threads"] == 1
    assert result.settings["options"] == {"channels_last": False}


@pytest.mark.slow
def test_cpu_training_throughput(run_cli, store_path):
    out = run_cli("measure", "--device", "cpu", *CPU_SMALL, "--mode", "train", "--format", "json")
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)
    assert row["train_throughput_ips_mean"] > 0 and "latency_ms_mean" not in row
    (result,) = results(store_path, "cpu")
    assert result.settings["mode"] == "train" and "latency_ms_mean" not in result.metrics
    assert result.provenance["device"]["train_optimizer"]["name"] == "sgd"


def test_more_threads_than_cpus_are_clamped_and_stored_as_used(run_cli, store_path):
    out = run_cli("measure", "--device", "cpu", *CPU_SMALL, "--threads", "4096", "--isolate", "0", "--no-latency")
    assert out.exit_code == 0, out.output
    assert "warning: --threads 4096 is more than the 1 CPUs this process may use; using 1" in out.output
    (result,) = results(store_path, "cpu")
    assert result.settings["threads"] == 1 and result.provenance["device"]["torch_threads"] == 1


def test_cpu_refuses_unknown_options(run_cli):
    out = run_cli("measure", "--device", "cpu", *CPU_SMALL, "--option", "cuda_graphs=true")
    assert out.exit_code == 2 and "device cpu takes options channels_last, not cuda_graphs" in out.output


def test_progress_line_names_the_cause_before_its_symptoms():
    from anbench.cli.measure_cmd import _short_reasons

    reasons = ["throughput_ips: CI target not reached within budget: ±9% > ±1%",
               "throughput_ips: host busy: load 7.00 on 2 cores", "latency_ms: host busy: load 7.00 on 2 cores",
               "latency_ms: too few windows: 4 kept, 10 needed"]
    assert _short_reasons(reasons) == ("host busy: load 7.00 on 2 cores; CI target not reached within budget: "
                                       "±9% > ±1%; +1 more")


@pytest.mark.parametrize("option", [("--budget-s", "nan"), ("--budget-s", "inf"), ("--ci-target", "nan")])
def test_non_finite_timing_options_are_one_line_errors(run_cli, option):
    out = run_cli("measure", "--device", "cpu", "--arch", "smallest", *option)
    assert out.exit_code == 2 and out.output.count("\n") == 1 and out.output.startswith("error: ")
