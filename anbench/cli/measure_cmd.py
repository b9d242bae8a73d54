"""``anbench measure``: inference throughput and latency on a device."""

from __future__ import annotations

import os

import click

from ..errors import AnbenchError
from ..measure.environment import provenance, utc_now
from ..measure.timing import TimingPolicy, measure
from ..plugin_types import MeasureRequest
from ..workloop import StageOutput, WorkItem, next_run, raise_if_interrupted, run_items
from .common import app, format_option, host, print_json, resolve_work_archs, work_arch_options


@click.command("measure")
@click.option("--device", "device_name", required=True, help="Device runner name (see `anbench plugins`).")
@work_arch_options
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Batch size for throughput.")
@click.option("--resolution", type=click.IntRange(min=32, max=4096), default=224, show_default=True,
              help="Input height and width.")
@click.option("--activation", type=click.Choice(["relu", "silu"]), default="relu", show_default=True,
              help="Model variant (relu + hard-sigmoid is the dataset's).")
@click.option("--precision", default="fp32", show_default=True, help="Numeric precision, if the device offers several.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="Host threads (0 = runner default; more than the logical CPUs is clamped).")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Warm-up batches before timing.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True, help="Timed windows.")
@click.option("--batches", type=click.IntRange(min=1), default=3, show_default=True, help="Batches per timed window.")
@click.option("--no-latency", is_flag=True, help="Skip the batch-1 latency measurement.")
@click.option("--force", is_flag=True, help="Measure again even if a result with the same settings is stored; "
              "the new measurement is kept as another run beside the earlier ones.")
@format_option("table", "json")
def measure_cmd(device_name, arch_specs, from_store, sample_count, sample_seed, sample_start, batch_size, resolution,
                activation, precision, threads, warmup, repeats, batches, no_latency, force, fmt):
    """Measure inference throughput (images/s) and batch-1 latency (ms) on a device.

    Every measurement is stored with its settings and provenance; one already stored
    with the same settings is skipped (--force adds another run), so an interrupted
    run continues where it stopped when started again. Several `anbench measure`
    processes on one store share the work: each architecture is measured once.

    \b
    Examples:
      anbench measure --device cpu --arch efficientnet-b0 --batch-size 16
      anbench measure --device cpu -n 5 --seed 0
      anbench sample -n 3 --seed 1 --format jsonl | anbench measure --device cpu --arch -
      anbench measure --device cpu --from-store --resolution 160
    """
    plugins = host()
    runner = plugins.registry.device(device_name)
    reason = runner.availability()
    if reason:
        raise AnbenchError(f"device '{device_name}' is not available here: {reason}")
    if not arch_specs and not from_store and not sample_count:
        raise AnbenchError("nothing to measure: give --arch ARCH (repeatable), -n N [--seed S] or --from-store")
    threads = _clamp_threads(threads)
    store = app().store()
    work = resolve_work_archs(arch_specs, from_store, sample_count, sample_seed, sample_start, "measure", device_name)
    policy = TimingPolicy(warmup_batches=warmup, repeats=repeats, batches_per_repeat=batches)
    device_facts = runner.describe()

    def request_for(arch) -> MeasureRequest:
        return MeasureRequest(arch, batch_size, (3, resolution, resolution), activation, precision, threads)

    items = []
    for entry in work:
        settings = dict(request_for(entry.arch).settings(), timing=policy.as_dict(), latency=not no_latency)
        run = next_run(store, entry.arch.id, "measure", device_name, settings) if force else ""
        items.append(WorkItem(entry.arch, "measure", device_name, settings, run, origin=entry.origin))

    def measure_one(item: WorkItem, ctx) -> StageOutput:
        request = request_for(item.arch)
        started = utc_now()
        ctx.status("measuring")
        result = measure(runner, request, policy, latency=not no_latency)
        return StageOutput(result.metrics(), provenance(
            settings=item.settings, device=device_facts, seeds={"input": request.seed}, started_at=started,
            plugin_versions=plugins.versions()))

    summary = run_items(store, items, measure_one, label=f"measuring on {device_name}",
                        describe=_describe if fmt == "table" else None)
    if fmt == "json":
        rows = [dict(_row(item, "measured"), **_main_metrics(output.metrics)) for item, output in summary.done]
        rows += [_row(item, "stored already" if state == "stored" else "taken by another worker")
                 for item, state in summary.skipped]
        print_json(rows)
    elif not items:
        click.echo(f"nothing to measure: every stored architecture has a measurement on {device_name}")
    else:
        click.echo(summary.line(f"measured on {device_name}"))
    raise_if_interrupted(summary)


def _clamp_threads(threads: int) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads > cpus:
        click.echo(f"warning: --threads {threads} is more than the {cpus} CPUs this process may use; using {cpus}",
                   err=True)
        return cpus
    return threads


def _row(item: WorkItem, status: str) -> dict:
    row = {"id": item.arch.id, "architecture": item.arch.compact, "status": status}
    if item.run:
        row["run"] = item.run
    return row


def _main_metrics(metrics: dict) -> dict:
    keys = ("throughput_ips_mean", "throughput_ips_std", "latency_ms_mean", "latency_ms_std")
    return {key: metrics.get(key) for key in keys}


def _describe(item: WorkItem, output: StageOutput) -> str:
    def fmt(mean, std, unit):
        if mean is None:
            return "-"
        return f"{mean:.2f} ± {std:.2f} {unit}" if std is not None else f"{mean:.2f} {unit}"

    m = output.metrics
    return (f"{item.label}  {item.arch.compact}  throughput "
            f"{fmt(m.get('throughput_ips_mean'), m.get('throughput_ips_std'), 'img/s')}"
            f"  latency {fmt(m.get('latency_ms_mean'), m.get('latency_ms_std'), 'ms')}")
