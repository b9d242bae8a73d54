"""The proxified training loop (spec 4.6-4.7), shared by every trainer plugin.

A trainer only says where and how to compute (:class:`Engine`: device, AMP precision,
channels_last); this module does the rest: model, SGD with weight decay off biases and
BatchNorm, per-step triangular LR, progressive resizing, label-smoothed loss,
validation with sample-weighted reduction over ranks, epoch checkpoints with resume,
and failure handling that reaches every rank (non-finite loss, out of memory, errors).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AnbenchError
from ..plugin_types import DataRequest, TrainRequest, TrainResult
from . import checkpoint, distributed, schedule

_AMP_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class Engine:
    """Where the loop computes. ``precision``: ``fp32`` or AMP ``fp16``/``bf16`` (autocast)."""

    device: str = "cpu"
    precision: str = "fp32"
    channels_last: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "precision": self.precision, "channels_last": self.channels_last}


class _StepFailed(Exception):
    def __init__(self, code: int, error: str) -> None:
        super().__init__(error)
        self.code = code


def build_network(request: TrainRequest, dataset) -> Any:
    from ..models import build_model

    recipe = request.recipe
    kwargs = dict(activation=recipe["activation"], mode="train", dropout=recipe["dropout"],
                  stochastic_depth=recipe["stochastic_depth"])
    custom = getattr(dataset, "build_model", None)
    if custom is not None:
        return custom(request.arch, **kwargs)
    return build_model(request.arch, num_classes=dataset.num_classes, **kwargs)


def param_groups(model) -> list[dict[str, Any]]:
    """Two groups (spec 4.6): weights with decay; every 1-D parameter and bias without."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    return [{"params": decay, "decay": True}, {"params": no_decay, "decay": False}]


