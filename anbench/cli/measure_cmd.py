"""``anbench measure``: inference throughput and latency on a device."""

from __future__ import annotations

import click

from ..errors import AnbenchError
from ..measure.environment import provenance, utc_now
from ..measure.timing import TimingPolicy, measure
from ..plugin_types import MeasureRequest
from ..store import StageResult
from .common import app, format_option, host, print_json, resolve_arch_specs


@click.command("measure")
@click.option("--device", "device_name", required=True, help="Device runner name (see `anbench plugins`).")
@click.option("--arch", "arch_specs", multiple=True, metavar="ARCH",
              help="Architecture(s): JSON object, file, stored id, name or - (JSON lines on stdin). Repeatable.")
@click.option("--from-store", is_flag=True, help="Measure every stored architecture that has no measurement on this device.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Batch size for throughput.")
@click.option("--resolution", type=click.IntRange(min=32), default=224, show_default=True, help="Input height and width.")
@click.option("--activation", type=click.Choice(["relu", "silu"]), default="relu", show_default=True,
              help="Model variant (relu + hard-sigmoid is the dataset's).")
@click.option("--precision", default="fp32", show_default=True, help="Numeric precision, if the device offers several.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True, help="Host threads (0 = runner default).")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Warm-up batches before timing.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True, help="Timed windows.")
@click.option("--batches", type=click.IntRange(min=1), default=3, show_default=True, help="Batches per timed window.")
@click.option("--no-latency", is_flag=True, help="Skip the batch-1 latency measurement.")
@click.option("--force", is_flag=True, help="Measure again even if a result with the same settings is stored.")
@format_option("table", "json")
def measure_cmd(device_name, arch_specs, from_store, batch_size, resolution, activation, precision, threads,
                warmup, repeats, batches, no_latency, force, fmt):
    """Measure inference throughput (images/s) and batch-1 latency (ms) on a device.

    Every measurement is stored with its settings and provenance; one already stored
    with the same settings is skipped (use --force to measure again), so an interrupted
    run continues where it stopped when started again.

    \b
    Examples:
      anbench measure --device cpu --arch efficientnet-b0 --batch-size 16
      anbench sample -n 3 --seed 1 --format jsonl | anbench measure --device cpu --arch -
      anbench measure --device cpu --from-store --resolution 160
    """
    plugins = host()
    runner = plugins.registry.device(device_name)
    reason = runner.availability()
    if reason:
        raise AnbenchError(f"device '{device_name}' is not available here: {reason}")
    if not arch_specs and not from_store:
        raise AnbenchError("nothing to measure: give --arch ARCH (repeatable) or --from-store")
    store = app().store()
    archs = resolve_arch_specs(arch_specs, store_loader=lambda: store) if arch_specs else []
    if from_store:
        seen = {a.id for a in archs}
        archs += [a for a in store.missing("measure", device_name) if a.id not in seen]
    policy = TimingPolicy(warmup_batches=warmup, repeats=repeats, batches_per_repeat=batches)
    device_facts = runner.describe()
    rows = []
    for arch in archs:
        request = MeasureRequest(arch, batch_size, (3, resolution, resolution), activation, precision, threads)
        settings = dict(request.settings(), timing=policy.as_dict(), latency=not no_latency)
        store.add_architecture(arch, origin={"source": "measure"})
        if not force and store.has_result(arch.id, "measure", device_name, settings):
            rows.append({"id": arch.id, "architecture": arch.compact, "status": "stored already"})
            continue
        started = utc_now()
        result = measure(runner, request, policy, latency=not no_latency)
        store.add_result(StageResult(
            arch_id=arch.id, stage="measure", target=device_name, settings=settings, metrics=result.metrics(),
            provenance=provenance(settings=settings, device=device_facts, seeds={"input": request.seed},
                                  started_at=started, plugin_versions=plugins.versions()),
        ), replace=force)
        rows.append({"id": arch.id, "architecture": arch.compact, "status": "measured",
                     "throughput_ips_mean": result.throughput_ips_mean, "throughput_ips_std": result.throughput_ips_std,
                     "latency_ms_mean": result.latency_ms_mean, "latency_ms_std": result.latency_ms_std})
        if fmt == "table":
            _print_progress(rows[-1])
    if fmt == "json":
        print_json(rows)
    elif not archs:
        click.echo(f"nothing to measure: every stored architecture has a measurement on {device_name}")
    else:
        skipped = sum(r["status"] != "measured" for r in rows)
        click.echo(f"{len(rows) - skipped} measured on {device_name}, {skipped} already stored")


def _print_progress(row: dict) -> None:
    def fmt(mean, std, unit):
        if mean is None:
            return "-"
        return f"{mean:.2f} ± {std:.2f} {unit}" if std is not None else f"{mean:.2f} {unit}"

    click.echo(f"{row['id']}  {row['architecture']}  throughput {fmt(row['throughput_ips_mean'], row['throughput_ips_std'], 'img/s')}"
               f"  latency {fmt(row['latency_ms_mean'], row['latency_ms_std'], 'ms')}")
