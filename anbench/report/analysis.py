"""The report's numbers (Pareto sets, correlations, distributions, quality, coverage) as JSON-ready dicts.

Contract: :func:`analyse` turns a :class:`~anbench.report.data.ReportData` into one dict
that ``--format json`` prints as it is and the figures and the HTML page are drawn from,
so the page and the JSON never disagree. Every per-architecture value is the mean over
its runs. A quantity with fewer than :data:`MIN_POINTS` architectures gets ``null``
instead of a number, with the count, never a number computed from too little data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .data import DeviceColumn, ReportData, Series
from .stats import kendall_tau_b, pareto_front, spearman

MIN_POINTS = 3


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def paired(x: dict[str, float], y: dict[str, float]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Architectures present in both mappings (in ``x``'s order) and their two values."""
    ids = [a for a in x if a in y]
    return ids, np.array([x[a] for a in ids], dtype=float), np.array([y[a] for a in ids], dtype=float)


def pareto_entry(data: ReportData, column: DeviceColumn) -> dict[str, Any]:
    ids, acc, speed = paired(data.accuracy.mean_by_arch(), column.mean_by_arch())
    entry: dict[str, Any] = {"device": column.device, "metric": column.metric, "n": len(ids),
                             "higher_is_better": column.higher_is_better, "front": None}
    if len(ids) < MIN_POINTS:
        return entry
    entry["front"] = [
        {"id": ids[i], "compact": data.compact[ids[i]], "name": data.named.get(ids[i]),
         "accuracy": float(acc[i]), column.metric: float(speed[i])}
        for i in pareto_front(acc, speed, column.higher_is_better)
    ]
    return entry


def correlation_rows(data: ReportData) -> list[tuple[str, dict[str, float]]]:
    """(row name, arch id -> value): MACs, params, accuracy, then every device column."""
    rows = [("macs_m", data.macs_m), ("params_m", data.params_m)]
    if data.accuracy.runs:
        rows.append(("accuracy", data.accuracy.mean_by_arch()))
    rows += [(c.label, c.mean_by_arch()) for c in data.columns]
    return rows


def correlations(data: ReportData) -> dict[str, Any]:
    rows = correlation_rows(data)
    names = [name for name, _ in rows]
    size = len(rows)
    out = {"names": names, "spearman": [[None] * size for _ in range(size)],
           "kendall": [[None] * size for _ in range(size)], "n": [[0] * size for _ in range(size)]}
    for i in range(size):
        for j in range(i, size):
            _, x, y = paired(rows[i][1], rows[j][1])
            out["n"][i][j] = out["n"][j][i] = len(x)
            if len(x) < MIN_POINTS:
                continue
            rho, tau = (1.0, 1.0) if i == j else (_finite(spearman(x, y)), _finite(kendall_tau_b(x, y)))
            out["spearman"][i][j] = out["spearman"][j][i] = rho
            out["kendall"][i][j] = out["kendall"][j][i] = tau
    return out


def describe(values) -> dict[str, Any]:
    a = np.asarray(list(values), dtype=float)
    if not len(a):
        return {"n": 0, "min": None, "median": None, "mean": None, "max": None}
    return {"n": int(len(a)), "min": float(a.min()), "median": float(np.median(a)), "mean": float(a.mean()),
            "max": float(a.max())}


def repeat_spread(series: Series, relative: bool) -> list[float]:
    """Per repeated architecture: (max - min) over runs, relative to the mean when ``relative``."""
    out = []
    for values in series.repeated().values():
        spread = max(values) - min(values)
        mean = float(np.mean(values))
        out.append(spread / abs(mean) if relative and mean else spread)
    return out


def quality(data: ReportData) -> dict[str, Any]:
    per_column = {}
    for column in data.columns:
        per_column[column.label] = {
            "cv": describe(column.cv),
            "ci_rel_width": describe(column.ci_rel_width),
            "repeated_architectures": len(column.repeated()),
            "repeat_rel_spread": describe(repeat_spread(column, relative=True)),
        }
    return {
        "devices": per_column,
        "accuracy": {"repeated_architectures": len(data.accuracy.repeated()),
                     "repeat_spread_points": describe(repeat_spread(data.accuracy, relative=False))},
    }


def analyse(data: ReportData) -> dict[str, Any]:
    return {
        "store": data.store_path,
        "architectures": len(data.ids),
        "dataset": data.dataset,
        "metric_name": data.metric_name,
        "settings_mixed": data.settings,
        "value_per_architecture": "mean over its runs",
        "named_in_store": {name: arch_id for arch_id, name in data.named.items()},
        "pareto": [pareto_entry(data, c) for c in data.columns],
        "correlations": correlations(data),
        "distributions": {"accuracy": describe(data.accuracy.mean_by_arch().values()),
                          **{c.label: describe(c.mean_by_arch().values()) for c in data.columns}},
        "quality": quality(data),
        "training_curves": len(data.curves),
        "coverage": [vars(row) for row in data.coverage],
        "failures": [vars(f) for f in data.failures],
    }
