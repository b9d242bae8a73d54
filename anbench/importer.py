"""Import Accel-NASBench JSON records (``result_<i>.json``) into the store.

Contract:

* Every ``result_*.json`` of the directory is read in integer-index order and validated
  before anything is written; a bad record is one :class:`AnbenchError` line naming the
  file and the key, and nothing is imported (unless ``skip_invalid``: then it is reported
  and skipped, and the rest is imported). Hostile entries (FIFOs, devices, symlinks out
  of the folder, oversized files, non-finite numbers, runaway nesting) are refused the
  same way before they are opened or parsed (:mod:`anbench.record_files`).
* Per record: the architecture (origin ``{"source": "anb-json", "file", "index",
  "model_info"}`` of its first record), ``metrics`` as one ``train`` result (target
  ``imagenet``, metrics ``val_top1``, ``val_top5``, ``train_time_s``) and every measured
  device of ``platform_perf`` as one ``measure`` result (``latency_<d>`` and
  ``throughput_<d>`` merge into device ``d`` with ``latency_ms_mean/std`` and
  ``throughput_ips_mean/std``; means must be > 0, stds >= 0). Devices beyond the 8 of
  Accel-NASBench (written by anbench's own export) are imported too.
* Every record is a run of its own: its results carry ``run`` = the file name
  (``result_443.json``) and provenance ``{"imported_from", "imported_at", "model_info"}``,
  so records that repeat an architecture (the released set holds 13) are all kept, and
  :mod:`anbench.export` writes each back under its own index. Imported results have
  source ``anb-json`` and settings ``{"source": "anb-json"}``; re-importing the same
  folder adds nothing (results imported by anbench < schema 2, with an empty run, count
  as stored too). A record whose file name and architecture match a stored run with
  other values (an edited file imported again) is kept as a run of its own,
  ``<file>@<content hash>``, and reported: an import never drops or overwrites a record.
* Params/MACs are counted once per architecture and compared with each record's
  ``model_info`` (tolerance 1e-6 M); disagreements are reported, never written over the
  record's values. The whole import is one transaction.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import os
import re
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import AnbenchError
from .export import ANB_PLATFORM_KEYS, IMPORT_SOURCE, RESULT_FILE, STORE_METRIC, TRAIN_METRICS
from .record_files import DEFAULT_MAX_RECORD_BYTES, MAX_NESTING, check_value, finite, read_json_record
from .searchspace import Architecture
from .store import StageResult, Store, canonical_json

TOP_LEVEL_KEYS = ("architecture", "metrics", "model_info", "platform_perf")
EXTRA_TOP_LEVEL_KEY = "anbench"  # provenance block of anbench's own export
MODEL_INFO_KEYS = ("macs", "params")
IMPORT_SETTINGS = {"source": IMPORT_SOURCE}
TRAIN_TARGET = "imagenet"
COST_TOLERANCE_M = 1e-6
_PERF_KEY = re.compile(r"^(latency|throughput)_(.+)$")
_ANB_TRAIN_KEYS = tuple(anb for anb, _ in TRAIN_METRICS)
_ANB_PERF_KEYS_ORDERED = tuple(f"{metric}_{device}" for metric, device in ANB_PLATFORM_KEYS)
_ANB_PERF_KEYS = frozenset(_ANB_PERF_KEYS_ORDERED)
_INF = float("inf")


@dataclass
class ParsedRecord:
    """One validated record: what will be stored for it."""

    file: str
    index: int
    arch: Architecture
    train_metrics: dict[str, Any] | None  # store names; None when the record has no training values
    model_info: dict[str, Any]
    measures: dict[str, dict[str, Any]]  # device -> store metrics
    carried: dict[tuple[str, str], dict] = field(default_factory=dict)  # (stage, device) -> anbench entry


@dataclass
class ImportSummary:
    records_read: int = 0
    records_imported: int = 0
    new_architectures: int = 0
    repeated_architectures: int = 0  # architectures of this import with more than one record
    trainings_added: int = 0
    measurements_added: int = 0
    already_stored: int = 0
    renamed_runs: list[str] = field(default_factory=list)  # records that differ from a stored run of their name
    invalid: list[str] = field(default_factory=list)  # one line each
    cost_disagreements: list[str] = field(default_factory=list)  # one line each

    @property
    def skipped(self) -> int:
        return len(self.invalid)

    def lines(self, few: int = 3) -> list[str]:
        """The human summary, one fact a line."""
        out = [
            f"records read: {self.records_read}",
            f"architectures: {self.new_architectures} new"
            + (f", {self.repeated_architectures} with repeated records (each kept as a run of its own)"
               if self.repeated_architectures else ""),
            f"trainings added: {self.trainings_added}, measurements added: {self.measurements_added}"
            + (f" ({self.already_stored} already stored)" if self.already_stored else ""),
            f"skipped: {self.skipped} invalid",
        ]
        if self.renamed_runs:
            shown = ", ".join(self.renamed_runs[:few]) + (", ..." if len(self.renamed_runs) > few else "")
            out.append(f"records that differ from the stored record of the same file and architecture: "
                       f"{len(self.renamed_runs)}, kept as runs of their own ({shown})")
        out.append(f"cost disagreements (params/MACs vs model_info, tolerance {COST_TOLERANCE_M:g} M): "
                   f"{len(self.cost_disagreements)}")
        for line in self.cost_disagreements[:few]:
            out.append(f"  {line}")
        if len(self.cost_disagreements) > few:
            out.append(f"  ... and {len(self.cost_disagreements) - few} more")
        return out


class _Invalid(Exception):
    """A record problem; the message names the key (the caller adds the file)."""




def _describe(value: Any) -> str:
    kind = {str: "string", bool: "boolean", list: "list", dict: "object", type(None): "null"}.get(type(value), type(value).__name__)
    shown = json.dumps(value) if not isinstance(value, (list, dict)) else kind
    shown = shown if len(shown) <= 40 else f"{shown[:30]}... ({len(shown)} characters)"
    return f"{kind} {shown}" if kind != shown else kind


def _number(where: str, value: Any, nullable: bool = True) -> Any:
    if value is None and nullable:
        return None
    if not finite(value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise _Invalid(f"{where} is not a finite double ({_describe(value)})")
        need = "a number or null" if nullable else "a number"
        raise _Invalid(f"{where} must be {need}, got {_describe(value)}")
    return value


def _object(where: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise _Invalid(f"{where} must be a JSON object, got {_describe(value)}")
    return value


def _exact_keys(where: str, value: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        if key not in value:
            raise _Invalid(f"{where} is missing key '{key}'")
    for key in value:
        if key not in keys:
            raise _Invalid(f"{where} has unknown key '{key}' (expected {', '.join(keys)})")


def parse_record(file: str, index: int, data: Any) -> ParsedRecord:
    """Validate one decoded record; AnbenchError ``"<file>: <what>"`` naming the bad key."""
    try:
        return _parse(file, index, data)
    except (_Invalid, AnbenchError) as exc:
        raise AnbenchError(f"{file}: {exc}") from None


@functools.lru_cache(maxsize=1024)
def _perf_key(key: str) -> tuple[str, str, tuple[str, str]]:
    """(metric, device, (mean key, std key)) of a platform_perf key."""
    match = _PERF_KEY.match(key)
    if not match:
        raise _Invalid(f"platform_perf has unknown key '{key}' (expected latency_<device> or throughput_<device>)")
    metric, device = match.groups()
    return metric, device, (f"{metric}_mean", f"{metric}_std")


def _positive(value: Any) -> bool:
    return type(value) is float and 0 < value < _INF  # False for NaN too


def _perf(key: str, entry: Any) -> tuple[str, dict[str, Any] | None]:
    """(device, store metrics or None when not measured) of one platform_perf entry."""
    metric, device, keys = _perf_key(key)
    where = f"platform_perf.{key}"
    entry = _object(where, entry)
    if tuple(entry) != keys:
        _exact_keys(where, entry, keys)
    mean = _number(f"{where}.{metric}_mean", entry[f"{metric}_mean"])
    std = _number(f"{where}.{metric}_std", entry[f"{metric}_std"])
    if mean is None:
        if std is not None:
            raise _Invalid(f"{where}.{metric}_std is {std} but {metric}_mean is null")
        return device, None
    if mean <= 0:
        raise _Invalid(f"{where}.{metric}_mean must be > 0, got {mean!r}")
    if std is not None and std < 0:
        raise _Invalid(f"{where}.{metric}_std must be >= 0, got {std!r}")
    prefix = STORE_METRIC[metric]
    return device, {f"{prefix}_mean": mean, f"{prefix}_std": std}


# (device, (record mean key, record std key), (store mean key, store std key)) of the 8 keys of
# Accel-NASBench: the inline path of _parse
_PERF_SPECS = {
    key: (device, (f"{metric}_mean", f"{metric}_std"), (f"{STORE_METRIC[metric]}_mean", f"{STORE_METRIC[metric]}_std"))
    for metric, device in ANB_PLATFORM_KEYS for key in [f"{metric}_{device}"]
}


def _check_top_level(record: dict) -> None:
    for key in TOP_LEVEL_KEYS:
        if key not in record:
            raise _Invalid(f"missing top-level key '{key}'")
    for key in record:
        if key not in TOP_LEVEL_KEYS and key != EXTRA_TOP_LEVEL_KEY:
            # an unknown key would not survive import -> export: refuse rather than drop it
            raise _Invalid(f"unknown top-level key '{key}' (expected {', '.join(TOP_LEVEL_KEYS)}"
                           f" and optionally {EXTRA_TOP_LEVEL_KEY})")


def _parse(file: str, index: int, data: Any) -> ParsedRecord:
    record = _object("the record", data)
    if tuple(record) != TOP_LEVEL_KEYS:
        _check_top_level(record)
    try:
        arch = Architecture.from_record(record["architecture"])
    except AnbenchError as exc:
        raise _Invalid(f"architecture: {exc}") from None

    metrics = _object("metrics", record["metrics"])
    if tuple(metrics) != _ANB_TRAIN_KEYS:
        _exact_keys("metrics", metrics, _ANB_TRAIN_KEYS)
    train = {}
    for anb, key in TRAIN_METRICS:
        value = metrics[anb]
        # the f-string of the message only when the quick test fails (an import parses thousands)
        train[key] = value if value is None or (type(value) is float and -_INF < value < _INF) else \
            _number(f"metrics.{anb}", value)
    if train["train_time_s"] is not None and train["train_time_s"] <= 0:
        raise _Invalid(f"metrics.train_time must be > 0, got {train['train_time_s']!r}")
    train_metrics = train if any(v is not None for v in train.values()) else None

    info = _object("model_info", record["model_info"])
    if tuple(info) != MODEL_INFO_KEYS:
        _exact_keys("model_info", info, MODEL_INFO_KEYS)
    for key in MODEL_INFO_KEYS:
        if not _positive(info[key]) and _number(f"model_info.{key}", info[key], nullable=False) <= 0:
            raise _Invalid(f"model_info.{key} must be > 0, got {info[key]!r}")

    perf = _object("platform_perf", record["platform_perf"])
    if not perf.keys() >= _ANB_PERF_KEYS:
        missing = next(key for key in _ANB_PERF_KEYS_ORDERED if key not in perf)
        raise _Invalid(f"platform_perf is missing key '{missing}'")
    measures: dict[str, dict[str, Any]] = {}
    for key, entry in perf.items():
        spec = _PERF_SPECS.get(key)
        if spec is not None and type(entry) is dict and tuple(entry) == spec[1]:
            # the common, valid case inline (an import parses tens of thousands of entries);
            # anything else takes _perf, whose checks name the problem
            mean, std = entry[spec[1][0]], entry[spec[1][1]]
            if (type(mean) is float and 0 < mean < _INF
                    and (std is None or (type(std) is float and 0 <= std < _INF) or (type(std) is int and std == 0))):
                values = measures.get(spec[0])
                if values is None:
                    measures[spec[0]] = {spec[2][0]: mean, spec[2][1]: std}
                else:
                    values[spec[2][0]], values[spec[2][1]] = mean, std
                continue
        device, values = _perf(key, entry)
        if values is not None:
            measures.setdefault(device, {}).update(values)

    parsed = ParsedRecord(file, index, arch, train_metrics, dict(info), measures)
    block = record.get(EXTRA_TOP_LEVEL_KEY)
    if block is not None:
        # the one free-form part of a record: the parse above checked every other value
        check_value(block, MAX_NESTING - 1, f"{EXTRA_TOP_LEVEL_KEY}: ")
        parsed.carried = _carried_entries(block)
    return parsed


def _carried_entries(block: Any) -> dict[tuple[str, str], dict]:
    """Provenance entries of a record anbench exported, by (stage, exported device or "")."""
    out: dict[tuple[str, str], dict] = {}
    if not isinstance(block, dict) or not isinstance(block.get("results"), list):
        return out
    for entry in block["results"]:
        if not isinstance(entry, dict) or entry.get("stage") not in ("train", "measure"):
            continue
        name = "" if entry["stage"] == "train" else entry.get("exported_as", entry.get("target"))
        if isinstance(name, str):
            out.setdefault((entry["stage"], name), entry)
    return out


def list_record_files(directory: Path) -> list[tuple[int, Path]]:
    """``result_*.json`` entries of ``directory`` sorted by integer index (name breaks ties).

    A ``result_*.json`` whose middle is not an integer gets index -1; :func:`read_records`
    reports it as invalid. Entries are only listed here, never opened.
    """
    if not directory.exists():
        raise AnbenchError(f"import directory {directory} does not exist")
    if not directory.is_dir():
        raise AnbenchError(f"{directory} is not a directory (give the folder holding result_*.json)")
    files = []
    try:
        with os.scandir(directory) as entries:  # names only: a third of Path.glob's time
            for entry in entries:
                name = entry.name
                if name.startswith("result_") and name.endswith(".json"):
                    match = RESULT_FILE.match(name)
                    files.append((int(match.group(1)) if match else -1, directory / name))
    except OSError as exc:
        raise AnbenchError(f"cannot list {directory}: {exc.strerror or exc}") from None
    if not files:
        raise AnbenchError(f"no result_*.json files in {directory}")
    return sorted(files, key=lambda item: (item[0], item[1].name))


def read_records(directory: str | os.PathLike, skip_invalid: bool = False,
                 max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> tuple[list[ParsedRecord], list[str], int]:
    """Read and validate every record: (valid records, invalid lines, files read).

    Without ``skip_invalid`` the first invalid record raises its AnbenchError.
    """
    parsed, invalid = [], []
    files = list_record_files(Path(directory))
    folder_real = os.path.realpath(directory)
    for index, path in files:
        try:
            if index < 0:
                raise AnbenchError(f"{path.name}: file name must be result_<integer>.json")
            parsed.append(parse_record(path.name, index, read_json_record(path, folder_real, max_record_bytes, deep_check=False)))
        except AnbenchError as exc:
            if not skip_invalid:
                raise
            invalid.append(str(exc))
    return parsed, invalid, len(files)


def _cost_disagreement(record: ParsedRecord, params_m: float, macs_m: float) -> str | None:
    wrong = []
    for key, computed in (("params", params_m), ("macs", macs_m)):
        if abs(computed - record.model_info[key]) > COST_TOLERANCE_M:
            wrong.append(f"{key} {record.model_info[key]!r} (computed {computed!r})")
    return f"{record.file}: model_info " + ", ".join(wrong) if wrong else None


def _record_results(record: ParsedRecord, now: str) -> list[StageResult]:
    """The results one record stores: its training (if any) and each measured device, run = file name."""
    arch_id, run, carried_entries = record.arch.id, record.file, record.carried
    # one provenance dict per record and one settings dict for all: add_results serialises each object once
    shared = {"imported_from": run, "imported_at": now, "model_info": record.model_info}
    out = []
    if record.train_metrics is not None:
        carried = carried_entries.get(("train", "")) if carried_entries else None
        # a record anbench exported names its dataset; the released records are ImageNet
        target = carried.get("target") if carried and isinstance(carried.get("target"), str) else TRAIN_TARGET
        provenance = shared if carried is None else {**shared, "anbench_export": carried}
        out.append(StageResult(arch_id, "train", target, _SETTINGS, record.train_metrics, provenance,
                               IMPORT_SOURCE, now, run))
    for device, metrics in record.measures.items():
        carried = carried_entries.get(("measure", device)) if carried_entries else None
        provenance = shared if carried is None else {**shared, "anbench_export": carried}
        out.append(StageResult(arch_id, "measure", device, _SETTINGS, metrics, provenance, IMPORT_SOURCE, now, run))
    return out


_SETTINGS = dict(IMPORT_SETTINGS)
_NO_TRAINING = {key: None for _, key in TRAIN_METRICS}


def _legacy_imports(store: Store) -> set[tuple[str, str, str, str]]:
    """(arch id, stage, target, file) of results imported before runs existed (empty run)."""
    out = set()
    for result in store.results(source=IMPORT_SOURCE, run=""):
        out.add((result.arch_id, result.stage, result.target, result.provenance.get("imported_from", "")))
    return out


def _rename_conflicting_runs(store: Store, results: list[StageResult]) -> list[str]:
    """Give a record whose file name and architecture match a stored run with other values
    (e.g. an edited folder imported again: a value changed, added or set to null) a run of
    its own, ``<file>@<content hash>``, so neither is lost; the new run names."""
    if not store.results(source=IMPORT_SOURCE, limit=1):  # a first import: nothing to clash with
        return []
    by_record: dict[tuple[str, str], list[StageResult]] = {}
    for r in results:
        by_record.setdefault((r.arch_id, r.run), []).append(r)
    stored = store.stored_runs(IMPORT_SOURCE, set(by_record))
    renamed = []
    for pair, rs in by_record.items():
        # the whole record, not only the results it shares with the stored run: an edit that
        # drops a value stores nothing new, and one that adds a value would merge into it
        if pair not in stored or stored[pair] == {r.key: r.metrics for r in rs}:
            continue
        content = canonical_json([[r.stage, r.target, r.metrics] for r in rs])
        new_run = f"{pair[1]}@{hashlib.sha256(content.encode()).hexdigest()[:12]}"
        for r in rs:
            r.run = new_run
        renamed.append(new_run)
    return renamed


@contextlib.contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector: an import builds about a million acyclic objects
    (decoded JSON, results, rows), and the collections their allocations trigger, each
    walking all of them again, cost it about a twentieth of its time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _page_cache(store: Store, rows: int):
    """A page cache that holds the indexes a large import updates (result keys are random,
    so with SQLite's default 2 MB every insert misses), for the import only."""
    previous = store.conn.execute("PRAGMA cache_size").fetchone()[0]
    if rows > 1000:
        store.conn.execute(f"PRAGMA cache_size = {-min(256, 1 + rows // 256) * 1024}")  # KiB: ~4 kB per row
    try:
        yield
    finally:
        store.conn.execute(f"PRAGMA cache_size = {int(previous)}")


def import_anb_json(store: Store, directory: str | os.PathLike, skip_invalid: bool = False,
                    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> ImportSummary:
    """Import the records of ``directory`` into ``store`` in one transaction (module contract)."""
    with _gc_paused():
        return _import(store, directory, skip_invalid, max_record_bytes)


def _import(store: Store, directory: str | os.PathLike, skip_invalid: bool, max_record_bytes: int) -> ImportSummary:
    from .costs import count_costs
    from .measure.environment import utc_now

    records, invalid, files = read_records(directory, skip_invalid, max_record_bytes)
    summary = ImportSummary(records_read=files, invalid=invalid)
    now = utc_now()
    first_file: dict[str, str] = {}
    new_archs: list[tuple[Architecture, dict, float, float]] = []
    costs_of: dict[str, tuple[float, float]] = {}
    results: list[StageResult] = []
    repeated = set()
    for record in records:
        arch_id = record.arch.id
        record_results = _record_results(record, now)
        if arch_id in first_file:
            if not record_results:
                # a repeat with no values is still a record: kept as a training of nulls under its
                # file name, so it exports back (a first record without values has its architecture)
                record_results = _record_results(dataclasses.replace(record, train_metrics=dict(_NO_TRAINING)), now)
            repeated.add(arch_id)
        else:
            first_file[arch_id] = record.file
            costs = count_costs(record.arch)
            costs_of[arch_id] = (costs.params_m, costs.macs_m)
            origin = {"source": IMPORT_SOURCE, "file": record.file, "index": record.index, "model_info": record.model_info}
            new_archs.append((record.arch, origin, costs.params_m, costs.macs_m))
        summary.records_imported += 1
        results.extend(record_results)
        line = _cost_disagreement(record, *costs_of[arch_id])
        if line:
            summary.cost_disagreements.append(line)
    summary.repeated_architectures = len(repeated)

    with _page_cache(store, len(results)), store.transaction():
        legacy = _legacy_imports(store)
        if legacy:
            fresh = [r for r in results if (r.arch_id, r.stage, r.target, r.run) not in legacy]
            summary.already_stored += len(results) - len(fresh)
            results = fresh
        summary.renamed_runs = _rename_conflicting_runs(store, results)
        summary.new_architectures = store.add_architectures(new_archs)
        trainings = [r for r in results if r.stage == "train"]
        measurements = [r for r in results if r.stage != "train"]
        summary.trainings_added = store.add_results(trainings)
        summary.measurements_added = store.add_results(measurements)
        summary.already_stored += len(results) - summary.trainings_added - summary.measurements_added
    return summary

