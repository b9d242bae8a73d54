"""Host noise detection on a fake /proc tree (exact numbers) and with a real CPU hog."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from anbench.measure.host_noise import HostNoiseMonitor, NoiseLimits, affinity, parse_cores, pinned, wait_for_quiet

HZ = os.sysconf("SC_CLK_TCK")


class FakeHost:
    """A /proc and /sys tree with two cores whose counters the test advances."""

    def __init__(self, root):
        self.root = root
        self.busy = [0, 0]
        self.own_s = 0.0
        self.now = 0.0
        self.load = 0.5
        self.mhz = 2300.0
        (root / "proc").mkdir()
        for core in (0, 1):
            (root / f"sys/devices/system/cpu/cpu{core}/cpufreq").mkdir(parents=True)
        self.write()

    def write(self):
        lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
        for core, ticks in enumerate(self.busy):
            # user nice system idle iowait irq softirq steal guest guest_nice
            lines.append(f"cpu{core} {ticks} 0 0 1000 0 0 0 0 0 0")
        (self.root / "proc/stat").write_text("\n".join(lines) + "\n")
        (self.root / "proc/loadavg").write_text(f"{self.load:.2f} 0.40 0.30 2/100 1234\n")
        for core in (0, 1):
            (self.root / f"sys/devices/system/cpu/cpu{core}/cpufreq/scaling_cur_freq").write_text(
                str(int(self.mhz * 1000)))

    def advance(self, wall_s, own_s, other_s, load=None, mhz=None):
        """``own_s`` and ``other_s`` CPU-seconds spread over both cores."""
        self.now += wall_s
        self.own_s += own_s
        ticks = (own_s + other_s) * HZ
        self.busy = [self.busy[0] + round(ticks / 2), self.busy[1] + round(ticks / 2)]
        if load is not None:
            self.load = load
        if mhz is not None:
            self.mhz = mhz
        self.write()

    def monitor(self, threads=2, **kw):
        return HostNoiseMonitor(threads=threads, cores=[0, 1], proc_root=self.root, own_cpu=lambda: self.own_s,
                                clock=lambda: self.now, **kw)


@pytest.fixture
def fake(tmp_path):
    return FakeHost(tmp_path)


def test_quiet_host_gives_no_reasons_and_records_the_facts(fake):
    monitor = fake.monitor()
    monitor.start()
    fake.advance(wall_s=10, own_s=19, other_s=0.5)
    facts, reasons = monitor.finish()
    assert reasons == []
    assert facts["other_cores"] == pytest.approx(0.05, abs=0.01)
    assert facts["own_cpu_per_wall"] == pytest.approx(1.9)
    assert facts["cpu_mhz_before"] == facts["cpu_mhz_after"] == 2300.0
    assert facts["load_1m_before"] == 0.5


def test_other_processes_on_our_cores_make_it_busy(fake):
    monitor = fake.monitor()
    monitor.start()
    fake.advance(wall_s=10, own_s=19, other_s=8, load=2.9)
    facts, reasons = monitor.finish()
    assert facts["other_cores"] == pytest.approx(0.8, abs=0.01)
    assert reasons == ["host busy: load 2.90 on 2 cores; other processes used 0.80 cores (limit 0.25)"]


def test_a_descheduled_runner_is_seen_by_its_cpu_ratio(fake):
    # the numbers: 1.60 CPU-s/s contended against 1.88-1.95 clean with 2 threads
    limits = NoiseLimits(max_other_cores=5)
    monitor = fake.monitor(limits=limits)
    monitor.start()
    fake.advance(wall_s=10, own_s=16, other_s=2)
    _, reasons = monitor.finish()
    assert reasons == ["host busy: the runner got 1.60 CPU-seconds per second for 2 threads"]
    clean = fake.monitor(limits=limits)
    clean.start()
    fake.advance(wall_s=10, own_s=18.8, other_s=2)
    assert clean.finish()[1] == []
    # with nothing else running, a low ratio is the workload's own (batch-1 ops run on fewer threads)
    alone = fake.monitor(limits=limits)
    alone.start()
    fake.advance(wall_s=10, own_s=12, other_s=0)
    assert alone.finish()[1] == []


def test_the_limit_leaves_room_for_cores_the_runner_does_not_use(fake):
    monitor = fake.monitor(threads=1)
    assert monitor.other_cores_threshold() == pytest.approx(0.75)
    monitor.start()
    fake.advance(wall_s=10, own_s=9.5, other_s=6)
    assert monitor.finish()[1] == []


def test_clock_throttling_is_a_reason(fake):
    monitor = fake.monitor()
    monitor.start()
    fake.advance(wall_s=10, own_s=19, other_s=0, mhz=1800)
    _, reasons = monitor.finish()
    assert reasons == ["clock throttling: CPU clock fell from 2300 to 1800 MHz"]


def test_wait_for_quiet_waits_until_the_others_stop(fake):
    monitor = fake.monitor()
    pattern = iter([5.0, 3.0, 0.1])  # other processes' CPU-seconds in each 2 s interval
    lines = []

    def sleep(seconds):
        fake.advance(wall_s=seconds, own_s=0, other_s=next(pattern))

    quiet, waited, reasons = wait_for_quiet(60, monitor, interval_s=2, sleep=sleep, on_wait=lines.append)
    assert quiet and waited == 6 and reasons == []
    assert len(lines) == 2 and lines[0].startswith("waiting for a quiet host (2/60 s): host busy")


def test_wait_for_quiet_gives_up_after_the_timeout(fake):
    monitor = fake.monitor()
    quiet, waited, reasons = wait_for_quiet(5, monitor, interval_s=2,
                                            sleep=lambda s: fake.advance(wall_s=s, own_s=0, other_s=3))
    assert not quiet and waited == 6 and reasons[0].startswith("host busy")


def test_parse_cores():
    assert parse_cores("0,2-3") == [0, 2, 3]
    assert parse_cores(" 1 ") == [1]
    for bad in ("", "a", "3-1", "1-x"):
        with pytest.raises(ValueError):
            parse_cores(bad)


def test_pinned_restores_the_affinity():
    before = affinity()
    with pinned([before[0]]):
        assert affinity() == [before[0]]
    assert affinity() == before


def test_a_real_cpu_hog_is_counted_as_other_processes():
    monitor = HostNoiseMonitor(threads=1)
    before = os.times()
    monitor.start()
    # a child process that burns a fixed amount of CPU, then exits
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(6_000_000))"], check=True)
    after = os.times()
    hog_s = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    facts, _ = monitor.finish()
    assert hog_s > 0.1
    assert facts["other_cpu_s"] >= 0.7 * hog_s
