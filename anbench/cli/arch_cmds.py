"""``anbench sample`` and ``anbench arch info``."""

from __future__ import annotations

import click

from ..costs import count_costs
from ..searchspace import SAMPLER_VERSION, Constraints, sample
from .common import app, format_option, print_json, print_jsonl, print_table, resolve_arch_specs


def arch_row(arch) -> dict:
    costs = count_costs(arch)
    return {
        "id": arch.id,
        "architecture": arch.to_record(),
        "params_m": costs.params_m,
        "macs_m": costs.macs_m,
    }


@click.command("sample")
@click.option("-n", "count", type=click.IntRange(min=0), default=10, show_default=True, help="How many architectures.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampler seed; same seed, same architectures anywhere.")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True,
              help="Index of the first architecture in the seed's stream (for shards).")
@click.option("--no-se", is_flag=True, help="Only architectures without squeeze-excite (DPUs without hard-sigmoid).")
@click.option("--macs-min", type=float, help="Lowest MACs, in millions (inclusive).")
@click.option("--macs-max", type=float, help="Highest MACs, in millions (inclusive).")
@click.option("--params-min", type=float, help="Fewest params, in millions (inclusive).")
@click.option("--params-max", type=float, help="Most params, in millions (inclusive).")
@click.option("--save", is_flag=True, help="Also store the architectures (with seed and index) in the results store.")
@format_option("table", "jsonl", "json")
def sample_cmd(count, seed, start, no_se, macs_min, macs_max, params_min, params_max, save, fmt):
    """Sample architectures uniformly from the search space.

    Architecture i of seed S is the same on every machine and Python version; the
    sampler version is recorded with stored architectures.

    \b
    Examples:
      anbench sample -n 5 --seed 1
      anbench sample -n 100 --seed 7 --no-se --macs-max 300 --format jsonl > archs.jsonl
      anbench sample -n 50 --seed 7 --start 50 --save     # the second shard of 50
    """
    constraints = Constraints(no_se, macs_min, macs_max, params_min, params_max)
    archs = sample(count, seed, constraints, start=start)
    rows = [dict(arch_row(a), seed=seed, index=start + i) for i, a in enumerate(archs)]
    if save:
        store = app().store()
        with store.transaction():
            for row, arch in zip(rows, archs):
                store.add_architecture(arch, origin={
                    "source": "sample", "seed": seed, "index": row["index"],
                    "sampler_version": SAMPLER_VERSION, "constraints": constraints.as_dict(),
                })
    if fmt == "jsonl":
        print_jsonl(rows)
    elif fmt == "json":
        print_json(rows)
    else:
        print_table(([r["index"], r["id"], a.compact, f"{r['params_m']:.6f}", f"{r['macs_m']:.6f}"]
                     for r, a in zip(rows, archs)), ["index", "id", "architecture", "params_m", "macs_m"])


@click.group("arch")
def arch_group():
    """Inspect architectures."""


@arch_group.command("info")
@click.argument("archs", nargs=-1, required=True, metavar="ARCH...")
@click.option("--layers/--no-layers", default=True, help="Print the per-block layer summary (table format).")
@format_option("table", "json")
def arch_info_cmd(archs, layers, fmt):
    """Params, MACs and a layer summary of architectures.

    ARCH is a JSON object with the 28 keys block0_e .. block6_se, a JSON file, a stored
    id (a unique prefix), a named architecture, or - for JSON lines on stdin (one
    architecture per line). MACs and params are in millions at 1x3x224x224, counted
    like the Accel-NASBench records (thop's convention), without a forward pass.

    \b
    Examples:
      anbench arch info efficientnet-b0
      anbench arch info --format json '{"block0_e": 1, "block0_k": 3, ...}'
      anbench sample -n 1000 --format jsonl | anbench arch info --format json -
    """
    resolved = resolve_arch_specs(archs, store_loader=lambda: app().store())
    if fmt == "json":
        print_jsonl(arch_row(a) for a in resolved)
        return
    for number, arch in enumerate(resolved):
        if number:
            click.echo()
        row = arch_row(arch)
        click.echo(f"id {arch.id}  {arch.compact}")
        click.echo(f"params {row['params_m']:.6f} M   MACs {row['macs_m']:.6f} M   layers {arch.num_layers}")
        if layers:
            print_table(([b.index, b.expansion, b.kernel, b.layers, "yes" if b.se else "no", b.stride,
                          f"{b.in_channels}->{b.out_channels}"] for b in arch.blocks()),
                        ["block", "e", "k", "layers", "se", "stride", "channels"])
