"""``anbench train``: train architectures on a dataset with a recipe; one record per model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from ..errors import AnbenchError
from ..workloop import WorkItem, raise_if_interrupted, run_items
from .common import app, format_option, host, print_json, resolve_work_archs, usable_tracker, work_arch_options

# convenience flags for the knobs changed most; every knob is also `--set KEY=VALUE`
_KNOB_FLAGS = (
    ("epochs", click.IntRange(min=1), "Epochs."),
    ("batch_size", click.IntRange(min=1), "Train batch size per process."),
    ("lr", float, "Peak LR for lr_batch_size images per step (scaled with the global batch)."),
    ("max_train_samples", click.IntRange(min=1), "Train on only the first N samples of the train split."),
    ("max_val_samples", click.IntRange(min=1), "Validate on only the first N samples of the val split."),
)


def _knob_options(func):
    for knob, kind, text in reversed(_KNOB_FLAGS):
        func = click.option(f"--{knob.replace('_', '-')}", knob, type=kind, default=None, help=text)(func)
    return func


@click.command("train")
@click.option("--dataset", "dataset_name", required=True, help="Dataset plugin name (see `anbench plugins`), e.g. synthetic.")
@work_arch_options
@click.option("--runs", "repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train each architecture this many times with distinct seeds (each kept as its own run).")
@click.option("--trainer", "trainer_name", default="cpu", show_default=True, help="Trainer plugin (cpu, cuda, ...).")
@click.option("--recipe", "recipe_name", default="proxified", show_default=True, help="Base recipe.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Recipe knobs from a TOML file or an original-pipeline INI .cfg.")
@click.option("--set", "set_items", multiple=True, metavar="KEY=VALUE", help="Set any recipe knob (repeatable).")
@_knob_options
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with the dataset's files "
              "(default: the dataset's environment variable).")
@click.option("--runs-dir", type=click.Path(file_okay=False),
              help="Where model checkpoints go, one folder per model (default: <store>-runs next to the store).")
@click.option("--shard", metavar="I/N", help="Train only shard I (0-based) of N of the architecture list, e.g. "
              "--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes for DDP on this node: relaunches this command under torchrun.")
@click.option("--track", "track_names", multiple=True, metavar="NAME",
              help="Track every model with the registered tracker NAME (repeatable; `anbench plugins` lists them).")
@click.option("--wandb", "use_wandb", is_flag=True, help="Track every model as a wandb run (key from WANDB_API_KEY or netrc); "
              "--track wandb with the two options below.")
@click.option("--wandb-project", default="anbench", show_default=True, help="wandb project.")
@click.option("--wandb-entity", default=None, help="wandb entity (team or user).")
@format_option("table", "json")
@click.pass_context
def train_cmd(ctx, dataset_name, arch_specs, from_store, sample_count, sample_seed, sample_start, repeats, trainer_name,
              recipe_name, config_path, set_items, epochs, batch_size, lr, max_train_samples, max_val_samples,
              data_dir, runs_dir, shard, nproc, track_names, use_wandb, wandb_project, wandb_entity, fmt):
    """Train architectures on a dataset; store one training record per model.

    Each record holds the task metric (top-1/top-5 for images) and the epoch it comes
    from, positive train time in seconds, per-epoch curves, the effective recipe (the
    key of the record), the seeds (run seed = --seed, model index, per-model seed) and
    the checkpoint path. Rerunning the same command skips finished models and
    continues an interrupted one from its last epoch checkpoint; several processes on
    one store share the work. Under torchrun (or --nproc K) every model trains with DDP.

    \b
    Examples:
      anbench train --dataset synthetic -n 3 --epochs 2 --seed 0
      anbench train --dataset synthetic --arch efficientnet-b0 --runs 3
      anbench train --dataset imagenet --trainer cuda -n 100 --seed 5 --nproc 4 --config conf_local.cfg
      torchrun --nproc_per_node 2 -m anbench train --dataset synthetic -n 2
    """
    from ..train import distributed, recipe as recipes
    from ..train.stage import TrainStage, follow, model_seed, stop_followers

    if nproc > 1 and not distributed.launched_by_torchrun():
        _relaunch_under_torchrun(nproc)
        return
    plugins = host()
    dataset = plugins.registry.dataset(dataset_name)
    trainer = plugins.registry.trainer(trainer_name)
    for kind, obj in (("dataset", dataset), ("trainer", trainer)):
        if kind == "dataset" and data_dir and hasattr(obj, "check"):
            continue  # its files are in --data-dir: check() below reads them
        reason = obj.availability()
        if reason:
            raise AnbenchError(f"{kind} '{obj.name}' is not available here: {reason}")
    data_path = Path(data_dir) if data_dir else None
    if hasattr(dataset, "check"):
        dataset.check(data_path)  # a missing or corrupt file stops us before any training

    config = recipes.load_config(config_path) if config_path else {}
    cli_knobs = recipes.parse_set(set_items)
    cli_knobs.update({k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr,
                                            max_train_samples=max_train_samples,
                                            max_val_samples=max_val_samples).items() if v is not None})
    effective = recipes.effective(recipe_name, getattr(dataset, "recipe_defaults", {}), config, cli_knobs)
    if hasattr(trainer, "resolve"):
        effective = trainer.resolve(effective)
    seed_given = ctx.get_parameter_source("sample_seed") != click.core.ParameterSource.DEFAULT
    run_seed = sample_seed if seed_given or "seed" not in config else int(config["seed"])
    shard_index, shard_count = _parse_shard(shard)

    dist = distributed.init_from_env(getattr(trainer, "backend", "gloo"))
    store_path = app().store_path
    stage = TrainStage(
        dataset=dataset, trainer=trainer, data_dir=data_path,
        runs_root=Path(runs_dir) if runs_dir else store_path.parent / f"{store_path.stem}-runs",
        trackers=_trackers(plugins, track_names, use_wandb, wandb_project, wandb_entity) if dist.is_main else [],
        group=f"sweep-{dataset_name}-seed{run_seed}", plugin_versions=plugins.versions(),
    )
    if not dist.is_main:
        try:
            follow(stage)
        finally:
            distributed.shutdown()
        return

    try:
        settings = dict(effective, trainer=trainer.name, world_size=dist.world_size)
        work = resolve_work_archs(arch_specs, from_store, sample_count, run_seed, sample_start, "train", dataset_name)
        if hasattr(dataset, "canonical_arch"):
            work = _canonical_work(work, dataset)
        items = []
        for index, entry in enumerate(work):
            for repeat in range(repeats):
                seed = model_seed(run_seed, entry.arch.id, repeat)
                item = WorkItem(entry.arch, "train", dataset_name, settings, f"seed={seed}", origin=entry.origin)
                stage.seeds[item.key] = {"run_seed": run_seed, "model_index": index, "repeat": repeat,
                                         "model_seed": seed}
                items.append(item)
        items = items[shard_index::shard_count]
        store = app().store()
        summary = run_items(store, items, stage, label=f"training on {dataset_name}",
                            describe=_describe if fmt == "table" else None)
    except BaseException:
        stop_followers(quietly=True)
        raise
    stop_followers()
    distributed.shutdown()
    if fmt == "json":
        print_json([_row(item, output.metrics) for item, output in summary.done]
                   + [dict(_row(item, {}), status="stored already" if state == "stored" else "taken by another worker")
                      for item, state in summary.skipped])
    else:
        click.echo(summary.line(f"trained on {dataset_name}"))
    raise_if_interrupted(summary)


def _canonical_work(work: list, dataset) -> list:
    """The architectures the dataset's network really reads (e.g. the 1-D part), without repeats."""
    from .common import WorkArch

    out, seen = [], set()
    for entry in work:
        arch = dataset.canonical_arch(entry.arch)
        if arch.id in seen:
            continue
        seen.add(arch.id)
        origin = entry.origin if arch == entry.arch else dict(entry.origin, canonical_of=entry.arch.id)
        out.append(WorkArch(arch, origin))
    return out


