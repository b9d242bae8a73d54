"""Store commands: ``results`` (list), ``export`` (ANB JSON / CSV) and ``import`` (ANB JSON)."""

from __future__ import annotations

from typing import Any

import click

from ..errors import AnbenchError
from .common import app, format_option, print_json, print_table

# The metrics a results table shows per stage (everything is in --format json).
_MAIN_METRICS = {
    "measure": ("throughput_ips_mean", "throughput_ips_std", "train_throughput_ips_mean", "latency_ms_mean",
                "latency_ms_std", "verdict"),
    "train": ("val_top1", "val_top5", "train_time_s"),
}


def _summary(stage: str, metrics: dict[str, Any]) -> str:
    keys = _MAIN_METRICS.get(stage) or tuple(metrics)[:4]
    parts = []
    for key in keys:
        value = metrics.get(key)
        if value is None or isinstance(value, (dict, list)):
            continue
        parts.append(f"{key}={value:.6g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


@click.command("results")
@click.option("--stage", type=click.Choice(["train", "compile", "measure"]), help="Only results of this stage.")
@click.option("--device", "target", metavar="NAME", help="Only results of this device (or dataset / compile target).")
@format_option("table", "json")
def results_cmd(stage, target, fmt):
    """List stored results (one row per result) or, when none are stored, the architectures.

    Tables show the main metrics; --format json gives every stored field of each
    result (settings, metrics, provenance) as one JSON list.

    \b
    Examples:
      anbench results
      anbench results --stage measure --device cpu
      anbench --store campaign.db results --format json > results.json
    """
    store = app().store()
    results = store.results(stage=stage, target=target)
    archs = {s.id: s for s in store.architectures()}
    if fmt == "json":
        print_json([
            {"key": r.key, "arch_id": r.arch_id, "architecture": archs[r.arch_id].arch.to_record(), "stage": r.stage,
             "target": r.target, "settings": r.settings, "metrics": r.metrics, "provenance": r.provenance,
             "source": r.source, "created_at": r.created_at}
            for r in results
        ])
        return
    if results:
        print_table(
            ([r.arch_id, archs[r.arch_id].arch.compact, r.stage, r.target, _summary(r.stage, r.metrics), r.source,
              r.created_at] for r in results),
            ["id", "architecture", "stage", "target", "metrics", "source", "created_at"],
        )
        return
    if stage or target or store.count_results():
        wanted = " ".join(filter(None, [f"stage {stage}" if stage else "", f"target {target}" if target else ""]))
        click.echo(f"no results for {wanted} in {store.path}")
        return
    if not archs:
        click.echo(f"the store {store.path} is empty: add architectures with `anbench sample`, "
                   f"`anbench measure` or `anbench import`")
        return
    click.echo(f"no results yet; {len(archs)} stored architecture{'' if len(archs) == 1 else 's'}:")
    print_table(
        ([s.id, s.arch.compact, s.params_m, s.macs_m, s.origin.get("source", ""), s.created_at] for s in archs.values()),
        ["id", "architecture", "params_m", "macs_m", "origin", "created_at"],
    )


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["anb-json", "csv"]), default="anb-json", show_default=True,
              help="anb-json: one Accel-NASBench result_<i>.json per architecture; csv: one results.csv table.")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Output directory (created if missing).")
@click.option("--device", "devices", multiple=True, metavar="NAME[=ALIAS]",
              help="Export only these devices (repeatable); NAME=ALIAS exports device NAME under ALIAS, "
                   "e.g. cuda=a100. Default: every measured device.")
@click.option("--dataset", default=None, metavar="NAME", help="Take training results of this dataset only "
              "(default: the newest training result of any dataset).")
@click.option("--overwrite", is_flag=True, help="Replace the result files of an earlier export in --out.")
@click.option("--valid-only", is_flag=True, help="Leave measurements judged INVALID out (the newest VALID one "
              "of a device is exported; none: null).")
def export_cmd(fmt, out_dir, devices, dataset, overwrite, valid_only):
    """Export every stored architecture with its newest results.

    anb-json writes files that Accel-NASBench loads as they are: the 28 architecture
    keys, metrics (val_top1, val_top5, train_time), model_info (macs, params in
    millions) and all 8 platform_perf entries (null when not measured); other devices
    follow as latency_<device>/throughput_<device>. A measurement's verdict (VALID or
    INVALID, with reasons) sits in its provenance entry and, in CSV, in verdict_<device>
    columns; --valid-only leaves INVALID ones out. Provenance of anbench's own results
    sits under an extra top-level key "anbench", which the loader ignores.

    \b
    Examples:
      anbench export --format anb-json --out dataset/
      anbench export --format anb-json --out dataset/ --device cuda=a100 --overwrite
      anbench export --format csv --out tables/
      anbench export --format anb-json --out dataset/ --valid-only
    """
    from ..export import export, parse_device_specs

    store = app().store()
    if not store.count_architectures():
        raise AnbenchError(f"nothing to export: the store {store.path} holds no architectures")
    summary = export(store, fmt, out_dir, overwrite=overwrite, devices=parse_device_specs(devices), dataset=dataset,
                     valid_only=valid_only)
    measured = ", ".join(f"{d} {n}" for d, n in sorted(summary.measured.items())) or "none"
    what = f"{summary.files} result files" if fmt == "anb-json" else "results.csv"
    click.echo(f"wrote {what} to {summary.out_dir} ({store.count_architectures()} architectures; "
               f"trained {summary.trained}; measured: {measured})")
    if summary.removed_stale:
        click.echo(f"removed {summary.removed_stale} result files of an earlier export")


@click.command("import")
@click.option("--format", "fmt", type=click.Choice(["anb-json", "pending"]), default="anb-json", show_default=True,
              help="anb-json: a folder of Accel-NASBench result_<i>.json records; pending: a side file (or a "
                   "folder of them) that a worker wrote when the store stayed unusable.")
@click.argument("directory", type=click.Path())
@click.option("--skip-invalid", is_flag=True, help="Report invalid records (one line each on stderr) and import the rest.")
def import_cmd(fmt, directory, skip_invalid):
    """Import Accel-NASBench records (result_<i>.json) into the store.

    Every record is checked before anything is written: one bad record stops the
    import with one line naming the file and the key (or, with --skip-invalid, is
    skipped). Architectures, training metrics (as a train result on imagenet) and every
    measured platform_perf device (as a measure result) are stored with source
    anb-json; importing the same folder again adds nothing. Params/MACs are recomputed
    and disagreements with model_info reported; the record's values are kept.

    \b
    Examples:
      anbench import --format anb-json anb_dataset_jsons/
      anbench --store anb.db import anb_dataset_jsons/ --skip-invalid
      anbench import --format pending anbench.db.pending/
    """
    from ..importer import import_anb_json

    store = app().store()
    if fmt == "pending":
        from ..pending import import_pending

        new, known = import_pending(store, directory)
        click.echo(f"pending results: {new} new, {known} already stored")
        return
    summary = import_anb_json(store, directory, skip_invalid=skip_invalid)
    for line in summary.invalid:
        click.echo(f"skipped {line}", err=True)
    for line in summary.lines():
        click.echo(line)
