"""The report's figures, drawn with matplotlib (Agg) and saved as PNG and PDF.

Contract: :func:`draw_all` writes every figure into ``out_dir`` as ``<name>.png`` and
``<name>.pdf`` and returns one :class:`Figure` per figure, in page order, with the pixel
size of its PNG. Every panel that lacks data says so in words ("not enough data: 1
architecture") instead of drawing a misleading plot. Scatter points are rasterised in
the PDFs, so a 5,000-point panel stays small and fast to write. matplotlib is imported
here only, so the rest of anbench (and ``anbench --help``) never pays for it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import MIN_POINTS, paired, repeat_spread
from .data import CURVE_KEYS, DeviceColumn, ReportData

DPI = 100
FRONT_COLOR = "#d62728"
NAMED_COLOR = "#2ca02c"


def _points(n: int) -> dict:
    # thousands of points need small translucent dots; a few dozen must stay visible
    many = n > 500
    return {"s": 6 if many else 20, "alpha": 0.35 if many else 0.75, "color": "#4c72b0", "linewidths": 0,
            "rasterized": True}


@dataclass
class Figure:
    name: str  # file stem: <name>.png, <name>.pdf
    title: str
    caption: str
    width_px: int
    height_px: int
    section: str
    pareto_key: tuple[str, str] | None = None  # (device, metric) of a Pareto figure


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _not_enough(ax, what: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, fontsize=11, color="#555555",
            wrap=True)


def _count(n: int, noun: str = "architecture") -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _grid(plt, panels: int, width: float = 4.0, height: float = 3.3):
    cols = max(1, min(panels, 4))
    rows = max(1, math.ceil(panels / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=DPI, squeeze=False,
                             layout="constrained")
    flat = list(axes.flat)
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


_PRETTY = {"throughput_ips": "throughput [images/s]", "latency_ms": "latency [ms]"}


def pretty(metric: str) -> str:
    return _PRETTY.get(metric, metric)


def _axis_label(column: DeviceColumn) -> str:
    better = "higher" if column.higher_is_better else "lower"
    return f"{column.device} {pretty(column.metric)} ({better} is better)"


class Writer:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.figures: list[Figure] = []

    def save(self, fig, name: str, title: str, caption: str, section: str,
             pareto_key: tuple[str, str] | None = None) -> None:
        name = safe_name(name)
        try:
            for fmt, dpi in (("png", DPI), ("pdf", 150)):
                # temp file + rename: an interrupted report never leaves a half-written figure
                tmp = self.out_dir / f".{name}.{fmt}.tmp"
                try:
                    fig.savefig(tmp, format=fmt, dpi=dpi)
                    os.replace(tmp, self.out_dir / f"{name}.{fmt}")
                finally:
                    tmp.unlink(missing_ok=True)
            width, height = (round(v) for v in fig.get_size_inches() * DPI)
        finally:
            _plt().close(fig)
        self.figures.append(Figure(name, title, caption, width, height, section, pareto_key))


def pareto_figure(writer: Writer, data: ReportData, column: DeviceColumn, entry: dict[str, Any]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=DPI, layout="constrained")
    ids, acc, speed = paired(data.accuracy.mean_by_arch(), column.mean_by_arch())
    kind = column.metric.split("_")[0]
    title = f"{column.device}: accuracy vs {kind}"
    if entry["front"] is None:
        why = "no accuracy for any measured architecture" if not data.accuracy.runs else \
            f"not enough data: {_count(len(ids))} with both accuracy and {kind}"
        _not_enough(ax, why)
        ax.set_title(title)
        caption = why
    else:
        ax.scatter(speed, acc, label=f"{_count(len(ids))}", **_points(len(ids)))
        front = entry["front"]
        fx = [p[column.metric] for p in front]
        fy = [p["accuracy"] for p in front]
        order = np.argsort(fx)
        ax.step(np.asarray(fx)[order], np.asarray(fy)[order], where="pre" if column.higher_is_better else "post",
                color=FRONT_COLOR, lw=1.2, zorder=3)
        ax.scatter(fx, fy, s=22, color=FRONT_COLOR, zorder=4, label=f"Pareto front ({len(front)})")
        index = {a: i for i, a in enumerate(ids)}
        marked = [(name, index[a]) for a, name in data.named.items() if a in index]
        if marked:
            ax.scatter([speed[i] for _, i in marked], [acc[i] for _, i in marked], marker="*", s=140,
                       color=NAMED_COLOR, edgecolor="black", linewidths=0.5, zorder=5, label="named architectures")
            for name, i in marked:
                ax.annotate(name, (speed[i], acc[i]), xytext=(5, 5), textcoords="offset points", fontsize=8)
        ax.set_xlabel(_axis_label(column))
        ax.set_ylabel(data.accuracy.label + (f" [{data.accuracy.unit}]" if data.accuracy.unit else ""))
        ax.set_title(f"{title} (n={len(ids)})")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left" if column.higher_is_better else "lower right", fontsize=8)
        caption = (f"One point per architecture (mean over its runs). {_count(len(front))} on the "
                   f"Pareto front: no other is both at least as accurate and at least as "
                   f"{'fast' if kind == 'throughput' else 'quick'} on {column.device}.")
    writer.save(fig, f"pareto_{kind}_{column.device}", title, caption, "pareto", (column.device, column.metric))


def proxy_figure(writer: Writer, data: ReportData, cost: str, correlations: dict[str, Any]) -> None:
    plt = _plt()
    costs = data.macs_m if cost == "macs_m" else data.params_m
    cost_label = "MACs [M]" if cost == "macs_m" else "params [M]"
    fig, axes = _grid(plt, max(1, len(data.columns)))
    names = correlations["names"]
    title = f"{cost_label.split()[0]} against measured speed per device"
    if not data.columns:
        _not_enough(axes[0], "no device measurements stored")
    for ax, column in zip(axes, data.columns):
        _, x, y = paired(costs, column.mean_by_arch())
        ax.set_title(column.device + " " + column.metric.split("_")[0], fontsize=10)
        if len(x) < MIN_POINTS:
            _not_enough(ax, f"not enough data: {_count(len(x))}")
            continue
        ax.scatter(x, y, **_points(len(x)))
        i, j = names.index(cost), names.index(column.label)
        rho, tau = correlations["spearman"][i][j], correlations["kendall"][i][j]
        text = f"Spearman ρ = {_fmt(rho)}\nKendall τ = {_fmt(tau)}\nn = {len(x)}"
        ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=9,
                bbox=dict(boxstyle="round", facecolor="white", alpha=0.85, edgecolor="#999999"))
        ax.set_xlabel(cost_label)
        ax.set_ylabel(pretty(column.metric))
        ax.grid(alpha=0.3)
    caption = (f"Rank correlation of {cost_label.split()[0]} with each device's measured speed (one point per "
               f"architecture, mean over runs). Latency falls as throughput rises, so a good proxy shows a "
               f"positive correlation with latency and a negative one with throughput; the weaker it is, "
               f"the less {cost_label.split()[0]} says about that device.")
    writer.save(fig, f"{cost.split('_')[0]}_vs_speed", title, caption, "proxy")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def correlation_figure(writer: Writer, correlations: dict[str, Any]) -> None:
    plt = _plt()
    names = correlations["names"]
    size = len(names)
    side = max(4.5, 0.55 * size + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * side, side), dpi=DPI, layout="constrained")
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#dddddd")
    image = None
    for ax, kind, label in zip(axes, ("spearman", "kendall"), ("Spearman ρ", "Kendall τ-b")):
        matrix = np.array([[np.nan if v is None else v for v in row] for row in correlations[kind]], dtype=float)
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=-1, vmax=1)
        ax.set_xticks(range(size), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(size), names, fontsize=8)
        ax.set_title(label)
        for i in range(size):
            for j in range(size):
                value = matrix[i, j]
                text = "n/a" if np.isnan(value) else f"{value:.2f}"
                color = "white" if not np.isnan(value) and abs(value) > 0.6 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=7 if size > 8 else 8, color=color)
    fig.colorbar(image, ax=list(axes), shrink=0.7)
    caption = ("Rank correlation over the architectures measured on both (counts in the table below; n/a: fewer "
               f"than {MIN_POINTS}). Latency and throughput run in opposite directions, so their agreement "
               "shows as a negative value.")
    writer.save(fig, "correlation_matrix", "Rank correlation between devices, MACs, params and accuracy", caption,
                "correlation")


def distribution_figure(writer: Writer, data: ReportData) -> None:
    plt = _plt()
    # top-1 is in %; macro-F1, AUROC ... are fractions: the axis names the metric instead
    series = [(data.accuracy.label, data.accuracy.mean_by_arch(), data.accuracy.unit or data.metric_name)]
    series += [(c.label, c.mean_by_arch(), pretty(c.metric)) for c in data.columns]
    fig, axes = _grid(plt, len(series), height=2.8)
    for ax, (label, values, unit) in zip(axes, series):
        ax.set_title(label, fontsize=10)
        values = np.fromiter(values.values(), dtype=float)
        if len(values) < MIN_POINTS:
            _not_enough(ax, f"not enough data: {_count(len(values))}")
            continue
        ax.hist(values, bins=min(50, max(5, int(np.sqrt(len(values))))), color="#4c72b0", alpha=0.8)
        ax.axvline(np.median(values), color=FRONT_COLOR, lw=1, label=f"median {np.median(values):.4g}")
        ax.set_xlabel(unit)
        ax.set_ylabel("architectures")
        ax.legend(fontsize=8)
    writer.save(fig, "distributions", "Distributions of accuracy and of each device metric",
                "One value per architecture (mean over its runs).", "distributions")


def _boxes(ax, groups: list[tuple[str, list[float]]], xlabel: str, empty: str, scale: float = 100.0) -> None:
    """Horizontal box plots, one row per group (long device labels stay readable)."""
    groups = [(label, values) for label, values in groups if values]
    if not groups:
        _not_enough(ax, empty)
        return
    ax.boxplot([np.asarray(v) * scale for _, v in groups], orientation="horizontal", showfliers=True,
               flierprops={"markersize": 2})
    for position, (_, values) in enumerate(groups, 1):
        if len(values) <= 50:  # a box of a handful of values hides them: show each one
            ax.plot(np.asarray(values) * scale, position + np.linspace(-0.12, 0.12, len(values)), "o", ms=3,
                    color=FRONT_COLOR, alpha=0.7)
    ax.set_yticks(range(1, len(groups) + 1), [f"{label} (n={len(v)})" for label, v in groups], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")


def quality_figure(writer: Writer, data: ReportData) -> None:
    plt = _plt()
    has_ci = any(c.ci_rel_width for c in data.columns)
    rows = max(1, len(data.columns))
    panels = 4 if has_ci else 3
    fig, axes = plt.subplots(panels, 1, figsize=(8.0, (panels - 1) * _box_height(rows) + 1.6),
                             dpi=DPI, layout="constrained",
                             height_ratios=[_box_height(rows)] * (panels - 1) + [_box_height(1)])
    axes = list(axes)
    ax = axes.pop(0)
    no_std = list(dict.fromkeys(c.device for c in data.columns if not c.cv))
    partly = no_std and any(c.cv for c in data.columns)
    ax.set_title("coefficient of variation per result" + (f" (no std stored: {', '.join(no_std)})" if partly else ""),
                 fontsize=10)
    _boxes(ax, [(c.label, c.cv) for c in data.columns], "std / mean [%]",
           "no standard deviations stored" if data.columns else "no device measurements stored")
    if has_ci:
        ax = axes.pop(0)
        ax.set_title("95% CI width per result", fontsize=10)
        _boxes(ax, [(c.label, c.ci_rel_width) for c in data.columns], "CI width / mean [%]", "no CIs stored")
    ax = axes.pop(0)
    ax.set_title("spread between repeated measurements of one architecture", fontsize=10)
    _boxes(ax, [(c.label, repeat_spread(c, relative=True)) for c in data.columns], "(max - min) / mean [%]",
           "no repeated measurements")
    ax = axes.pop(0)
    spreads = repeat_spread(data.accuracy, relative=False)
    ax.set_title("spread between repeated trainings of one architecture", fontsize=10)
    _boxes(ax, [("accuracy", spreads)], "max - min [points]", "no repeated trainings", scale=1.0)
    writer.save(fig, "measurement_quality", "Measurement quality and spread between repeated runs",
                "Coefficient of variation (and CI width, where stored) of single results; spread over the runs "
                "of architectures that were trained or measured more than once.", "quality")


def _box_height(groups: int) -> float:
    return 0.9 + 0.32 * groups


MAX_CURVES = 300


def curves_figure(writer: Writer, data: ReportData) -> None:
    """Per-epoch training curves, one thin line per training run (an even sample when many)."""
    plt = _plt()
    curves = data.curves
    if len(curves) > MAX_CURVES:
        curves = [curves[i] for i in np.linspace(0, len(curves) - 1, MAX_CURVES).astype(int)]
    keys = [k for k in CURVE_KEYS if any(k in c.values for c in curves)]
    fig, axes = _grid(plt, len(keys), height=3.0)
    alpha = 0.8 if len(curves) <= 10 else max(0.08, 8 / len(curves))
    for ax, key in zip(axes, keys):
        for curve in curves:
            if key not in curve.values:
                continue
            points = [(e, v) for e, v in zip(curve.epochs, curve.values[key]) if v is not None]
            if not points:
                continue
            x, y = zip(*points)
            ax.plot(x, y, "-o" if len(points) < 3 else "-", ms=3, lw=0.8, alpha=alpha, color="#4c72b0")
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        # one epoch axis for all panels: validation-only-at-the-end panels line up with the others
        ax.set_xlim(min(min(c.epochs) for c in curves) - 0.5, max(max(c.epochs) for c in curves) + 0.5)
        ax.grid(alpha=0.3)
    shown = f"{len(curves)} of {len(data.curves)}" if len(curves) < len(data.curves) else f"{len(curves)}"
    writer.save(fig, "training_curves", f"Training curves on {data.dataset}",
                f"Per-epoch values of {shown} training runs (one line each; validation only in the epochs "
                f"that validated).", "training")


def coverage_figure(writer: Writer, data: ReportData) -> None:
    plt = _plt()
    rows = data.coverage
    fig, ax = plt.subplots(figsize=(7.2, max(2.4, 0.42 * len(rows) + 1.4)), dpi=DPI, layout="constrained")
    if not rows:
        _not_enough(ax, f"no results stored yet ({_count(len(data.ids))})")
    else:
        labels = [f"{r.stage}: {r.target}" for r in rows]
        good = [r.architectures for r in rows]
        failed = [r.failed for r in rows]
        y = np.arange(len(rows))
        ax.barh(y, good, color="#4c72b0", label="architectures with a result")
        if any(failed):
            ax.barh(y, failed, left=good, color=FRONT_COLOR, label="failed or invalid results")
        for i, (g, f) in enumerate(zip(good, failed)):
            ax.text(g + f, i, f" {g}" + (f" + {f} failed/invalid" if f else ""), va="center", fontsize=8)
        ax.set_yticks(y, labels, fontsize=9)
        ax.invert_yaxis()
        # room for the count labels right of the bars
        ax.set_xlim(0, max(len(data.ids), max(g + f for g, f in zip(good, failed))) * (1.4 if any(failed) else 1.18))
        ax.axvline(len(data.ids), color="#555555", ls="--", lw=1, label=f"stored architectures ({len(data.ids)})")
        ax.set_xlabel("architectures")
        fig.legend(fontsize=8, loc="outside lower center", ncols=3)
    ax.set_title("Coverage per stage and target")
    writer.save(fig, "coverage", "Coverage per stage and target",
                "Architectures with at least one usable result, and failed or invalid results, per stage and target.",
                "coverage")


def draw_all(data: ReportData, numbers: dict[str, Any], out_dir: Path) -> list[Figure]:
    writer = Writer(out_dir)
    entries = {(e["device"], e["metric"]): e for e in numbers["pareto"]}
    for metric in ("throughput_ips", "latency_ms"):
        for column in data.columns:
            if column.metric == metric:
                pareto_figure(writer, data, column, entries[(column.device, column.metric)])
    if not data.columns:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=DPI, layout="constrained")
        _not_enough(ax, "no device measurements stored: nothing to plot accuracy against")
        writer.save(fig, "pareto", "Accuracy vs device speed", "No device measurements stored.", "pareto")
    proxy_figure(writer, data, "macs_m", numbers["correlations"])
    proxy_figure(writer, data, "params_m", numbers["correlations"])
    correlation_figure(writer, numbers["correlations"])
    distribution_figure(writer, data)
    if data.curves:
        curves_figure(writer, data)
    quality_figure(writer, data)
    coverage_figure(writer, data)
    return writer.figures
