"""Export the store as Accel-NASBench JSON records or one CSV table.

Records. An export writes *records*: each imported record (a run, identified by its
file name; see :mod:`anbench.importer`) is a record of its own, so an architecture the
released dataset holds twice (result_0 and result_443) comes back as two records. An
architecture with no imported record has one record of anbench's own results. anbench's
own results attach to the records of their architecture this way:

* a record keeps its own values: an imported record's training and devices are never
  replaced by anbench's results;
* anbench's newest result of each device (and the newest training, of ``dataset`` when
  given) fills that device (or the training) in *every* record of the architecture that
  lacks it (e.g. a CPU measurement of an architecture with two imported records appears
  in both);
* if one of anbench's own results fills no record (every record has that device or a
  training already, e.g. re-measuring an a100 architecture), the architecture gets one
  more record holding anbench's newest results, so that nothing measured is left out.

Contract of the ``anb-json`` format (spec 12.1 and 12.3):

* one file ``result_<i>.json`` per record, in one directory;
* top-level keys ``architecture`` (the 28 keys in canonical order), ``metrics``
  (``val_top1``, ``val_top5``, ``train_time``; nulls when not trained), ``model_info``
  (``macs``, ``params`` in millions: the imported record's own values, else computed) and
  ``platform_perf``: the 8 entries of :data:`ANB_PLATFORM_KEYS` in that order, each
  ``{"<metric>_mean": x, "<metric>_std": y}`` with null/null when not measured, then
  entries of other devices (sorted by name; only the metrics the device measured);
* provenance of results anbench produced goes only under the extra top-level key
  ``anbench`` (``{"id": ..., "results": [...]}``), which the Accel-NASBench loader ignores;
  a record holding only imported data has no extra key, so import → export reproduces
  the original files byte for byte;
* an imported record keeps its index (its file name); other records get indices after
  the largest used, in store order.

The CSV format writes ``results.csv``: one row per record, with a ``run`` column (the
imported file name, empty for anbench's own record). Both formats are written as a whole
folder, atomically, with a manifest (:mod:`anbench.export_dir`).

Tasks with a metric of their own (ECG macro F1, DeepSEA mean AUROC/AUPR, see
:func:`task_metrics`) add it to ``metrics`` under its own name, next to the three ANB keys,
and their ``model_info`` holds the costs of the network trained for that task on its own
input (the 1-D networks), as stored with the training result (:func:`task_costs`). The
``anbench`` entry of the training result says which split and epoch(s) the metric comes
from and how the epoch was chosen. CSV gets one column per such metric, after
``train_time_s``.
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
from typing import Any, Callable, Iterable, Iterator

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
# evaluated keys that are bookkeeping or already exported under an ANB key
_NOT_TASK_METRICS = ("val_top1", "val_top5", "val_loss", "val_samples")

RESULT_FILE = re.compile(r"^result_(\d+)\.json$")
CSV_NAME = "results.csv"
IMPORT_SOURCE = "anb-json"


@dataclass
class ExportSummary:
    out_dir: Path
    files: int = 0
    records: int = 0
    architectures: int = 0
    trained: int = 0
    measured: dict[str, int] = field(default_factory=dict)
    replaced: int = 0  # files of an earlier export in out_dir that this one replaced

    def count(self, item: "ExportRecord") -> None:
        self.records += 1
        self.trained += item.train is not None and not _no_values(item.train)
        for device in item.measures:
            self.measured[device] = self.measured.get(device, 0) + 1

    def counts(self) -> dict[str, Any]:
        return {"files": self.files, "records": self.records, "architectures": self.architectures,
                "trained": self.trained, "measured": dict(sorted(self.measured.items()))}


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
        if name in mapping:
            raise AnbenchError(f"--device {name} is given twice; give each stored device once")
        sharing = [other for other, other_alias in mapping.items() if other_alias == alias]
        if sharing:
            # one exported name for two devices: one device's measurements would silently replace the other's
            raise AnbenchError(f"--device {name} and --device {sharing[0]} would both be exported as '{alias}'; "
                               f"give each its own name")
        mapping[name] = alias
    return mapping


def _newest(results: Iterable[StageResult]) -> StageResult | None:
    best = None
    for result in results:  # insertion order: a later row wins a created_at tie
        if best is None or result.created_at >= best.created_at:
            best = result
    return best


@dataclass
class ExportRecord:
    """One exported record: an imported run (``run`` = its file name) or anbench's own (``run`` = "")."""

    stored: StoredArchitecture
    run: str
    train: StageResult | None
    measures: dict[str, StageResult]  # exported device name -> result
    model_info: dict[str, Any] | None = None  # the imported record's own values

    @property
    def index(self) -> int | None:
        """The index of the file the record was imported from; None for anbench's own."""
        match = RESULT_FILE.match(self.run)
        return int(match.group(1)) if match else None


