"""Training-step throughput of anbench's loop against a plain PyTorch loop.

Same network, same synthetic batches (the same DataRequest), same batch size, optimizer
and loss; both measured in this run, interleaved, best of ``--repeats``. anbench's time is
its first epoch's ``epoch_time_s`` (that epoch has no validation). The goal (issue 8) is a
ratio of at least 0.95 (anbench images/s / plain images/s).

    python benchmarks/train_loop_speed.py [--arch smallest] [--samples 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from anbench.builtin.synthetic import SyntheticDataset
from anbench.models import build_model
from anbench.plugin_types import DataRequest, TrainRequest
from anbench.searchspace import named
from anbench.train import recipe as recipes
from anbench.train import schedule
from anbench.train.cpu_trainer import CpuTrainer


def plain_epoch_s(arch, recipe, data) -> float:
    model = build_model(arch, num_classes=data.num_classes, dropout=recipe["dropout"],
                        stochastic_depth=recipe["stochastic_depth"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=recipe["weight_decay"])
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=recipe["label_smoothing"])
    loader = data.loader(DataRequest("train", recipe["batch_size"], recipe["min_res"], 0, 1,
                                     max_samples=recipe["max_train_samples"], drop_last=True))
    peak = schedule.peak_lr(recipe, 1)
    model.train()
    start = time.perf_counter()
    steps = len(loader)
    for step, (images, labels) in enumerate(loader):
        for group in optimizer.param_groups:
            group["lr"] = schedule.step_lr(0, step, steps, recipe, peak)
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def anbench_epoch_s(arch, recipe, data) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        result = CpuTrainer().train(TrainRequest(arch, "synthetic", recipe, Path(tmp), seed=1, data=data, resume=False))
    return result.curves[0]["epoch_time_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="smallest")
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = SyntheticDataset()
    recipe = CpuTrainer().resolve(recipes.effective("proxified", data.recipe_defaults, {}, {
        "epochs": 2, "max_train_samples": args.samples, "max_val_samples": 64}))
    arch = named(args.arch)
    plain, ours = [], []
    for _ in range(args.repeats):
        plain.append(plain_epoch_s(arch, recipe, data))
        ours.append(anbench_epoch_s(arch, recipe, data))
    images = (args.samples // recipe["batch_size"]) * recipe["batch_size"]
    print(f"plain PyTorch loop : {images / min(plain):8.1f} images/s (best of {args.repeats})")
    print(f"anbench train loop : {images / min(ours):8.1f} images/s (best of {args.repeats})")
    print(f"ratio anbench/plain: {min(plain) / min(ours):.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
