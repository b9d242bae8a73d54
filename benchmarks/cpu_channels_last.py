"""channels_last against NCHW on the cpu device, taking turns in one run (the default's evidence).

Prints the throughput ratio channels_last / NCHW for each architecture; above 1 means
channels_last is faster on this CPU (the cpu device's default, CHANNELS_LAST_DEFAULT).

    python benchmarks/cpu_channels_last.py [--archs efficientnet-b0,smallest] [--batch 8] [--seconds 5]
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

from anbench.searchspace import named


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from measure_engine import raw_loop_ips

    from anbench.builtin.cpu import CpuDevice
    from anbench.plugin_types import MeasureRequest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="efficientnet-b0,smallest")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for name in args.archs.split(","):
        base = MeasureRequest(named(name), args.batch, (3, args.resolution, args.resolution))
        nchw = CpuDevice().resolve_request(replace(base, options={"channels_last": False}))
        last = CpuDevice().resolve_request(replace(base, options={"channels_last": True}))
        a, b = [], []
        for _ in range(args.rounds):
            a.append(raw_loop_ips(nchw, args.seconds))
            b.append(raw_loop_ips(last, args.seconds))
        print(f"{name} batch {args.batch} at {args.resolution}: channels_last {statistics.median(b):.1f} img/s, "
              f"NCHW {statistics.median(a):.1f} img/s -> ratio {statistics.median(b) / statistics.median(a):.2f}")


if __name__ == "__main__":
    main()
