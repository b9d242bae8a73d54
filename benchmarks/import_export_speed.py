"""Import and export against plain json.load / json.dump of the same records, in one run.

Import is timed against reading every record file with ``json.load``; export against
writing the same records with ``json.dump`` into a new folder (one file each). Each is
timed ``--repeats`` times, interleaved with its baseline, and the best of each is kept
(a loaded machine slows single runs, not the best). Goals of issue 6: import within 5x
of reading, export within 3x of writing.

    python benchmarks/import_export_speed.py [FOLDER] [--repeats 3]

FOLDER defaults to the released dataset unpacked from
../shared/data/accel-nasbench/anb_dataset_jsons.tar.gz (into a temp folder).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from anbench.export import export_anb_json
from anbench.importer import import_anb_json
from anbench.store import Store

RELEASED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "accel-nasbench" / "anb_dataset_jsons.tar.gz"
IMPORT_GOAL, EXPORT_GOAL = 5.0, 3.0


def released_folder(work: Path) -> Path:
    if not RELEASED.exists():
        raise SystemExit(f"no FOLDER given and {RELEASED} is absent")
    with tarfile.open(RELEASED) as tar:
        tar.extractall(work, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return next(work.rglob("result_0.json")).parent


def read_all(folder: Path) -> list:
    out = []
    for path in folder.glob("result_*.json"):
        with open(path) as handle:
            out.append(json.load(handle))
    return out


def write_all(records: list, folder: Path) -> None:
    folder.mkdir()
    for index, record in enumerate(records):
        with open(folder / f"result_{index}.json", "w") as handle:
            json.dump(record, handle)


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, help="folder of result_*.json (default: the released set)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="anbench-bench-") as tmp:
        work = Path(tmp)
        folder = args.folder or released_folder(work / "src")
        records = read_all(folder)
        best = {"read": [], "import": [], "write": [], "export": []}
        for i in range(args.repeats):
            best["read"].append(timed(lambda: read_all(folder)))
            store_path = work / f"s{i}.db"
            with Store.open(store_path) as store:
                best["import"].append(timed(lambda: import_anb_json(store, folder)))
                best["write"].append(timed(lambda: write_all(records, work / f"w{i}")))
                best["export"].append(timed(lambda: export_anb_json(store, work / f"e{i}")))
            shutil.rmtree(work / f"w{i}")
            shutil.rmtree(work / f"e{i}")
            for suffix in ("", "-wal", "-shm"):
                with_suffix = Path(f"{store_path}{suffix}")
                if with_suffix.exists():
                    os.unlink(with_suffix)
        print(f"records: {len(records)} from {folder}")
        for i, clock in enumerate(("wall", "CPU")):
            t = {k: min(v[i] for v in runs) for k, runs in best.items()}
            print(f"[{clock:4}] json.load all: {t['read']:6.3f} s   anbench import: {t['import']:6.3f} s   "
                  f"ratio {t['import'] / t['read']:5.2f}x (goal <= {IMPORT_GOAL:g}x)")
            print(f"[{clock:4}] json.dump all: {t['write']:6.3f} s   anbench export: {t['export']:6.3f} s   "
                  f"ratio {t['export'] / t['write']:5.2f}x (goal <= {EXPORT_GOAL:g}x)")
        print(f"best of {args.repeats}; host load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
              f"(on a shared, loaded machine the CPU-time ratios are the steadier ones)")


if __name__ == "__main__":
    main()