def _no_values(result: StageResult) -> bool:
    """An imported record's training of nulls (it keeps a repeated record that held no values)."""
    return all(value is None for value in result.metrics.values())


def _run_of(result: StageResult) -> str:
    """Which imported record a result belongs to ("" for anbench's own)."""
    if result.source != IMPORT_SOURCE:
        return ""
    # results imported before runs existed name their file only in the provenance
    return result.run or str(result.provenance.get("imported_from", ""))


def _by_device(results: Iterable[StageResult], devices: dict[str, str] | None) -> dict[str, StageResult]:
    """Newest measurement per exported device name (``devices`` selects and renames)."""
    grouped: dict[str, list[StageResult]] = {}
    for r in results:
        if r.stage != "measure" or (devices is not None and r.target not in devices):
            continue
        grouped.setdefault(devices[r.target] if devices is not None else r.target, []).append(r)
    return {name: _newest(group) for name, group in grouped.items()}


def _newest_train(results: Iterable[StageResult], dataset: str | None) -> StageResult | None:
    return _newest(r for r in results if r.stage == "train" and (dataset is None or r.target == dataset))


def _run_order(run: str) -> tuple:
    match = RESULT_FILE.match(run)
    return (match is None, int(match.group(1)) if match else 0, run)


def _records_of(stored: StoredArchitecture, results: list[StageResult], devices: dict[str, str] | None,
                dataset: str | None) -> list[ExportRecord]:
    """The records of one architecture (see the module docstring for how own results attach)."""
    runs: dict[str, list[StageResult]] = {}
    if _imported(stored) and isinstance(stored.origin.get("file"), str):
        runs[stored.origin["file"]] = []  # the first record, even when it held no values
    own = []
    for result in results:
        run = _run_of(result)
        if run:
            runs.setdefault(run, []).append(result)
        else:
            own.append(result)
    own_train = _newest_train(own, dataset)
    own_measures = _by_device(own, devices)
    records = []
    train_used, devices_used = own_train is None, set()
    for run in sorted(runs, key=_run_order):
        rs = runs[run]
        train = _newest_train(rs, dataset)
        if (train is None or _no_values(train)) and own_train is not None:
            train, train_used = own_train, True
        measures = _by_device(rs, devices)
        for name, result in own_measures.items():
            if name not in measures:
                measures[name] = result
                devices_used.add(name)
        info = next((r.provenance["model_info"] for r in rs if isinstance(r.provenance.get("model_info"), dict)), None)
        records.append(ExportRecord(stored, run, train, measures, info))
    if not records or not train_used or devices_used != set(own_measures):
        records.append(ExportRecord(stored, "", own_train, own_measures))
    return records


def is_invalid(result: StageResult) -> bool:
    """A measurement the engine judged INVALID (results without a verdict, e.g. imported, are not)."""
    return result.metrics.get("verdict") == "INVALID"


def collect_records(store: Store, devices: dict[str, str] | None = None, dataset: str | None = None,
                    valid_only: bool = False) -> list[ExportRecord]:
    """Every record to export, architectures in store order (see the module docstring).

    ``valid_only`` leaves measurements judged INVALID out (the newest VALID one is used).
    """
    by_arch: dict[str, list[StageResult]] = {}
    for result in store.results():
        if valid_only and result.stage == "measure" and is_invalid(result):
            continue
        by_arch.setdefault(result.arch_id, []).append(result)
    out = []
    for stored in store.architectures():
        out.extend(_records_of(stored, by_arch.get(stored.id, []), devices, dataset))
    return out


def _imported(stored: StoredArchitecture) -> bool:
    return stored.origin.get("source") == IMPORT_SOURCE


def model_info(stored: StoredArchitecture, own: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"macs": M, "params": M}``: the record's own values, else the imported
    architecture's, else computed."""
    for info in (own, stored.origin.get("model_info") if _imported(stored) else None):
        if isinstance(info, dict) and "macs" in info and "params" in info:
            return dict(info)
    return {"macs": stored.macs_m, "params": stored.params_m}


def task_costs(train: StageResult | None) -> dict[str, Any] | None:
    """The task's own ``{"macs", "params"}`` stored with a training result, when its input is not ImageNet's."""
    if train is None:
        return None
    shape = train.metrics.get("cost_input_shape")
    if not shape or list(shape) == [3, 224, 224]:
        return None
    macs, params = train.metrics.get("macs_m"), train.metrics.get("params_m")
    return {"macs": macs, "params": params} if macs is not None and params is not None else None


