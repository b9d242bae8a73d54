"""Noise on the host, seen instead of stored silently.

:class:`HostNoiseMonitor` snapshots the host before and after a measurement: the load
average, the CPU time that *other* processes used on the cores this process may run on
(from ``/proc/stat`` minus this process's own CPU time), this process's CPU time per wall
second (a runner with T threads that gets clearly less than T CPU-seconds per second was
being descheduled) and the CPU clock. Its reasons make a measurement INVALID.

Linux ``/proc`` and ``/sys`` only; elsewhere the facts are missing and no reason is given.
Stdlib only, like the engine, so a board's Python can use it too.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable

# /proc/stat columns: user nice system idle iowait irq softirq steal (guest is inside user)
_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)
_IDLE_COLUMNS = (3, 4)


@dataclass(frozen=True)
class NoiseLimits:
    """When a host counts as busy. ``None`` thresholds are derived from cores and threads."""

    max_other_cores: float | None = None   # default: the cores the runner leaves free, less 0.25 (at least 0.25)
    min_cpu_ratio: float = 0.85            # own CPU-seconds per second / threads expected
    max_clock_drop: float = 0.10           # relative fall of the mean CPU clock
    min_other_cores_for_ratio: float = 0.1  # the CPU-ratio check needs this much other activity


@dataclass
class _Snapshot:
    wall: float
    own_cpu_s: float
    busy_s: float | None
    load_1m: float | None
    clock_mhz: float | None


def parse_cores(text: str) -> list[int]:
    """``"0,2-3"`` -> ``[0, 2, 3]``; raises ``ValueError`` with a readable message."""
    cores: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ValueError(f"cores are numbers and ranges like 0,2-3, not {text!r}")
        lo, hi = int(first), int(last or first)
        if hi < lo:
            raise ValueError(f"core range {part!r} runs backwards")
        cores.update(range(lo, hi + 1))
    if not cores:
        raise ValueError("no cores given")
    return sorted(cores)


def affinity() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


class pinned:
    """Context manager: run this process on ``cores`` only, then restore the old affinity."""

    def __init__(self, cores: Iterable[int] | None) -> None:
        self.cores = sorted(set(cores)) if cores else None
        self.before: list[int] | None = None

    def __enter__(self) -> "pinned":
        if self.cores is not None:
            self.before = affinity()
            os.sched_setaffinity(0, self.cores)
        return self

    def __exit__(self, *exc) -> None:
        if self.before is not None:
            os.sched_setaffinity(0, self.before)


class HostNoiseMonitor:
    """Implements the engine's ``HostMonitor``: ``start()``, then ``finish() -> (facts, reasons)``.

    :param threads: CPU threads the runner is expected to keep busy (the CPU device's
        thread count); ``None`` for devices whose work is off the host (GPU, TPU): then the
        CPU-time ratio is recorded but not judged, and one host thread is assumed.
    :param cores: the cores to watch (default: this process's affinity).
    :param proc_root: where ``proc/`` and ``sys/`` are read from (tests give a fake tree).
    """

    def __init__(self, threads: int | None = None, cores: Iterable[int] | None = None,
                 limits: NoiseLimits = NoiseLimits(), proc_root: str | Path = "/",
                 own_cpu: Callable[[], float] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.threads = threads
        self.cores = sorted(cores) if cores is not None else affinity()
        self.limits = limits
        self.root = Path(proc_root)
        self.own_cpu = own_cpu or _own_cpu_s
        self.clock = clock
        self._start: _Snapshot | None = None

    # -- reading the host --

    def snapshot(self) -> _Snapshot:
        return _Snapshot(self.clock(), self.own_cpu(), self._busy_s(), self._load_1m(), self._clock_mhz())

    def _busy_s(self) -> float | None:
        try:
            lines = (self.root / "proc/stat").read_text().splitlines()
        except OSError:
            return None
        wanted = {f"cpu{c}" for c in self.cores}
        ticks = 0
        found = False
        for line in lines:
            name, *fields = line.split()
            if name in wanted:
                values = [int(v) for v in fields]
                ticks += sum(values[i] for i in _BUSY_COLUMNS if i < len(values))
                found = True
        return ticks / _clock_ticks() if found else None

    def _load_1m(self) -> float | None:
        try:
            return float((self.root / "proc/loadavg").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _clock_mhz(self) -> float | None:
        values = []
        for core in self.cores:
            path = self.root / f"sys/devices/system/cpu/cpu{core}/cpufreq/scaling_cur_freq"
            try:
                values.append(int(path.read_text()) / 1000.0)
            except (OSError, ValueError):
                pass
        if not values:  # VMs often have no cpufreq; /proc/cpuinfo still says something
            try:
                for line in (self.root / "proc/cpuinfo").read_text().splitlines():
                    if line.startswith("cpu MHz"):
                        values.append(float(line.split(":", 1)[1]))
            except (OSError, ValueError):
                pass
        return round(sum(values) / len(values), 1) if values else None

    # -- the HostMonitor protocol --

    def start(self) -> None:
        self._start = self.snapshot()

    def finish(self) -> tuple[dict[str, Any], list[str]]:
        if self._start is None:
            raise RuntimeError("finish() before start()")
        before, after = self._start, self.snapshot()
        return self.judge(before, after)

    def other_cores_threshold(self) -> float:
        if self.limits.max_other_cores is not None:
            return self.limits.max_other_cores
        used = self.threads if self.threads else 1
        return max(0.25, len(self.cores) - used - 0.25)

    def judge(self, before: _Snapshot, after: _Snapshot) -> tuple[dict[str, Any], list[str]]:
        wall = max(after.wall - before.wall, 1e-9)
        own_s = max(after.own_cpu_s - before.own_cpu_s, 0.0)
        facts: dict[str, Any] = {
            "cores": self.cores, "wall_s": round(wall, 3), "own_cpu_per_wall": round(own_s / wall, 3),
            "threads_expected": self.threads, "load_1m_before": before.load_1m, "load_1m_after": after.load_1m,
            "cpu_mhz_before": before.clock_mhz, "cpu_mhz_after": after.clock_mhz,
        }
        reasons = []
        others = None
        if before.busy_s is not None and after.busy_s is not None:
            other_s = max(after.busy_s - before.busy_s - own_s, 0.0)
            facts["other_cpu_s"] = round(other_s, 3)
            others = other_s / wall
            facts["other_cores"] = round(others, 3)
            limit = self.other_cores_threshold()
            if other_s / wall > limit:
                load = after.load_1m if after.load_1m is not None else float("nan")
                reasons.append(f"host busy: load {load:.2f} on {len(self.cores)} cores; other processes used "
                               f"{other_s / wall:.2f} cores (limit {limit:.2f})")
        # small batch-1 workloads keep fewer threads busy on a quiet host too: the ratio only
        # counts as evidence when something else ran (or /proc/stat could not tell)
        if self.threads and (others is None or others > self.limits.min_other_cores_for_ratio):
            ratio = own_s / wall
            if ratio < self.limits.min_cpu_ratio * min(self.threads, len(self.cores)):
                reasons.append(f"host busy: the runner got {ratio:.2f} CPU-seconds per second for "
                               f"{self.threads} threads")
        if before.clock_mhz and after.clock_mhz and after.clock_mhz < before.clock_mhz * (1 - self.limits.max_clock_drop):
            reasons.append(f"clock throttling: CPU clock fell from {before.clock_mhz:.0f} to {after.clock_mhz:.0f} MHz")
        return facts, reasons


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 100


def wait_for_quiet(timeout_s: float, monitor: HostNoiseMonitor, interval_s: float = 1.0,
                   sleep: Callable[[float], None] = time.sleep,
                   on_wait: Callable[[str], None] | None = None) -> tuple[bool, float, list[str]]:
    """Sample the host every ``interval_s`` until one interval is quiet or ``timeout_s`` passed.

    Returns (quiet, seconds waited, the last reasons).
    """
    # while waiting this process is idle: judge other processes against the runner's limit
    limits = replace(monitor.limits, max_other_cores=monitor.other_cores_threshold())
    idle = HostNoiseMonitor(threads=None, cores=monitor.cores, limits=limits, proc_root=monitor.root,
                            own_cpu=monitor.own_cpu, clock=monitor.clock)
    started = monitor.clock()
    reasons: list[str] = []
    while True:
        idle.start()
        sleep(interval_s)
        _, reasons = idle.finish()
        waited = monitor.clock() - started
        if not reasons:
            return True, waited, []
        if waited >= timeout_s:
            return False, waited, reasons
        if on_wait is not None:
            on_wait(f"waiting for a quiet host ({waited:.0f}/{timeout_s:.0f} s): {reasons[0]}")
