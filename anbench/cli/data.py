"""Store commands: ``results`` (list or summarise), ``export`` (ANB JSON / CSV) and ``import``."""

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
# Above this many matching results a plain `anbench results` summarises instead of listing.
SUMMARY_ABOVE = 50


def _summary(stage: str, metrics: dict[str, Any]) -> str:
    keys = _MAIN_METRICS.get(stage) or tuple(metrics)[:4]
    task_metric = metrics.get("metric_name")
    if stage == "train" and task_metric not in (None, "top1", "top5"):
        keys = (f"val_{task_metric}",) + keys  # a task's own metric (e.g. ECG macro_f1) leads
    parts = []
    for key in keys:
        value = metrics.get(key)
        if value is None or isinstance(value, (dict, list)):
            continue
        parts.append(f"{key}={value:.6g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _counts_line(store) -> str:
    counts = store.run_counts()
    line = (f"{_plural(store.count_results(), 'result')}: {_plural(counts['architectures'], 'architecture')}, "
            f"{_plural(counts['runs'], 'run')}")
    if counts["repeated"]:
        line += f" ({_plural(counts['repeated'], 'architecture')} with repeated runs)"
    return line


def _print_summary(store, shown_hint: bool) -> None:
    rows = store.result_summary()
    print_table(([r["stage"], r["target"], r["results"], r["architectures"], r["repeats"], r["newest"]] for r in rows),
                ["stage", "target", "results", "architectures", "repeated runs", "newest"])
    click.echo(_counts_line(store))
    if shown_hint:
        click.echo("list rows with --limit N, --all, --arch ID, --stage STAGE or --device NAME")


@click.command("results")
@click.option("--stage", type=click.Choice(["train", "compile", "measure"]), help="Only results of this stage.")
@click.option("--device", "target", metavar="NAME", help="Only results of this device (or dataset / compile target).")
@click.option("--arch", "arch_prefix", metavar="ID", help="Only results of this architecture (id or unique id prefix).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="List at most this many results (oldest first).")
@click.option("--all", "show_all", is_flag=True, help="List every result, however many.")
@click.option("--summary", "only_summary", is_flag=True, help="Only the summary per stage and target.")
@format_option("table", "json")
def results_cmd(stage, target, arch_prefix, limit, show_all, only_summary, fmt):
    """List stored results (one row per result and run) or summarise a large store.

    Repeated runs of one architecture (other seeds, re-measurements, imported records of
    the same architecture) are separate rows told apart by the run column. When more
    than 50 results match and neither --limit nor --all is given, a summary per stage and
    target is printed instead (results, architectures, repeated runs, newest), with a
    line counting architectures and runs. --format json gives every stored field of
    each listed result.

    \b
    Examples:
      anbench results
      anbench results --stage measure --device cpu --limit 20
      anbench results --arch 3f2a --format json
      anbench --store campaign.db results --all --format json > results.json
    """
    store = app().store()
    arch_id = store.architecture_by_prefix(arch_prefix).id if arch_prefix else None
    filtered = bool(stage or target or arch_id)
    total = store.count_results()
    if only_summary:
        _print_summary(store, shown_hint=False)
        return
    if fmt == "table" and limit is None and not show_all:
        probe = store.results(stage=stage, target=target, arch_id=arch_id, limit=SUMMARY_ABOVE + 1) if filtered else []
        if (len(probe) if filtered else total) > SUMMARY_ABOVE:
            if filtered:
                click.echo(f"more than {SUMMARY_ABOVE} results match; the summary of the whole store:")
            _print_summary(store, shown_hint=True)
            return
    results = store.results(stage=stage, target=target, arch_id=arch_id, limit=None if show_all else limit)
    archs = {s.id: s for s in store.architectures()} if results or not total else {}
    if fmt == "json":
        print_json([
            {"key": r.key, "arch_id": r.arch_id, "architecture": archs[r.arch_id].arch.to_record(), "stage": r.stage,
             "target": r.target, "run": r.run, "settings": r.settings, "metrics": r.metrics,
             "provenance": r.provenance, "source": r.source, "created_at": r.created_at}
            for r in results
        ])
        return
    if results:
        print_table(
            ([r.arch_id, archs[r.arch_id].arch.compact, r.stage, r.target, r.run, _summary(r.stage, r.metrics),
              r.source, r.created_at] for r in results),
            ["id", "architecture", "stage", "target", "run", "metrics", "source", "created_at"],
        )
        if limit is not None and len(results) == limit:
            click.echo(f"(the first {limit} matching results; --all lists every one)")
        click.echo(_counts_line(store))
        return
    if filtered or total:
        wanted = " ".join(filter(None, [f"stage {stage}" if stage else "", f"target {target}" if target else "",
                                        f"architecture {arch_id}" if arch_id else ""]))
        click.echo(f"no results for {wanted} in {store.path}")
        return
    if not archs:
        click.echo(f"the store {store.path} is empty: add architectures with `anbench sample`, "
                   f"`anbench measure` or `anbench import`")
        return
    click.echo(f"no results yet; {_plural(len(archs), 'stored architecture')}:")
    print_table(
        ([s.id, s.arch.compact, s.params_m, s.macs_m, s.origin.get("source", ""), s.created_at] for s in archs.values()),
        ["id", "architecture", "params_m", "macs_m", "origin", "created_at"],
    )


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["anb-json", "csv"]), default="anb-json", show_default=True,
              help="anb-json: one Accel-NASBench result_<i>.json per record; csv: one results.csv table (a row per record).")
