"""Per-task training recipes of the 1-D tasks (spec 9.2), as data for the trainer.

``RECIPES[task]`` is the whole recipe. Its knobs of the trainer's recipe (epochs, batch
sizes, ``optimizer``, ``lr``, ``lr_schedule``, weight decay, momentum, label smoothing,
precision, ...; see :mod:`anbench.train.recipe`) are what a dataset's ``recipe_defaults``
hands the trainer; the rest (:data:`TASK_ONLY_KNOBS`) describe what the trainer derives:

* ``optimizer``: ``"adam"`` (PyTorch defaults, betas 0.9/0.999, eps 1e-8) or ``"sgd"``
  (``momentum``, no Nesterov);
* ``lr_schedule``: ``"constant"``: ``lr`` at every step (the original creates a scheduler and
  never steps it);
* ``loss``: ``"cross_entropy"`` or ``"bce_with_logits"``; the trainer picks BCE for a
  ``multilabel`` dataset;
* ``metric`` / ``metric_selection``: the headline metric and how its epoch is chosen.
  ``"final_epoch"``: the value after the last epoch. The original reported the best epoch
  on the test split (a selection on test data, spec 11.8), which is not reproduced.

``precision`` ``"auto"`` means AMP fp16 on CUDA and fp32 elsewhere (Satellite's GradScaler
run); ``"fp32"`` is fp32 everywhere (ECG and DeepSEA ran in fp32).
"""

from __future__ import annotations

from typing import Any

_COMMON: dict[str, Any] = {
    "lr_schedule": "constant",
    "weight_decay": 0.0,
    "label_smoothing": 0.0,     # the cfg value is read but unused by these tasks
    "stochastic_depth": 0.2,
    "dropout": 0.2,
    "activation": "relu",
    "metric_selection": "final_epoch",
    "val_last_epochs": 1,
}

RECIPES: dict[str, dict[str, Any]] = {
    "ecg": {
        **_COMMON, "recipe": "nb360-ecg", "epochs": 24, "batch_size": 256, "val_batch_size": 1024,
        "optimizer": "adam", "lr": 1e-3, "loss": "cross_entropy", "precision": "fp32", "metric": "macro_f1",
    },
    "satellite": {
        **_COMMON, "recipe": "nb360-satellite", "epochs": 16, "batch_size": 1024, "val_batch_size": 1024,
        "optimizer": "adam", "lr": 1e-3, "loss": "cross_entropy", "precision": "auto", "metric": "top1",
    },
    "deepsea": {
        **_COMMON, "recipe": "nb360-deepsea", "epochs": 16, "batch_size": 1024, "val_batch_size": 256,
        "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "loss": "bce_with_logits", "precision": "fp32",
        "metric": "mean_auroc",
    },
}

# facts of the 1-D recipes that are not trainer knobs; the rest are ("recipe" is one: the
# stored effective recipe must name the task's recipe, not the image base it starts from)
TASK_ONLY_KNOBS = ("loss", "metric", "metric_selection")


def recipe(task: str) -> dict[str, Any]:
    return dict(RECIPES[task])


def shared_knobs(task: str) -> dict[str, Any]:
    """The part of the recipe that is a knob of the trainer's recipe (the dataset's ``recipe_defaults``)."""
    return {k: v for k, v in RECIPES[task].items() if k not in TASK_ONLY_KNOBS}
