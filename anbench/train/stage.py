"""The ``train`` stage: one work item (architecture x dataset x recipe x seed) -> one record.

:class:`TrainStage` is the stage function handed to :func:`anbench.workloop.run_items`.
Every model trains in its own directory keyed by the item's key, so a rerun of the same
command finds the interrupted model's epoch checkpoint and continues it.

Under DDP only rank 0 runs the work loop (it owns the store); before training an item it
broadcasts that item, and the other ranks, waiting in :func:`follow`, train it with it.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..measure.environment import provenance, utc_now
from ..plugin_types import TrackerRun, TrainRequest, TrainResult
from ..workloop import ItemContext, StageOutput, WorkItem
from . import distributed


def model_seed(run_seed: int, arch_id: str, repeat: int) -> int:
    """The per-model seed: differs per architecture and repeat, same on every machine."""
    digest = hashlib.sha256(f"anbench-train:{run_seed}:{arch_id}:{repeat}".encode()).hexdigest()
    return int(digest[:8], 16) % 2**31


def run_dir_for(runs_root: Path, item: WorkItem) -> Path:
    return Path(runs_root) / item.target / item.key[:20]


@dataclass
class ActiveTracker:
    tracker: Any
    options: dict[str, Any]


@dataclass
class TrainStage:
    """Trains one item per call. ``seeds[item.key]`` holds the item's seed facts."""

    dataset: Any
    trainer: Any
    runs_root: Path
    data_dir: Path | None = None
    trackers: list[ActiveTracker] = field(default_factory=list)
    group: str = ""
    plugin_versions: dict[str, Any] = field(default_factory=dict)
    seeds: dict[str, dict[str, int]] = field(default_factory=dict)

    def __call__(self, item: WorkItem, ctx: ItemContext | None) -> StageOutput:
        if distributed.info().is_main and distributed.info().active:
            distributed.broadcast(("train", item, self.seeds[item.key]))
        return self.train(item, self.seeds[item.key], ctx.status if ctx is not None else None)

    def train(self, item: WorkItem, seeds: dict[str, int], status=None) -> StageOutput:
        from ..costs import count_costs

        is_main = distributed.info().is_main
        started = utc_now()
        recipe = {k: item.settings[k] for k in item.settings if k not in ("trainer", "world_size")}
        # a task with its own network (the 1-D tasks) counts it on its own input
        costs = self.dataset.costs(item.arch) if hasattr(self.dataset, "costs") else count_costs(item.arch)
        handles = self._start_trackers(item, seeds, costs) if is_main else []

        epochs = item.settings["epochs"]

        def on_epoch(row: dict[str, Any]) -> None:
            if is_main and not sys.stderr.isatty():  # logs get a line per epoch; terminals the live status
                print(epoch_line(item, row, epochs), file=sys.stderr, flush=True)
            for active, handle in handles:
                _quietly(active.tracker.log_epoch, handle, row)

        request = TrainRequest(
            arch=item.arch, dataset=item.target, recipe=recipe, run_dir=run_dir_for(self.runs_root, item),
            seed=seeds["model_seed"], data=self.dataset, data_dir=self.data_dir, on_epoch=on_epoch, status=status,
        )
        result = self.trainer.train(request)
        metrics = record_metrics(result, self.dataset.metric_name, costs)
        metrics.update({
            "cost_input_shape": list(self.dataset.input_shape) if hasattr(self.dataset, "costs") else [3, 224, 224],
            "metric_split": getattr(self.dataset, "eval_split", "val"),
            "metric_selection": "final_epoch",  # the loop reports the last epoch's evaluation
        })
        for active, handle in handles:
            _quietly(active.tracker.finish, handle, metrics, result.checkpoint)
        facts = self.trainer.describe() if hasattr(self.trainer, "describe") else {}
        return StageOutput(metrics, provenance(
            settings=item.settings, device=facts, seeds=seeds, started_at=started,
            plugin_versions=self.plugin_versions))

    def _start_trackers(self, item: WorkItem, seeds: dict[str, int], costs) -> list[tuple[ActiveTracker, Any]]:
        handles = []
        config = {"dataset": item.target, "run": item.run, "key": item.key, "arch_id": item.arch.id,
                  "architecture": item.arch.to_record(), "settings": item.settings, "seeds": seeds,
                  "params_m": costs.params_m, "macs_m": costs.macs_m}
        for active in self.trackers:
            run = TrackerRun(name=f"{item.arch.id}-{item.run or 'run'}", group=self.group, config=config,
                             directory=run_dir_for(self.runs_root, item), options=active.options)
            handle = _quietly(active.tracker.start, run)
            if handle is not None:
                handles.append((active, handle))
        return handles


def epoch_line(item: WorkItem, row: dict[str, Any], epochs: int) -> str:
    parts = [f"{item.label} epoch {row['epoch'] + 1}/{epochs}"]
    if row.get("resolution"):
        parts.append(f"res {row['resolution']}")
    parts += [f"{key} {row[key]:.4g}" for key in sorted(row)
              if (key.startswith("train_") or key.startswith("val_")) and isinstance(row[key], float)]
    parts.append(f"{row.get('epoch_time_s', 0.0):.1f} s")
    return "  ".join(parts)


def _quietly(fn, *args):
    """Trackers never fail a training: a raising tracker call is reported and ignored."""
    try:
        return fn(*args)
    except Exception as exc:  # a tracker's service or library can raise anything
        print(f"anbench: warning: tracker call {getattr(fn, '__qualname__', fn)} failed: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def record_metrics(result: TrainResult, metric_name: str, costs) -> dict[str, Any]:
    """The stored metrics of one trained model (flat; units in names; curves as a list)."""
    metrics: dict[str, Any] = {"verdict": result.verdict, "metric_name": metric_name}
    metrics.update(result.metrics)
    metrics.setdefault("val_top1", result.val_top1)
    metrics.setdefault("val_top5", result.val_top5)
    metrics["metric"] = result.metrics.get(f"val_{metric_name}")
    metrics.update({
        "metric_epochs": list(result.metric_epochs),
        "train_time_s": result.train_time_s,
        "epochs_done": len(result.curves),
        "params_m": costs.params_m,
        "macs_m": costs.macs_m,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "curves": [dict(row) for row in result.curves],
    })
    for key in ("resumed_from_epoch", "error", "engine"):
        if key in result.extra:
            metrics[key] = result.extra[key]
    return metrics


def follow(stage: TrainStage) -> None:
    """Non-zero ranks: train whatever rank 0 broadcasts until it says stop."""
    while True:
        message = distributed.broadcast(None)
        if message is None or message[0] == "stop":
            return
        _, item, seeds = message
        stage.train(item, seeds)


def stop_followers(quietly: bool = False) -> None:
    """Send the other ranks out of :func:`follow`. ``quietly`` (rank 0 is already failing): a
    rank that failed in the same training and has exited (gloo: "Connection closed by peer")
    is no second error, so the error that ended the run is the one reported."""
    if distributed.info().active and distributed.info().is_main:
        try:
            distributed.broadcast(("stop", None, None))
        except RuntimeError:  # torch.distributed.DistBackendError is one
            if not quietly:
                raise