@click.option("--out", "out_dir", required=True, type=click.Path(),
              help="Output folder: new, empty, or an earlier anbench export (see --overwrite).")
@click.option("--device", "devices", multiple=True, metavar="NAME[=ALIAS]",
              help="Export only these devices (repeatable); NAME=ALIAS exports device NAME under ALIAS, "
                   "e.g. cuda=a100. Default: every measured device.")
@click.option("--dataset", default=None, metavar="NAME", help="Take training results of this dataset only "
              "(default: the newest training result of any dataset).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier anbench export in --out (the files its manifest "
              "lists, unchanged). A folder holding anything else is refused: anbench never removes files it did not write.")
@click.option("--valid-only", is_flag=True, help="Leave measurements judged INVALID out (the newest VALID one "
              "of a device is exported; none: null).")
def export_cmd(fmt, out_dir, devices, dataset, overwrite, valid_only):
    """Export every record: each imported record under its own index, plus anbench's own.

    anb-json writes files that Accel-NASBench loads as they are: the 28 architecture
    keys, metrics (val_top1, val_top5, train_time), model_info (macs, params in
    millions) and all 8 platform_perf entries (null when not measured); other devices
    follow as latency_<device>/throughput_<device>. Provenance of anbench's own results
    sits under an extra top-level key "anbench", which the loader ignores. An imported
    record comes back equal to its file; anbench's newest result of a device (or
    training) a record lacks is added to every record of that architecture. A
    measurement's verdict (VALID or INVALID, with reasons) sits in its provenance entry
    and, in CSV, in verdict_<device> columns; --valid-only leaves INVALID ones out.

    The folder is written beside --out and renamed into place at the end, with a
    manifest (anbench-export.json: files, sha256, counts, version, store fingerprint):
    an interrupted export leaves the previous one (or nothing), never a mix.

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
    click.echo(f"wrote {what} to {summary.out_dir} ({_plural(summary.records, 'record')} of "
               f"{_plural(summary.architectures, 'architecture')}; trained {summary.trained}; measured: {measured})")
    if summary.replaced:
        click.echo(f"replaced an earlier export ({summary.replaced} files)")


@click.command("import")
@click.option("--format", "fmt", type=click.Choice(["anb-json", "pending"]), default="anb-json", show_default=True,
              help="anb-json: a folder of Accel-NASBench result_<i>.json records; pending: a side file (or a "
                   "folder of them) that a worker wrote when the store stayed unusable.")
@click.argument("directory", type=click.Path())
@click.option("--skip-invalid", is_flag=True, help="Report invalid records (one line each on stderr) and import the rest.")
@click.option("--max-record-bytes", type=click.IntRange(min=1), default=None, metavar="N",
              help="Refuse record files larger than N bytes (default 1 MiB; a released record is ~1.3 kB).")
def import_cmd(fmt, directory, skip_invalid, max_record_bytes):
    """Import Accel-NASBench records (result_<i>.json) into the store.

    Every record is checked before anything is written: one bad record stops the
    import with one line naming the file and the key (or, with --skip-invalid, is
    skipped). Entries that are not regular files, symlinks leading out of the folder,
    files over --max-record-bytes, numbers that are not finite, negative or zero
    throughput/latency are refused the same way. Each record is a run of its own (run =
    its file name), so records repeating an architecture are all kept; importing the
    same folder again adds nothing. Params/MACs are recomputed and disagreements with
    model_info reported; the record's values are kept.

    \b
    Examples:
      anbench import --format anb-json anb_dataset_jsons/
      anbench --store anb.db import anb_dataset_jsons/ --skip-invalid
      anbench import --format pending anbench.db.pending/
    """
    store = app().store()
    if fmt == "pending":
        from ..pending import import_pending

        new, known = import_pending(store, directory)
        click.echo(f"pending results: {new} new, {known} already stored")
        return
    from ..importer import import_anb_json
    from ..record_files import DEFAULT_MAX_RECORD_BYTES

    summary = import_anb_json(store, directory, skip_invalid=skip_invalid,
                              max_record_bytes=max_record_bytes or DEFAULT_MAX_RECORD_BYTES)
    for line in summary.invalid:
        click.echo(f"skipped {line}", err=True)
    for line in summary.lines():
        click.echo(line)
