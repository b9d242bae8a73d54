"""Export the store as Accel-NASBench JSON records or one CSV table.

Contract of the ``anb-json`` format (spec 12.1 and 12.3):

* one file ``result_<i>.json`` per stored architecture, in one directory;
* top-level keys ``architecture`` (the 28 keys in canonical order), ``metrics``
  (``val_top1``, ``val_top5``, ``train_time`` from the newest ``train`` result; nulls when
  not trained), ``model_info`` (``macs``, ``params`` in millions: the imported record's own
  values for an imported architecture, else computed) and ``platform_perf``: the 8 entries
  of :data:`ANB_PLATFORM_KEYS` in that order, each ``{"<metric>_mean": x,
  "<metric>_std": y}`` with null/null when not measured, then entries of other devices
  (sorted by name; only the metrics the device measured);
* provenance of results anbench produced goes only under the extra top-level key
  ``anbench`` (``{"id": ..., "results": [...]}``), which the Accel-NASBench loader ignores;
  a record holding only imported data has no extra key, so import → export reproduces
  the original files;
* an imported architecture keeps its index; the others get indices after the largest
  used, in insertion order; every file is written atomically (temp file + rename).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import AnbenchError
from .searchspace import RECORD_KEYS
from .store import StageResult, Store, StoredArchitecture

FORMATS = ("anb-json", "csv")

# (metric, device) in the order of the released records' platform_perf.
ANB_PLATFORM_KEYS = (
    ("latency", "zcu102"),
    ("latency", "vck190"),
    ("throughput", "a100"),
    ("throughput", "3090"),
    ("throughput", "tpuv2"),
    ("throughput", "tpuv3"),
    ("throughput", "zcu102"),
    ("throughput", "vck190"),
)
ANB_DEVICES = tuple(dict.fromkeys(device for _, device in ANB_PLATFORM_KEYS))
# ANB metric name -> the store's metric prefix (units in names).
STORE_METRIC = {"latency": "latency_ms", "throughput": "throughput_ips"}
# store train metric -> ANB metrics key
TRAIN_METRICS = (("val_top1", "val_top1"), ("val_top5", "val_top5"), ("train_time", "train_time_s"))

RESULT_FILE = re.compile(r"^result_(\d+)\.json$")
CSV_NAME = "results.csv"
IMPORT_SOURCE = "anb-json"


@dataclass
class ExportSummary:
    out_dir: Path
    files: int = 0
    trained: int = 0
    measured: dict[str, int] = field(default_factory=dict)
    removed_stale: int = 0

    def count(self, item: "_ArchData") -> None:
        self.trained += item.train is not None
        for device in item.measures:
            self.measured[device] = self.measured.get(device, 0) + 1


def parse_device_specs(specs: Iterable[str] | None) -> dict[str, str] | None:
    """``["cpu", "cuda=a100"]`` -> ``{"cpu": "cpu", "cuda": "a100"}``; None/empty means all devices.

    ``NAME=ALIAS`` exports the measurements of stored device NAME under the name ALIAS
    (e.g. a CUDA measurement as Accel-NASBench's ``a100``).
    """
    specs = list(specs or ())
    if not specs:
        return None
    mapping: dict[str, str] = {}
    for spec in specs:
        name, _, alias = spec.partition("=")
        name, alias = name.strip(), (alias.strip() or name.strip())
        if not name or not re.fullmatch(r"[A-Za-z0-9_.:\-]+", alias):
            raise AnbenchError(f"--device '{spec}' must be NAME or NAME=ALIAS (letters, digits, _ . : -)")
        mapping[name] = alias
    return mapping


def _newest(results: Iterable[StageResult]) -> StageResult | None:
    best = None
    for result in results:  # insertion order: a later row wins a created_at tie
        if best is None or result.created_at >= best.created_at:
            best = result
    return best


@dataclass
class _ArchData:
    stored: StoredArchitecture
    train: StageResult | None
    measures: dict[str, StageResult]  # exported device name -> newest measurement


def is_invalid(result: StageResult) -> bool:
    """A measurement the engine judged INVALID (results without a verdict, e.g. imported, are not)."""
    return result.metrics.get("verdict") == "INVALID"


def _collect(store: Store, devices: dict[str, str] | None, dataset: str | None,
             valid_only: bool = False) -> list[_ArchData]:
    by_arch: dict[str, list[StageResult]] = {}
    for result in store.results():
        if valid_only and result.stage == "measure" and is_invalid(result):
            continue
        by_arch.setdefault(result.arch_id, []).append(result)
    out = []
    for stored in store.architectures():
        results = by_arch.get(stored.id, [])
        train = _newest(r for r in results if r.stage == "train" and (dataset is None or r.target == dataset))
        grouped: dict[str, list[StageResult]] = {}
        for r in results:
            if r.stage != "measure":
                continue
            if devices is None:
                name = r.target
            elif r.target in devices:
                name = devices[r.target]
            else:
                continue
            grouped.setdefault(name, []).append(r)
        measures = {name: _newest(rs) for name, rs in grouped.items()}
        out.append(_ArchData(stored, train, measures))
    return out


def _imported(stored: StoredArchitecture) -> bool:
    return stored.origin.get("source") == IMPORT_SOURCE


def model_info(stored: StoredArchitecture) -> dict[str, Any]:
    """``{"macs": M, "params": M}``: the imported record's own values, else computed."""
    info = stored.origin.get("model_info") if _imported(stored) else None
    if isinstance(info, dict) and "macs" in info and "params" in info:
        return dict(info)
    return {"macs": stored.macs_m, "params": stored.params_m}


def _perf_entry(metric: str, result: StageResult | None) -> dict[str, Any]:
    prefix = STORE_METRIC[metric]
    metrics = result.metrics if result else {}
    return {f"{metric}_mean": metrics.get(f"{prefix}_mean"), f"{metric}_std": metrics.get(f"{prefix}_std")}


def _measured(result: StageResult, metric: str) -> bool:
    return result.metrics.get(f"{STORE_METRIC[metric]}_mean") is not None


def _provenance_entry(result: StageResult, exported_as: str | None = None) -> dict[str, Any] | None:
    """What the ``anbench`` key says about one result used in a record (None: nothing to say)."""
    if result.source != "anbench":
        # a result imported from an anbench export carries its original entry: keep it verbatim
        carried = result.provenance.get("anbench_export")
        return carried if isinstance(carried, dict) else None
    entry: dict[str, Any] = {"stage": result.stage, "target": result.target}
    if exported_as is not None and exported_as != result.target:
        entry["exported_as"] = exported_as
    entry.update({"key": result.key, "settings": result.settings, "source": result.source,
                  "created_at": result.created_at, "provenance": result.provenance})
    if "verdict" in result.metrics:
        entry["verdict"] = result.metrics["verdict"]
        entry["reasons"] = result.metrics.get("reasons", [])
    return entry


def build_record(data: _ArchData) -> dict[str, Any]:
    """The Accel-NASBench record of one architecture (see the module docstring)."""
    stored = data.stored
    train_metrics = data.train.metrics if data.train else {}
    perf: dict[str, Any] = {}
    for metric, device in ANB_PLATFORM_KEYS:
        perf[f"{metric}_{device}"] = _perf_entry(metric, data.measures.get(device))
    for device in sorted(set(data.measures) - set(ANB_DEVICES)):
        for metric in STORE_METRIC:
            if _measured(data.measures[device], metric):
                perf[f"{metric}_{device}"] = _perf_entry(metric, data.measures[device])
    record: dict[str, Any] = {
        "architecture": stored.arch.to_record(),
        "metrics": {anb: train_metrics.get(key) for anb, key in TRAIN_METRICS},
        "model_info": model_info(stored),
        "platform_perf": perf,
    }
    entries = []
    if data.train:
        entries.append(_provenance_entry(data.train))
    for device in [d for d in ANB_DEVICES if d in data.measures] + sorted(set(data.measures) - set(ANB_DEVICES)):
        entries.append(_provenance_entry(data.measures[device], device))
    entries = [e for e in entries if e is not None]
    if entries:
        record["anbench"] = {"id": stored.id, "results": entries}
    return record


def assign_indices(archs: list[StoredArchitecture]) -> list[int]:
    """File index per architecture: imported ones keep theirs (first claim wins), others follow."""
    indices: list[int | None] = []
    used: set[int] = set()
    for stored in archs:
        index = stored.origin.get("index") if _imported(stored) else None
        if isinstance(index, int) and not isinstance(index, bool) and index >= 0 and index not in used:
            used.add(index)
            indices.append(index)
        else:
            indices.append(None)
    next_index = max(used) + 1 if used else 0
    out = []
    for index in indices:
        if index is None:
            index = next_index
            next_index += 1
        out.append(index)
    return out


def _prepare_out_dir(out_dir: Path, overwrite: bool, clashes: list[Path]) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise AnbenchError(f"--out {out_dir} exists and is not a directory")
    if clashes and not overwrite:
        raise AnbenchError(f"--out {out_dir} already holds {clashes[0].name}"
                           f"{f' and {len(clashes) - 1} more' if len(clashes) > 1 else ''}; "
                           f"pass --overwrite to replace them or choose an empty directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AnbenchError(f"cannot create --out directory {out_dir}: {exc.strerror or exc}") from None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and a rename."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise AnbenchError(f"cannot write {path}: {exc.strerror or exc}") from None


def export_anb_json(store: Store, out_dir: str | os.PathLike, overwrite: bool = False,
                    devices: dict[str, str] | None = None, dataset: str | None = None,
                    valid_only: bool = False) -> ExportSummary:
    """Write one ``result_<i>.json`` per stored architecture into ``out_dir``.

    Refuses (AnbenchError) a directory already holding ``result_*.json`` unless
    ``overwrite``; with ``overwrite``, result files this export did not write are removed
    so the directory never mixes two exports. ``devices`` (from
    :func:`parse_device_specs`) limits and renames the exported devices; ``dataset``
    limits the training results to one dataset (default: the newest of any);
    ``valid_only`` leaves measurements judged INVALID out (the newest VALID one is used).
    """
    out_dir = Path(out_dir)
    existing = sorted(p for p in out_dir.glob("result_*.json")) if out_dir.is_dir() else []
    _prepare_out_dir(out_dir, overwrite, existing)
    data = _collect(store, devices, dataset, valid_only)
    indices = assign_indices([d.stored for d in data])
    summary = ExportSummary(out_dir)
    written = set()
    for index, item in zip(indices, data):
        name = f"result_{index}.json"
        write_atomic(out_dir / name, json.dumps(build_record(item)))
        written.add(name)
        summary.files += 1
        summary.count(item)
    for path in existing:
        if path.name not in written:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            summary.removed_stale += 1
    return summary


def csv_columns(data: list[_ArchData]) -> tuple[list[str], list[tuple[str, str]]]:
    """Header and the (metric, device) pairs present, ANB devices first, in ANB order."""
    present = {(metric, device) for item in data for device, result in item.measures.items()
               for metric in STORE_METRIC if _measured(result, metric)}
    pairs = [p for p in ANB_PLATFORM_KEYS if p in present]
    pairs += sorted(present - set(ANB_PLATFORM_KEYS), key=lambda p: (p[1], p[0]))
    header = ["id", *RECORD_KEYS, "params_m", "macs_m", "val_top1", "val_top5", "train_time_s"]
    for metric, device in pairs:
        prefix = STORE_METRIC[metric]
        header += [f"{prefix}_{device}_mean", f"{prefix}_{device}_std"]
    if any("verdict" in r.metrics for item in data for r in item.measures.values()):
        header += [f"verdict_{device}" for device in _devices_in_order(pairs)]
    return header, pairs


def _devices_in_order(pairs: list[tuple[str, str]]) -> list[str]:
    return list(dict.fromkeys(device for _, device in pairs))


def export_csv(store: Store, out_dir: str | os.PathLike, overwrite: bool = False,
               devices: dict[str, str] | None = None, dataset: str | None = None,
               valid_only: bool = False) -> ExportSummary:
    """Write ``out_dir/results.csv``: one row per architecture (see :func:`csv_columns`)."""
    out_dir = Path(out_dir)
    target = out_dir / CSV_NAME
    _prepare_out_dir(out_dir, overwrite, [target] if target.exists() else [])
    data = _collect(store, devices, dataset, valid_only)
    header, pairs = csv_columns(data)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    summary = ExportSummary(out_dir)
    for item in data:
        info = model_info(item.stored)
        train = item.train.metrics if item.train else {}
        row = [item.stored.id, *item.stored.arch.to_record().values(), info["params"], info["macs"],
               train.get("val_top1"), train.get("val_top5"), train.get("train_time_s")]
        for metric, device in pairs:
            row += _perf_entry(metric, item.measures.get(device)).values()
        if len(row) < len(header):  # the verdict columns
            row += [(item.measures[d].metrics.get("verdict") if d in item.measures else None)
                    for d in _devices_in_order(pairs)]
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
        summary.count(item)
    write_atomic(target, buffer.getvalue())
    summary.files = 1
    return summary


def export(store: Store, fmt: str, out_dir: str | os.PathLike, **options: Any) -> ExportSummary:
    if fmt == "anb-json":
        return export_anb_json(store, out_dir, **options)
    if fmt == "csv":
        return export_csv(store, out_dir, **options)
    raise AnbenchError(f"unknown export format '{fmt}'; formats: {', '.join(FORMATS)}")
