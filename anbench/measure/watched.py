"""A measurement with the host watched: wait for quiet, measure, measure again if it was busy.

This is what ``anbench measure`` calls per architecture; library users get the same with
:func:`measure_watched`.
"""

from __future__ import annotations

import time
from typing import Callable

from ..plugin_types import DeviceRunner, MeasureRequest
from .engine import EnginePolicy
from .host_noise import HostNoiseMonitor, NoiseLimits, wait_for_quiet
from .timing import Measurement, TimingPolicy, measure

HOST_REASONS = ("host busy", "clock throttling")


def _host_noisy(result: Measurement) -> bool:
    return any(reason.split(": ", 1)[-1].startswith(HOST_REASONS) for reason in result.reasons)


def measure_watched(runner: DeviceRunner, request: MeasureRequest, policy: EnginePolicy | TimingPolicy, *,
                    latency: bool = True, wait_quiet_s: float = 0.0, limits: NoiseLimits = NoiseLimits(),
                    status: Callable[[str], None] | None = None, monitor_factory=None,
                    clock: Callable[[], float] = time.monotonic, wait=wait_for_quiet) -> Measurement:
    """Measure ``request`` on ``runner`` with a :class:`HostNoiseMonitor` around every timed run.

    ``wait_quiet_s`` > 0: wait up to that long for a quiet host first, and while a result is
    INVALID because the host was busy (or throttled) and the allowance lasts, wait and
    measure again. The result records how long it waited and how many attempts it took.
    """
    def make_monitor(facts: dict) -> HostNoiseMonitor:
        # runners whose work is on the host say how many threads they keep busy
        return HostNoiseMonitor(threads=facts.get("host_threads"), limits=limits)

    monitor_factory = monitor_factory or make_monitor
    deadline = clock() + wait_quiet_s
    waited_s = 0.0
    attempts = 0
    while True:
        if wait_quiet_s > 0:
            left = max(deadline - clock(), 0.0)
            if left > 0:
                idle = HostNoiseMonitor(threads=request.threads or None, limits=limits)
                _, seconds, _ = wait(left, idle, on_wait=status)
                waited_s += seconds
        attempts += 1
        if status is not None:
            status("measuring")
        result = measure(runner, request, policy, latency=latency, monitor=monitor_factory, on_status=status)
        result.flat["host_wait_s"] = round(waited_s, 1)
        result.flat["attempts"] = attempts
        if not (wait_quiet_s > 0 and _host_noisy(result) and clock() < deadline):
            return result
