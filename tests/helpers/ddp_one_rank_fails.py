"""Run under torchrun (2 processes, gloo): rank 1 alone breaks at its third train step.

``MODE=nan``: rank 1's inputs turn NaN (its loss is non-finite); ``MODE=error``: rank 1's
loader raises. Each rank writes what its trainer returned or raised to ``OUT/rank<r>.json``.
The point: rank 0 learns of rank 1's failure and stops too, instead of hanging in DDP.
"""

import json
import os
import sys
from pathlib import Path

from rank_one_breaks import BreaksOnRankOne

from anbench.errors import AnbenchError
from anbench.plugin_types import TrainRequest
from anbench.searchspace import named
from anbench.train import distributed, recipe
from anbench.train.cpu_trainer import CpuTrainer

MODE, OUT = sys.argv[1], Path(sys.argv[2])

info = distributed.init_from_env("gloo")
dataset = BreaksOnRankOne()
dataset.mode = MODE
eff = recipe.effective("proxified", dataset.recipe_defaults, {},
                       {"epochs": 1, "batch_size": 16, "max_train_samples": 128, "max_val_samples": 32})
request = TrainRequest(named("smallest"), "synthetic", CpuTrainer().resolve(eff), OUT / f"run{info.rank}", seed=1,
                       data=dataset, resume=False)
try:
    result = CpuTrainer().train(request)
    outcome = {"verdict": result.verdict, "error": result.extra.get("error"), "epochs_done": len(result.curves)}
except AnbenchError as exc:
    outcome = {"raised": str(exc)}
(OUT / f"rank{info.rank}.json").write_text(json.dumps(outcome))
distributed.shutdown()
