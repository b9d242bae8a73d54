"""Analytic params/MACs vs profiling a forward pass, on the same sampled architectures.

Prints the speed-up of anbench.costs.count_costs over (a) anbench's hook profiler and
(b) thop.profile when installed; both baselines are measured in the same run. The goal
of the foundation issue is a ratio of at least 50x.

    python benchmarks/costs_speed.py [-n 20]
"""

from __future__ import annotations

import argparse
import time

from anbench.costs import _block_costs, _head_costs, _layer_costs, _stem_costs, count_costs, profile_costs
from anbench.models import build_model
from anbench.searchspace import sample


def seconds_per_arch(fn, archs) -> float:
    start = time.perf_counter()
    for arch in archs:
        fn(arch)
    return (time.perf_counter() - start) / len(archs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="architectures profiled by each baseline")
    args = parser.parse_args()
    archs = sample(args.n, seed=2024)
    many = sample(2000, seed=2025)

    for cache in (_layer_costs, _block_costs, _stem_costs, _head_costs):  # a cold start
        cache.cache_clear()
    analytic_cold = seconds_per_arch(count_costs, many)
    analytic_warm = seconds_per_arch(count_costs, many)
    hooks = seconds_per_arch(lambda a: profile_costs(build_model(a)), archs)
    print(f"analytic (cold cache): {analytic_cold * 1e6:9.1f} us/arch over {len(many)} archs")
    print(f"analytic (warm cache): {analytic_warm * 1e6:9.1f} us/arch")
    print(f"build + hook profiler: {hooks * 1e6:9.1f} us/arch over {len(archs)} archs")
    print(f"speed-up vs hook profiler: {hooks / analytic_cold:8.0f}x (cold)")
    try:
        import thop
        import torch
    except ImportError:
        print("thop is not installed: skipping the thop baseline")
        return
    thop_s = seconds_per_arch(
        lambda a: thop.profile(build_model(a), inputs=(torch.randn(1, 3, 224, 224),), verbose=False), archs)
    print(f"build + thop.profile:  {thop_s * 1e6:9.1f} us/arch")
    print(f"speed-up vs thop:          {thop_s / analytic_cold:8.0f}x (cold), goal >= 50x")


if __name__ == "__main__":
    main()