def task_metrics(train: StageResult | None) -> dict[str, float]:
    """Evaluated metrics beyond top-1/top-5, named without the ``val_`` prefix (e.g. ``macro_f1``, ``mean_auroc``)."""
    if train is None:
        return {}
    return {key[4:]: value for key, value in train.metrics.items()
            if key.startswith("val_") and key not in _NOT_TASK_METRICS
            and isinstance(value, (int, float)) and not isinstance(value, bool)}


def _metric_origin(train: StageResult) -> dict[str, Any] | None:
    """Which metric, split, epoch(s) and selection rule the training result's numbers come from."""
    if "metric_split" not in train.metrics:
        return None
    return {"name": train.metrics.get("metric_name"), "split": train.metrics.get("metric_split"),
            "selection": train.metrics.get("metric_selection"), "epochs": train.metrics.get("metric_epochs")}


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


def build_record(data: ExportRecord) -> dict[str, Any]:
    """The Accel-NASBench record of one export record (see the module docstring)."""
    stored = data.stored
    train_metrics = data.train.metrics if data.train else {}
    perf: dict[str, Any] = {}
    for metric, device in ANB_PLATFORM_KEYS:
        perf[f"{metric}_{device}"] = _perf_entry(metric, data.measures.get(device))
    others = sorted(set(data.measures) - set(ANB_DEVICES))
    for device in others:
        for metric in STORE_METRIC:
            if _measured(data.measures[device], metric):
                perf[f"{metric}_{device}"] = _perf_entry(metric, data.measures[device])
    record: dict[str, Any] = {
        "architecture": stored.arch.to_record(),
        "metrics": {anb: train_metrics.get(key) for anb, key in TRAIN_METRICS} | task_metrics(data.train),
        "model_info": model_info(stored, task_costs(data.train) or data.model_info),
        "platform_perf": perf,
    }
    entries = []
    if data.train:
        entry = _provenance_entry(data.train)
        origin = _metric_origin(data.train)
        if entry is not None and origin is not None:
            entry["metric"] = origin
        entries.append(entry)
    for device in [d for d in ANB_DEVICES if d in data.measures] + others:
        entries.append(_provenance_entry(data.measures[device], device))
    entries = [e for e in entries if e is not None]
    if entries:
        record["anbench"] = {"id": stored.id, "results": entries}
    return record


