"""What the report reads from the store, gathered once into plain arrays.

Contract:

* Reads the store only through :meth:`Store.architectures` and :meth:`Store.results`.
* An architecture may have several results for one (stage, target): repeated runs (other
  seeds, re-measurements, imported duplicates: :attr:`StageResult.run` tells them apart) or
  results with other settings. Each usable result is one *run*. Figures and correlations
  use one value per architecture, the mean over its runs; the runs themselves feed the
  "spread between repeated runs" panel.
* Repeats are runs with the same ``settings`` only: per (stage, target) the report uses one
  settings group, the one covering the most architectures (ties: the first in sorted order);
  results with other settings (another recipe, batch size ...) are counted in the coverage
  and in :attr:`ReportData.settings` ("settings are mixed"), never averaged in.
* A result is usable when its verdict (``metrics["verdict"]``) is absent or ``VALID`` and
  the metric is a finite number. Results with another verdict (INVALID, DIVERGED, FAILED)
  are counted in the coverage and listed with their reasons, never plotted.
* Accuracy is the task metric of ``train`` results on one dataset (``dataset``, default: the
  dataset with the most trained architectures): the record's own ``metrics["metric"]``
  (named by ``metrics["metric_name"]``: ``top1``, ``macro_f1``, ``mean_auroc`` ...), else
  ``val_<metric_name>``; records without a name count as ``top1``. Their per-epoch ``curves`` (rows with
  ``epoch`` and any of ``train_loss``, ``train_top1``, ``val_loss``, ``val_top1``) are kept.
* Device columns are the ``measure`` targets with ``throughput_ips_mean`` and/or
  ``latency_ms_mean``; ``devices`` limits them (an unknown name is an
  :class:`AnbenchError` listing the measured ones).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable


from ..errors import AnbenchError
from ..searchspace import NAMED
from .stats import higher_is_better

# Store metric prefixes of a measurement (see anbench.export.STORE_METRIC), throughput first.
SPEED_METRICS = ("throughput_ips", "latency_ms")
GOOD_VERDICTS = (None, "VALID")


@dataclass
class Series:
    """One quantity per architecture: the mean over runs, and the runs themselves."""

    label: str
    unit: str
    higher_is_better: bool
    runs: dict[str, list[float]] = field(default_factory=dict)  # arch id -> one value per run
    # quality of single results where stored: std/mean and CI width/mean
    cv: list[float] = field(default_factory=list)
    ci_rel_width: list[float] = field(default_factory=list)

    _means: dict[str, float] | None = field(default=None, repr=False, compare=False)

    def mean_by_arch(self) -> dict[str, float]:
        """Arch id -> mean over its runs (computed once: read it after gathering is done)."""
        if self._means is None or len(self._means) != len(self.runs):
            self._means = {arch: math.fsum(v) / len(v) if len(v) > 1 else v[0] for arch, v in self.runs.items()}
        return self._means

    def repeated(self) -> dict[str, list[float]]:
        return {arch: values for arch, values in self.runs.items() if len(values) > 1}


@dataclass
class DeviceColumn(Series):
    device: str = ""
    metric: str = ""  # store prefix: throughput_ips | latency_ms


@dataclass
class Failure:
    arch_id: str
    stage: str
    target: str
    run: str
    verdict: str
    reason: str


@dataclass
class CoverageRow:
    stage: str
    target: str
    architectures: int  # with at least one usable result
    results: int
    failed: int


@dataclass
class Curve:
    """Per-epoch values of one training run (``metrics["curves"]``, one row per epoch)."""

    arch_id: str
    run: str
    epochs: list[float]
    values: dict[str, list[float | None]]  # train_loss, train_top1, val_top1 ... aligned with epochs


CURVE_KEYS = ("train_loss", "train_top1", "val_loss", "val_top1")


def _curve(arch_id: str, run: str, rows: Any) -> Curve | None:
    if not isinstance(rows, list):
        return None
    rows = [row for row in rows if isinstance(row, dict) and _number(row.get("epoch")) is not None]
    if not rows:
        return None
    values = {key: [_number(row.get(key)) for row in rows] for key in CURVE_KEYS}
    values = {key: v for key, v in values.items() if any(x is not None for x in v)}
    return Curve(arch_id, run, [float(row["epoch"]) for row in rows], values) if values else None


@dataclass
class ReportData:
    store_path: str
    ids: list[str]
    compact: dict[str, str]
    params_m: dict[str, float]
    macs_m: dict[str, float]
    named: dict[str, str]  # arch id -> reference name, for the named architectures stored
    dataset: str | None
    accuracy: Series
    columns: list[DeviceColumn]
    coverage: list[CoverageRow]
    failures: list[Failure]
    curves: list[Curve] = field(default_factory=list)  # training runs on the dataset that stored curves
    metric_name: str = "top1"  # task metric of the chosen dataset's records
    # "<stage> <target>" -> {"groups", "used", "results_left_out"}: only where settings are mixed
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)


def task_metric(metrics: dict) -> tuple[str, float | None]:
    """(metric name, value) of a training record: its own task metric, not always top-1."""
    name = metrics.get("metric_name") if isinstance(metrics.get("metric_name"), str) else "top1"
    value = _number(metrics.get("metric"))
    return name, value if value is not None else _number(metrics.get(f"val_{name}"))


def _settings_key(settings: Any) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def _main_settings(usable: Iterable[tuple[Any, str]]) -> dict[tuple[str, str], str]:
    """(stage, target) -> the settings key shared by the most architectures among ``usable``
    ((result, settings key) pairs)."""
    archs: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r, key in usable:
        archs[(r.stage, r.target)][key].add(r.arch_id)
    return {cell: max(sorted(groups), key=lambda key: len(groups[key])) for cell, groups in archs.items()}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _reason(metrics: dict) -> str:
    for key in ("reasons", "reason", "error"):
        value = metrics.get(key)
        if isinstance(value, list) and value:
            return "; ".join(str(v) for v in value)
        if value:
            return str(value)
    return "no reason stored"


def _ci_rel_width(metrics: dict, metric: str, mean: float) -> float | None:
    """CI width over the mean, from ``<metric>_ci[95]_low/_high`` when stored."""
    for stem in (f"{metric}_ci95", f"{metric}_ci"):
        low, high = _number(metrics.get(f"{stem}_low")), _number(metrics.get(f"{stem}_high"))
        if low is not None and high is not None and mean:
            return (high - low) / abs(mean)
    return None


def _add_quality(series: Series, metrics: dict, metric: str, mean: float) -> None:
    std = _number(metrics.get(f"{metric}_std"))
    if std is not None and mean:
        series.cv.append(std / abs(mean))
    width = _ci_rel_width(metrics, metric, mean)
    if width is not None:
        series.ci_rel_width.append(width)


def _pick_dataset(train_targets: Counter, dataset: str | None) -> str | None:
    if dataset is not None:
        if dataset not in train_targets:
            known = ", ".join(sorted(train_targets)) or "none"
            raise AnbenchError(f"--dataset {dataset}: no training results on it (trained datasets: {known})")
        return dataset
    if not train_targets:
        return None
    return max(sorted(train_targets), key=lambda name: train_targets[name])


def gather(store, devices: Iterable[str] | None = None, dataset: str | None = None) -> ReportData:
    """Read the store into a :class:`ReportData` (module contract)."""
    archs = store.architectures()
    if not archs:
        raise AnbenchError(f"nothing to report: the store {store.path} holds no architectures "
                           f"(add some with `anbench import`, `anbench sample --save` or `anbench measure`)")
    results = store.results()
    ids = [s.id for s in archs]
    named_by_id: dict[str, list[str]] = defaultdict(list)
    for name, arch in NAMED.items():  # a100-b and rtx3090-b are one architecture
        named_by_id[arch.id].append(name)

    trained: dict[str, set[str]] = defaultdict(set)
    for r in results:
        usable = r.metrics.get("verdict") in GOOD_VERDICTS and task_metric(r.metrics)[1] is not None
        if r.stage == "train" and usable:
            trained[r.target].add(r.arch_id)
    train_targets = Counter({target: len(arch_ids) for target, arch_ids in trained.items()})
    chosen_dataset = _pick_dataset(train_targets, dataset)

    measured = list(dict.fromkeys(r.target for r in results if r.stage == "measure"))
    if devices:
        devices = list(dict.fromkeys(devices))
        unknown = [d for d in devices if d not in measured]
        if unknown:
            raise AnbenchError(f"--device {unknown[0]}: no measurements of it in {store.path} "
                               f"(measured devices: {', '.join(measured) or 'none'})")
        wanted = devices
    else:
        wanted = measured

    names = Counter(task_metric(r.metrics)[0] for r in results if r.stage == "train" and r.target == chosen_dataset)
    metric_name = names.most_common(1)[0][0] if names else "top1"
    unit = "%" if metric_name.startswith("top") else ""
    accuracy = Series(f"{metric_name} (val_{metric_name}, {chosen_dataset or 'no dataset'})", unit, True)
    columns: dict[tuple[str, str], DeviceColumn] = {}
    for device in wanted:
        for metric in SPEED_METRICS:
            unit = metric.rsplit("_", 1)[1]
            columns[(device, metric)] = DeviceColumn(f"{device} {metric}", unit, higher_is_better(metric),
                                                     device=device, metric=metric)

    def plotted(r) -> bool:
        if r.metrics.get("verdict") not in GOOD_VERDICTS:
            return False
        if r.stage == "train":
            name, value = task_metric(r.metrics)
            return r.target == chosen_dataset and name == metric_name and value is not None
        return r.stage == "measure" and r.target in wanted and \
            any(_number(r.metrics.get(f"{m}_mean")) is not None for m in SPEED_METRICS)

    # (result, settings key, plotted): each computed once, the loops below read them again
    rows = [(r, _settings_key(r.settings), plotted(r)) for r in results]
    main = _main_settings((r, key) for r, key, shown in rows if shown)
    mixed: dict[tuple[str, str], dict[str, Any]] = {}
    for r, key, shown in rows:
        cell = (r.stage, r.target)
        if shown and key != main[cell]:
            entry = mixed.setdefault(cell, {"groups": set(), "used": json.loads(main[cell]), "results_left_out": 0})
            entry["groups"].add(key)
            entry["results_left_out"] += 1
    counts: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {"archs": set(), "results": 0, "failed": 0})
    failures = []
    curves = []
    for r, key, _ in rows:
        verdict = r.metrics.get("verdict")
        cell = counts[(r.stage, r.target)]
        cell["results"] += 1
        if verdict not in GOOD_VERDICTS:
            cell["failed"] += 1
            failures.append(Failure(r.arch_id, r.stage, r.target, r.run, str(verdict), _reason(r.metrics)))
            continue
        cell["archs"].add(r.arch_id)
        if (r.stage, r.target) in main and key != main[(r.stage, r.target)]:
            continue  # another recipe or measurement setup: not a repeat of the plotted runs
        if r.stage == "train" and r.target == chosen_dataset:
            name, value = task_metric(r.metrics)
            if value is not None and name == metric_name:
                accuracy.runs.setdefault(r.arch_id, []).append(value)
            curve = _curve(r.arch_id, r.run, r.metrics.get("curves"))
            if curve is not None:
                curves.append(curve)
        elif r.stage == "measure" and r.target in wanted:
            for metric in SPEED_METRICS:
                value = _number(r.metrics.get(f"{metric}_mean"))
                if value is None:
                    continue
                column = columns[(r.target, metric)]
                column.runs.setdefault(r.arch_id, []).append(value)
                _add_quality(column, r.metrics, metric, value)

    coverage = [CoverageRow(stage, target, len(c["archs"]), c["results"], c["failed"])
                for (stage, target), c in sorted(counts.items())]
    return ReportData(
        store_path=str(store.path),
        ids=ids,
        compact={s.id: s.arch.compact for s in archs},
        params_m={s.id: s.params_m for s in archs},
        macs_m={s.id: s.macs_m for s in archs},
        named={s.id: " / ".join(named_by_id[s.id]) for s in archs if s.id in named_by_id},
        dataset=chosen_dataset,
        accuracy=accuracy,
        metric_name=metric_name,
        columns=[c for c in columns.values() if c.runs],
        coverage=coverage,
        failures=failures,
        curves=curves,
        settings={f"{stage} {target}": {"groups": len(e["groups"]) + 1, "used": e["used"],
                                        "results_left_out": e["results_left_out"]}
                  for (stage, target), e in sorted(mixed.items())},
    )