def _parse_shard(shard: str | None) -> tuple[int, int]:
    if not shard:
        return 0, 1
    index, sep, count = shard.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise AnbenchError(f"--shard takes I/N with whole numbers, e.g. 0/4, not '{shard}'") from None
    if not sep or n < 1 or not 0 <= i < n:
        raise AnbenchError(f"--shard {shard}: need 0 <= I < N")
    return i, n


def _trackers(plugins, track_names: tuple[str, ...], use_wandb: bool, project: str, entity: str | None) -> list:
    """The trackers turned on: each ``--track NAME`` once, ``--wandb`` as ``--track wandb``;
    the ``--wandb-*`` options are wandb's, any other tracker gets no options."""
    from ..train.stage import ActiveTracker

    names = dict.fromkeys([*track_names, *(["wandb"] if use_wandb else [])])
    return [ActiveTracker(usable_tracker(plugins, name, "--wandb" if name == "wandb" and use_wandb else f"--track {name}"),
                          {"project": project, "entity": entity} if name == "wandb" else {})
            for name in names]


def _relaunch_under_torchrun(nproc: int) -> None:
    """Run this same command line under torchrun with ``nproc`` processes (this node only)."""
    args = _without_nproc(sys.argv[1:])
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "anbench", *args]
    completed = subprocess.run(command, env=dict(os.environ))
    if completed.returncode:
        raise AnbenchError(f"torchrun with {nproc} processes exited with status {completed.returncode}")


def _without_nproc(args: list[str]) -> list[str]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _row(item: WorkItem, metrics: dict) -> dict:
    row = {"id": item.arch.id, "architecture": item.arch.compact, "run": item.run, "status": "trained"}
    for key in ("verdict", "val_top1", "val_top5", "metric", "train_time_s", "epochs_done", "checkpoint"):
        if key in metrics:
            row[key] = metrics[key]
    return row


def _describe(item: WorkItem, output) -> str:
    m = output.metrics
    if m.get("verdict") != "VALID":
        return f"{item.label}  {item.arch.compact}  {m.get('verdict')}: {m.get('error', '')}"
    top5 = f" top-5 {m['val_top5']:.2f}%" if m.get("val_top5") is not None else ""
    name = m.get("metric_name", "top1")
    headline = f"top-1 {m['val_top1']:.2f}%{top5}" if name == "top1" else f"{name} {m['metric']:.4g}"
    resumed = f" (resumed at epoch {m['resumed_from_epoch']})" if m.get("resumed_from_epoch") else ""
    return f"{item.label}  {item.arch.compact}  {headline}  {m['train_time_s']:.1f} s{resumed}"
