"""Time of `anbench report` per 1,000 records against loading the same records from the store.

Imports the released Accel-NASBench records (a folder of result_<i>.json, or the
released .tar.gz) into a temporary store, then times in one run: loading every
architecture and result through the Store API (the baseline), computing the report's
numbers (what `--format json` prints) and the whole report with figures and HTML.
Prints seconds per 1,000 stored records (architectures) and the ratio to the baseline.
The goal of issue 11 is the whole report for the 5,138 released records in well under
a minute on 2 cores.

    python benchmarks/report_speed.py [PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
import time
from pathlib import Path

from anbench.importer import import_anb_json
from anbench.report import report_numbers, write_report
from anbench.store import Store

RELEASED = Path(__file__).resolve().parents[2] / "shared" / "data" / "accel-nasbench" / "anb_dataset_jsons.tar.gz"


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def records_dir(path: Path, tmp: Path) -> Path:
    if path.is_dir():
        return path
    with tarfile.open(path) as archive:
        archive.extractall(tmp, filter="data")
    return next(p.parent for p in tmp.rglob("result_0.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(RELEASED), help="folder of result_*.json or the .tar.gz")
    parser.add_argument("--repeats", type=int, default=3, help="timings per step (the best is kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = records_dir(Path(args.path), tmp / "records")
        with Store.open(tmp / "anb.db") as store:
            import_anb_json(store, folder)
            archs = store.count_architectures()
            results = store.count_results()
            per_k = 1000 / archs
            load = best_of(args.repeats, lambda: (store.architectures(), store.results()))
            numbers = best_of(args.repeats, lambda: report_numbers(store))
            full = best_of(max(1, args.repeats - 1), lambda: write_report(store, tmp / "rep"))
    print(f"store: {archs} architectures, {results} results")
    print(f"load from store (baseline): {load * per_k:7.3f} s per 1,000 records  (total {load:6.2f} s)")
    print(f"report numbers (json):      {numbers * per_k:7.3f} s per 1,000 records  (total {numbers:6.2f} s)"
          f"  = {numbers / load:5.1f} x load")
    print(f"whole report (figures+html):{full * per_k:7.3f} s per 1,000 records  (total {full:6.2f} s)"
          f"  = {full / load:5.1f} x load")


if __name__ == "__main__":
    main()
