"""``anbench report``: figures, tables and one self-contained HTML page from the store."""

from __future__ import annotations

import click

from .common import app, print_json


@click.command("report")
@click.option("--out", "out_dir", default="report", show_default=True, type=click.Path(),
              help="Directory for the figures (PNG and PDF), report.json and index.html (created if missing).")
@click.option("--device", "devices", multiple=True, metavar="NAME",
              help="Only these devices (repeatable). Default: every measured device.")
@click.option("--dataset", default=None, metavar="NAME",
              help="Accuracy from training results on this dataset (default: the dataset with most trained "
                   "architectures).")
@click.option("--format", "fmt", type=click.Choice(["html", "json"]), default="html", show_default=True,
              help="html: write the figures and index.html into --out; json: print the numbers "
                   "(Pareto sets, correlations, counts) on stdout and write nothing.")
def report_cmd(out_dir, devices, dataset, fmt):
    """Plot and summarise the store: what a NAS researcher looks at.

    Accuracy against each device's throughput and latency with the Pareto front (its
    architectures listed, named ones marked); MACs and params against measured speed
    with rank correlations; a Spearman/Kendall matrix between devices, MACs, params and
    accuracy; distributions; measurement quality (CV, CI width, spread between repeated
    runs); coverage and failures. Each figure is a PNG and a PDF; index.html holds them
    all inline and opens without a network. Each architecture counts once: the mean over
    its runs.

    \b
    Examples:
      anbench --store anb.db import anb_dataset_jsons/
      anbench --store anb.db report --out rep/
      anbench --store anb.db report --device a100 --device zcu102 --out rep-small/
      anbench --store anb.db report --format json > numbers.json
    """
    from ..errors import AnbenchError
    from ..report import report_numbers, write_report

    store_path = app().store_path
    if not store_path.exists():  # opening would create an empty store just to report it empty
        raise AnbenchError(f"nothing to report: there is no store at {store_path} (give --store PATH)")
    store = app().store()
    if fmt == "json":
        print_json(report_numbers(store, devices, dataset))
        return
    summary = write_report(store, out_dir, devices, dataset)
    numbers = summary.numbers
    fronts = ", ".join(f"{e['device']} {e['metric'].split('_')[0]} {len(e['front'])}" for e in numbers["pareto"]
                       if e["front"] is not None) or "none (not enough data)"
    click.echo(f"wrote {len(summary.figures)} figures (PNG + PDF), report.json and {summary.index}")
    click.echo(f"{numbers['architectures']} architectures; accuracy on {numbers['dataset'] or 'no dataset'}; "
               f"Pareto fronts: {fronts}")
