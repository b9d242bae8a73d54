"""The report as one self-contained HTML page.

Contract: :func:`render` returns HTML text that fetches nothing (figures are inline
``data:image/png;base64`` images, the style sheet is inline, no script), so the page
opens from a USB stick. It holds every figure with its caption, the Pareto tables, the
numbers behind the correlation matrix (Spearman, Kendall and the pair counts), the
distribution summaries, measurement quality, coverage and the failures with reasons.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any, Iterable

from .. import __version__
from .figures import Figure

MAX_FAILURES_SHOWN = 200
FRONT_ROWS_OPEN = 12  # longer Pareto tables start folded

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
.meta { color: #555; }
.figs { display: flex; flex-wrap: wrap; gap: 0 1.5em; }
.figs figure { flex: 0 1 640px; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92em; max-width: 60em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; } td.na { color: #999; }
code { font-size: 0.95em; } nav a { margin-right: 1em; }
details summary { cursor: pointer; color: #335; }
"""

SECTIONS = (
    ("pareto", "Accuracy against device speed, with Pareto fronts"),
    ("proxy", "MACs and params as proxies of measured speed"),
    ("correlation", "Rank correlation between devices"),
    ("distributions", "Distributions"),
    ("training", "Training curves"),
    ("quality", "Measurement quality and repeated runs"),
    ("coverage", "Coverage and failures"),
)


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return '<td class="na">n/a</td>'
    if isinstance(value, float):
        return f"<td>{value:.{digits}g}</td>"
    return f"<td>{escape(str(value))}</td>"


