"""The built-in CPU trainer: the shared loop on the host's cores, fp32 (or bf16 autocast)."""

from __future__ import annotations

import os
import platform
from typing import Any

from ..errors import AnbenchError
from ..plugin_types import TrainRequest, TrainResult


class CpuTrainer:
    name = "cpu"
    summary = "the proxified training loop on the host CPU (fp32 or bf16 autocast; DDP over gloo)"
    backend = "gloo"

    def availability(self) -> str | None:
        return None

    def describe(self) -> dict[str, Any]:
        import torch

        return {"kind": "cpu", "machine": platform.machine(), "logical_cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(), "torch": torch.__version__}

    def resolve(self, recipe: dict[str, Any]) -> dict[str, Any]:
        """The recipe with this trainer's effective precision and memory format."""
        out = dict(recipe)
        if out["precision"] == "auto":
            out["precision"] = "fp32"
        if out["precision"] not in ("fp32", "bf16"):
            raise AnbenchError(f"trainer cpu trains fp32 or bf16, not {out['precision']}")
        if out["channels_last"] == "auto":
            out["channels_last"] = False
        return out

    def train(self, request: TrainRequest) -> TrainResult:
        from .loop import Engine, train

        recipe = self.resolve(request.recipe)
        dataset = request.data
        if dataset is None:
            from ..plugins import get_host

            dataset = get_host().registry.dataset(request.dataset)
        engine = Engine("cpu", recipe["precision"], bool(recipe["channels_last"]))
        return train(request, engine, dataset)