def _seed_all(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def _oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class Loop:
    """One model's training. Call :meth:`run` once."""

    def __init__(self, request: TrainRequest, engine: Engine, dataset) -> None:
        import torch

        self.request = request
        self.recipe = request.recipe
        self.engine = engine
        self.dataset = dataset
        self.dist = distributed.info()
        self.device = torch.device(engine.device)
        self.amp_dtype = getattr(torch, _AMP_DTYPES[engine.precision]) if engine.precision in _AMP_DTYPES else None
        self.image = dataset.task == "image2d"
        self.memory_format = torch.channels_last if (engine.channels_last and self.image) else torch.contiguous_format
        self.multilabel = bool(getattr(dataset, "multilabel", False))
        self.status = request.status or (lambda text: None)

    # -- set-up --

    def _criterion(self):
        from torch import nn

        if self.multilabel:
            return nn.BCEWithLogitsLoss()
        # torch's smoothing target is (1-eps)*onehot + eps/K, the original CrossEntropyLabelSmooth
        return nn.CrossEntropyLoss(label_smoothing=self.recipe["label_smoothing"])

    def _data(self, split: str, epoch: int, resolution: int | None):
        r = self.recipe
        train = split == "train"
        return self.dataset.loader(DataRequest(
            split=split, batch_size=r["batch_size"] if train else r["val_batch_size"],
            resolution=resolution if self.image else None, epoch=epoch, seed=self.request.seed,
            rank=self.dist.rank, world_size=self.dist.world_size, data_dir=self.request.data_dir,
            max_samples=r["max_train_samples"] if train else r["max_val_samples"],
            num_workers=r["num_workers"], drop_last=train, crop_ratio=r["crop_ratio"], device=str(self.device),
        ))

    def _to_device(self, batch):
        inputs, targets = batch[0], batch[1]
        groups = batch[2] if len(batch) > 2 else None
        inputs = inputs.to(self.device, non_blocking=True)
        if self.image:
            inputs = inputs.contiguous(memory_format=self.memory_format)
        return inputs.float() if not inputs.is_floating_point() else inputs, targets.to(self.device, non_blocking=True), groups

    def _autocast(self):
        import torch

        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    # -- the run --

    def run(self) -> TrainResult:
        import torch
        from torch import nn

        r = self.recipe
        _seed_all(self.request.seed)  # same initial weights on every rank (DDP also broadcasts them)
        model = build_network(self.request, self.dataset).to(self.device, memory_format=self.memory_format)
        groups = param_groups(model)
        for group in groups:
            group["weight_decay"] = r["weight_decay"] if group.pop("decay") else 0.0
        if r["optimizer"] == "adam":
            optimizer = torch.optim.Adam(groups, lr=1.0)
        else:
            optimizer = torch.optim.SGD(groups, lr=1.0, momentum=r["momentum"], nesterov=r["nesterov"])
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.engine.precision == "fp16")
        state = None
        if self.request.resume:
            # rank 0's file: other nodes may not share its disk
            state = distributed.broadcast(checkpoint.load(self.request.run_dir) if self.dist.is_main else None)
        first_epoch, curves, elapsed_s, resumed_from = 0, [], 0.0, None
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            first_epoch, curves, elapsed_s = state["epochs_done"], list(state["curves"]), state["train_time_s"]
            resumed_from = first_epoch
            _set_rng_state(state["rng"])
        else:
            # dropout / stochastic-depth draws differ per rank, as in any data-parallel run
            torch.manual_seed(self.request.seed + 7919 * self.dist.rank)
        net = model
        if self.dist.active:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        criterion = self._criterion()
        peak = schedule.peak_lr(r, self.dist.world_size)
        verdict, error = "VALID", None
        for epoch in range(first_epoch, r["epochs"]):
            started = time.perf_counter()
            try:
                row = self._train_epoch(net, optimizer, scaler, criterion, epoch, peak)
                if epoch >= r["epochs"] - r["val_last_epochs"]:
                    # the bare module: DDP's forward would broadcast buffers, and ranks may have
                    # one val batch more or less than each other
                    row.update(self._validate(model, criterion, epoch))
                    # a finite train loss can hide weights that became NaN in the last steps;
                    # val_loss is already summed over all ranks, so every rank agrees here
                    if not math.isfinite(row["val_loss"]):
                        raise _StepFailed(distributed.DIVERGED, f"non-finite val loss at epoch {epoch}")
            except _StepFailed as failed:
                verdict = "DIVERGED" if failed.code == distributed.DIVERGED else "FAILED"
                error = str(failed)
                elapsed_s += time.perf_counter() - started
                break
            row["epoch_time_s"] = time.perf_counter() - started
            elapsed_s += row["epoch_time_s"]
            curves.append(row)
            if self.dist.is_main:
                checkpoint.save(self.request.run_dir, {
                    "model": checkpoint.strip_ddp(model.state_dict()), "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(), "epochs_done": epoch + 1, "curves": curves,
                    "train_time_s": elapsed_s, "rng": _rng_state(), "recipe": r,
                    "architecture": self.request.arch.to_record(), "seed": self.request.seed,
                    "world_size": self.dist.world_size,
                })
            if self.request.on_epoch is not None:
                self.request.on_epoch(dict(row))
        return self._result(curves, elapsed_s, verdict, error, resumed_from)

    def _train_epoch(self, net, optimizer, scaler, criterion, epoch: int, peak: float) -> dict[str, Any]:
        import torch

        r = self.recipe
        res = schedule.resolution(epoch, r) if self.image else None
        loader = self._data("train", epoch, res)
        steps = len(loader)
        if steps == 0:
            raise AnbenchError(f"dataset {self.dataset.name}: no full train batch of {r['batch_size']} "
                               f"for rank {self.dist.rank} (lower --batch-size or raise max_train_samples)")
        net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.float64, device=self.device)
        seen = 0
        lr = 0.0
        iterator = iter(loader)
        for step in range(steps):
            lr = r["lr"] if r["lr_schedule"] == "constant" else schedule.step_lr(epoch, step, steps, r, peak)
            for group in optimizer.param_groups:
                group["lr"] = lr
            # two agreements per step: after loading (a rank that cannot load must not enter
            # DDP's forward, whose buffer broadcast the others would wait in) and after the loss
            code, error = distributed.OK, ""
            try:
                inputs, targets, _ = self._to_device(next(iterator))
            except Exception as exc:
                code, error = self._failure(exc, epoch, res)
            self._agree(code, error)
            try:
                optimizer.zero_grad(set_to_none=True)
                with self._autocast():
                    outputs = net(inputs)
                    loss = criterion(outputs, targets)
                if not torch.isfinite(loss.detach()):
                    code, error = distributed.DIVERGED, f"non-finite loss at epoch {epoch} step {step}"
            except Exception as exc:
                code, error = self._failure(exc, epoch, res)
            self._agree(code, error)
            try:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            except Exception as exc:
                if _oom(exc):
                    raise _StepFailed(distributed.OOM, f"out of memory in backward at epoch {epoch} "
                                                       f"(batch {r['batch_size']}, resolution {res})") from None
                raise
            n = targets.shape[0]
            seen += n
            loss_sum += loss.detach().double() * n
            if not self.multilabel:
                correct += (outputs.detach().argmax(dim=1) == targets).sum()
            if step % 10 == 0:
                self.status(f"epoch {epoch + 1}/{r['epochs']} step {step + 1}/{steps} res {res or '-'}")
        train_loss, train_correct, train_seen = distributed.sum_all(
            [float(loss_sum), float(correct), float(seen)], self.device)
        row = {"epoch": epoch, "resolution": res, "lr_end": lr,
               "train_loss": train_loss / train_seen}
        if not self.multilabel:
            row["train_top1"] = 100.0 * train_correct / train_seen
        if not math.isfinite(row["train_loss"]):
            raise _StepFailed(distributed.DIVERGED, f"non-finite train loss at epoch {epoch}")
        return row

    def _failure(self, exc: Exception, epoch: int, res) -> tuple[int, str]:
        """The status code of an exception in a step; unexpected ones re-raise on one process."""
        if _oom(exc):
            return distributed.OOM, (f"out of memory at epoch {epoch} "
                                     f"(batch {self.recipe['batch_size']}, resolution {res})")
        if not self.dist.active:
            raise exc
        return distributed.ERROR, f"{type(exc).__name__}: {exc}"

    def _agree(self, code: int, error: str) -> None:
        """Every rank learns the worst status; all stop together (single process: no collective)."""
        agreed = distributed.worst(code, self.device)
        if agreed == distributed.ERROR:  # not a verdict about the model: every rank stops the run
            if code == distributed.ERROR:
                raise AnbenchError(f"training failed on rank {self.dist.rank}: {error}")
            raise AnbenchError("training failed on another rank (its error is in its own output)")
        if agreed != distributed.OK:
            raise _StepFailed(agreed, error or ("out of memory on another rank" if agreed == distributed.OOM
                                                else "non-finite loss on another rank"))

    def _validate(self, net, criterion, epoch: int) -> dict[str, Any]:
        import torch

        r = self.recipe
        loader = self._data("val", epoch, r["val_resolution"])
        streamable = bool(getattr(self.dataset, "streamable_metrics", False))
        net.eval()
        sums: dict[str, float] = {}
        loss_sum, seen = 0.0, 0
        kept: list[tuple[Any, Any, Any]] = []
        with torch.no_grad(), self._autocast():
            for batch in loader:
                inputs, targets, groups = self._to_device(batch)
                outputs = net(inputs).float()
                n = targets.shape[0]
                loss_sum += float(criterion(outputs, targets)) * n
                seen += n
                if streamable:
                    for key, value in self.dataset.evaluate(outputs.cpu(), targets.cpu()).items():
                        sums[key] = sums.get(key, 0.0) + value * n
                else:
                    kept.append((outputs.cpu(), targets.cpu(), groups))
        if streamable:
            keys = sorted(sums) if sums else sorted(self.dataset.evaluate(torch.zeros(0, self.dataset.num_classes),
                                                                          torch.zeros(0, dtype=torch.long)))
            totals = distributed.sum_all([sums.get(k, 0.0) for k in keys] + [loss_sum, float(seen)], self.device)
            seen_all = totals[-1]
            if seen_all == 0:
                raise AnbenchError(f"dataset {self.dataset.name}: the val split is empty")
            metrics = {k: totals[i] / seen_all for i, k in enumerate(keys)}
            loss_all = totals[-2]
        else:
            parts = [p for rank_parts in distributed.gather_all(kept) for p in rank_parts]
            if not parts:
                raise AnbenchError(f"dataset {self.dataset.name}: the val split is empty")
            outputs = torch.cat([p[0] for p in parts])
            targets = torch.cat([p[1] for p in parts])
            groups = torch.cat([p[2] for p in parts]) if parts[0][2] is not None else None
            metrics = self.dataset.evaluate(outputs, targets, groups)
            loss_all, seen_all = distributed.sum_all([loss_sum, float(seen)], self.device)
        row = {f"val_{k}": float(v) for k, v in metrics.items()}
        row["val_loss"] = loss_all / seen_all
        row["val_samples"] = int(seen_all)
        return row

    def _result(self, curves, elapsed_s, verdict, error, resumed_from) -> TrainResult:
        metric_name = self.dataset.metric_name
        final = curves[-1] if curves else {}
        metrics = {k: v for k, v in final.items() if k.startswith("val_")} if verdict == "VALID" else {}
        if verdict == "VALID" and f"val_{metric_name}" not in metrics:
            raise AnbenchError(f"dataset {self.dataset.name}: evaluate() returned no '{metric_name}'")
        extra = {"epochs_done": len(curves), "resumed_from_epoch": resumed_from, "engine": self.engine.as_dict(),
                 "world_size": self.dist.world_size}
        if error:
            extra["error"] = error
        ckpt = checkpoint.path_in(self.request.run_dir)
        return TrainResult(
            val_top1=metrics.get("val_top1"), val_top5=metrics.get("val_top5"), train_time_s=elapsed_s,
            metric_epochs=(final["epoch"],) if metrics else (), checkpoint=ckpt if ckpt.exists() else None,
            extra=extra, metrics=metrics, curves=tuple(curves), verdict=verdict,
        )


def train(request: TrainRequest, engine: Engine, dataset) -> TrainResult:
    """Train one model; see :class:`Loop`."""
    Path(request.run_dir).mkdir(parents=True, exist_ok=True)
    return Loop(request, engine, dataset).run()