def _table(headers: list[str], rows: Iterable[list[str]], left: int = 0) -> str:
    head = "".join(f'<th class="l">{escape(h)}</th>' if i < left else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = "\n".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _text(value: Any) -> str:
    return f'<td class="l">{escape(str(value)) if value is not None else ""}</td>'


def _figure(fig: Figure, out_dir: Path, pareto: dict[str, Any] | None = None, task_metric: str = "top1") -> str:
    data = base64.b64encode((out_dir / f"{fig.name}.png").read_bytes()).decode("ascii")
    table = _pareto_table(pareto, task_metric) if pareto else ""
    return (f'<figure id="fig-{escape(fig.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(fig.title)}" width="{fig.width_px}" height="{fig.height_px}">'
            f"<figcaption><b>{escape(fig.title)}.</b> {escape(fig.caption)} "
            f"Files: <code>{escape(fig.name)}.png</code>, <code>{escape(fig.name)}.pdf</code>.</figcaption>"
            f"{table}</figure>")


def _pareto_table(entry: dict[str, Any], task_metric: str) -> str:
    if entry["front"] is None:
        return (f"<p>{escape(entry['device'])} {escape(entry['metric'])}: not enough data "
                f"({entry['n']} architectures).</p>")
    metric = entry["metric"]
    rows = [[_text(p["id"]), _text(p["name"] or ""), _text(p["compact"]), _num(p["accuracy"], 5), _num(p[metric], 5)]
            for p in entry["front"]]
    # the accuracy column holds the dataset's task metric: top-1 in %, macro-F1 or AUROC as fractions
    accuracy = f"val_{task_metric}" + (" [%]" if task_metric.startswith("top") else "")
    table = _table(["id", "name", "architecture", accuracy, metric], rows, left=3)
    folded = "" if len(entry["front"]) > FRONT_ROWS_OPEN else " open"
    return (f"<details{folded}><summary>Pareto front of {escape(entry['device'])} {escape(metric)}: "
            f"{len(entry['front'])} of {entry['n']} architectures</summary>{table}</details>")


def _matrix_table(correlations: dict[str, Any], kind: str, digits: int = 3) -> str:
    names = correlations["names"]
    rows = []
    for i, name in enumerate(names):
        cells = [_text(name)]
        for j in range(len(names)):
            value = correlations[kind][i][j]
            cells.append(_num(value, digits) if kind != "n" else f"<td>{value}</td>")
        rows.append(cells)
    return _table([""] + names, rows, left=1)


def _describe_rows(stats: dict[str, dict[str, Any]]) -> list[list[str]]:
    return [[_text(label), _num(s["n"]), _num(s["min"]), _num(s["median"]), _num(s["mean"]), _num(s["max"])]
            for label, s in stats.items()]


def _quality_tables(quality: dict[str, Any]) -> str:
    rows = []
    for label, q in quality["devices"].items():
        rows.append([_text(label), _num(q["cv"]["n"]), _num(_pct(q["cv"]["median"])),
                     _num(q["ci_rel_width"]["n"]), _num(_pct(q["ci_rel_width"]["median"])),
                     _num(q["repeated_architectures"]), _num(_pct(q["repeat_rel_spread"]["median"])),
                     _num(_pct(q["repeat_rel_spread"]["max"]))])
    acc = quality["accuracy"]
    rows.append([_text("accuracy (points, not %)"), _num(None), _num(None), _num(None), _num(None),
                 _num(acc["repeated_architectures"]), _num(acc["repeat_spread_points"]["median"]),
                 _num(acc["repeat_spread_points"]["max"])])
    return _table(["quantity", "results with std", "median CV [%]", "results with CI", "median CI width [%]",
                   "repeated architectures", "median repeat spread [%]", "max repeat spread [%]"], rows, left=1)


def _pct(value):
    return None if value is None else value * 100


def _section_body(key: str, numbers: dict[str, Any]) -> str:
    if key == "pareto":
        return ""  # each table sits under its figure
    if key == "correlation":
        c = numbers["correlations"]
        return ("<h3>Spearman ρ</h3>" + _matrix_table(c, "spearman") + "<h3>Kendall τ-b</h3>"
                + _matrix_table(c, "kendall") + "<h3>Architectures measured on both</h3>" + _matrix_table(c, "n"))
    if key == "distributions":
        return _table(["quantity", "n", "min", "median", "mean", "max"], _describe_rows(numbers["distributions"]),
                      left=1)
    if key == "training":
        runs = numbers["training_curves"]
        return "" if runs else "<p>No training curves stored (imported records carry only final values).</p>"
    if key == "quality":
        return _quality_tables(numbers["quality"])
    if key == "coverage":
        if not numbers["coverage"]:
            return (f"<p>No results stored yet: {numbers['architectures']} architectures, none trained, compiled "
                    f"or measured.</p>")
        cov = _table(["stage", "target", "architectures with a result", "results", "failed or invalid"],
                     ([_text(r["stage"]), _text(r["target"]), _num(r["architectures"]), _num(r["results"]),
                       _num(r["failed"])] for r in numbers["coverage"]), left=2)
        failures = numbers["failures"]
        if not failures:
            return cov + "<p>No failed or invalid results.</p>"
        shown = failures[:MAX_FAILURES_SHOWN]
        more = f" (first {len(shown)} shown; all are in report.json)" if len(failures) > len(shown) else ""
        rows = ([_text(f["arch_id"]), _text(f["stage"]), _text(f["target"]), _text(f["run"]), _text(f["verdict"]),
                 _text(f["reason"])] for f in shown)
        return cov + f"<h3>Failed or invalid results: {len(failures)}{more}</h3>" + _table(
            ["id", "stage", "target", "run", "verdict", "reason"], rows, left=6)
    return ""


def render(numbers: dict[str, Any], figures: list[Figure], out_dir: Path) -> str:
    named = ", ".join(f"{escape(n)} ({escape(a)})" for n, a in numbers["named_in_store"].items()) or "none"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>anbench report: {escape(numbers['store'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>anbench report</h1>",
        f'<p class="meta">Store <code>{escape(numbers["store"])}</code>: {numbers["architectures"]} architectures; '
        f"accuracy: val_{escape(numbers.get('metric_name') or 'top1')} on <b>{escape(str(numbers['dataset'] or 'no dataset trained'))}</b>. "
        f"Every figure and table uses one value per architecture: the <b>mean over its runs</b> "
        f"(repeated trainings or measurements); the spread between runs is under measurement quality. "
        f"Named architectures in the store: {named}. anbench {escape(__version__)}.</p>",
        *[f'<p class="meta"><b>Settings are mixed</b> for {escape(where)}: {mix["groups"]} settings groups; only '
          f'the one covering the most architectures is used, {mix["results_left_out"]} results with other settings '
          f'are left out (not averaged as repeats).</p>' for where, mix in numbers.get("settings_mixed", {}).items()],
        "<nav>" + "".join(f'<a href="#{k}">{escape(t)}</a>' for k, t in SECTIONS) + "</nav>",
    ]
    entries = {(e["device"], e["metric"]): e for e in numbers["pareto"]}
    for key, title in SECTIONS:
        parts.append(f'<section id="{key}"><h2>{escape(title)}</h2>')
        parts.append('<div class="figs">' + "".join(_figure(f, out_dir, entries.get(f.pareto_key),
                                                            numbers.get("metric_name") or "top1")
                                                    for f in figures if f.section == key) + "</div>")
        parts.append(_section_body(key, numbers))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