def assign_indices(records: list[ExportRecord]) -> list[int]:
    """File index per record: imported ones keep theirs (first claim wins), others follow the largest."""
    indices: list[int | None] = []
    used: set[int] = set()
    for record in records:
        index = record.index
        if index is not None and index not in used:
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


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and a rename (umask mode)."""
    from .export_dir import file_mode

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            os.chmod(tmp, file_mode())  # mkstemp makes it 0600
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise AnbenchError(f"cannot write {path}: {exc.strerror or exc}") from None


def _manifest_fields(store: Store, fmt: str, summary: ExportSummary) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from .measure.environment import utc_now

    try:
        anbench_version = version("anbench")
    except PackageNotFoundError:
        anbench_version = "unknown"
    return {"export_format": fmt, "anbench_version": anbench_version, "created_at": utc_now(),
            "store": {"path": str(store.path), "fingerprint": store.fingerprint()}, "counts": summary.counts()}


def _write(store: Store, fmt: str, out_dir: str | os.PathLike, overwrite: bool,
           render: Callable[[Callable[[list[ExportRecord], int], list[ExportRecord]]], Iterator[tuple[str, bytes]]],
           ) -> ExportSummary:
    """Write the files ``render(counted)`` yields; ``render`` collects the records and hands
    them to ``counted`` (with the number of files) before it renders them. write_export_dir
    checks the target folder, once, before ``render`` runs."""
    from .export_dir import write_export_dir

    summary = ExportSummary(Path(out_dir))
    fields: dict[str, Any] = {}

    def counted(records: list[ExportRecord], files: int) -> list[ExportRecord]:
        summary.files, summary.architectures = files, len({r.stored.id for r in records})
        for record in records:
            summary.count(record)
        fields.update(_manifest_fields(store, fmt, summary))  # the store's fingerprint right after the read
        return records

    placed = write_export_dir(out_dir, render(counted), overwrite, lambda: fields)
    summary.out_dir, summary.replaced = placed.out_dir, placed.replaced
    return summary


def export_anb_json(store: Store, out_dir: str | os.PathLike, overwrite: bool = False,
                    devices: dict[str, str] | None = None, dataset: str | None = None,
                    valid_only: bool = False) -> ExportSummary:
    """Write one ``result_<i>.json`` per record (module docstring) as the folder ``out_dir``.

    ``out_dir`` must be missing, empty, or an earlier anbench export (replaced only with
    ``overwrite``); see :mod:`anbench.export_dir`. ``devices`` (from
    :func:`parse_device_specs`) limits and renames the exported devices; ``dataset``
    limits the training results to one dataset (default: the newest of any); ``valid_only``
    leaves INVALID measurements out.
    """
    def render(counted) -> Iterator[tuple[str, bytes]]:
        records = collect_records(store, devices, dataset, valid_only)
        counted(records, len(records))
        for index, record in zip(assign_indices(records), records):
            try:
                text = _RECORD_JSON.encode(build_record(record))
            except ValueError as exc:  # NaN/Infinity: not JSON, no reader of the dataset could load it
                raise AnbenchError(f"architecture {record.stored.id} {record.run or '(own results)'}: a stored "
                                   f"value is not a finite number ({exc}); nothing was exported") from None
            yield f"result_{index}.json", text.encode()

    return _write(store, "anb-json", out_dir, overwrite, render)


# json.dumps' output (the released files are json.dump output) without NaN/Infinity; built once
_RECORD_JSON = json.JSONEncoder(allow_nan=False)


def csv_columns(data: list[ExportRecord]) -> tuple[list[str], list[tuple[str, str]]]:
    """Header and the (metric, device) pairs present, ANB devices first, in ANB order.

    Task metrics (:func:`task_metrics`) present in any row get a column each, sorted by name,
    after ``train_time_s``.
    """
    present = {(metric, device) for item in data for device, result in item.measures.items()
               for metric in STORE_METRIC if _measured(result, metric)}
    pairs = [p for p in ANB_PLATFORM_KEYS if p in present]
    pairs += sorted(present - set(ANB_PLATFORM_KEYS), key=lambda p: (p[1], p[0]))
    header = ["id", "run", *RECORD_KEYS, "params_m", "macs_m", "val_top1", "val_top5", "train_time_s"]
    header += task_metric_names(data)
    for metric, device in pairs:
        prefix = STORE_METRIC[metric]
        header += [f"{prefix}_{device}_mean", f"{prefix}_{device}_std"]
    if any("verdict" in r.metrics for item in data for r in item.measures.values()):
        header += [f"verdict_{device}" for device in _devices_in_order(pairs)]
    return header, pairs


def task_metric_names(data: list[ExportRecord]) -> list[str]:
    """The task metrics (:func:`task_metrics`) of any record, sorted: one CSV column each."""
    return sorted({name for item in data for name in task_metrics(item.train)})


def _devices_in_order(pairs: list[tuple[str, str]]) -> list[str]:
    return list(dict.fromkeys(device for _, device in pairs))


def export_csv(store: Store, out_dir: str | os.PathLike, overwrite: bool = False,
               devices: dict[str, str] | None = None, dataset: str | None = None,
               valid_only: bool = False) -> ExportSummary:
    """Write ``out_dir/results.csv``: one row per record (see :func:`csv_columns`); its ``run``
    column tells repeated records of one architecture apart. Folder rules as for anb-json."""
    def render(counted) -> Iterator[tuple[str, bytes]]:
        yield CSV_NAME, _csv_text(counted(collect_records(store, devices, dataset, valid_only), 1))

    return _write(store, "csv", out_dir, overwrite, render)


def _csv_text(data: list[ExportRecord]) -> bytes:
    header, pairs = csv_columns(data)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    extra = task_metric_names(data)
    for item in data:
        info = model_info(item.stored, task_costs(item.train) or item.model_info)
        train = item.train.metrics if item.train else {}
        own = task_metrics(item.train)
        row = [item.stored.id, item.run, *item.stored.arch.to_record().values(), info["params"], info["macs"],
               train.get("val_top1"), train.get("val_top5"), train.get("train_time_s"), *(own.get(n) for n in extra)]
        for metric, device in pairs:
            row += _perf_entry(metric, item.measures.get(device)).values()
        if len(row) < len(header):  # the verdict columns
            row += [(item.measures[d].metrics.get("verdict") if d in item.measures else None)
                    for d in _devices_in_order(pairs)]
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
    return buffer.getvalue().encode()


def export(store: Store, fmt: str, out_dir: str | os.PathLike, **options: Any) -> ExportSummary:
    if fmt == "anb-json":
        return export_anb_json(store, out_dir, **options)
    if fmt == "csv":
        return export_csv(store, out_dir, **options)
    raise AnbenchError(f"unknown export format '{fmt}'; formats: {', '.join(FORMATS)}")
